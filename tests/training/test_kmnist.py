"""The KMNIST loader, on small IDX files the tests write (no download)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from tests.factories import write_idx_set
from training import kmnist
from training.data import FILES, DatasetNotFound, IdxFormatError


def test_the_published_files_are_named_with_their_urls_and_checksums() -> None:
    assert set(kmnist.URLS) == set(FILES) == set(kmnist.GZ_MD5)
    assert all(url == f"http://codh.rois.ac.jp/kmnist/dataset/kmnist/{stem}.gz" for stem, url in kmnist.URLS.items())
    assert all(len(md5) == 32 and int(md5, 16) >= 0 for md5 in kmnist.GZ_MD5.values())


@pytest.mark.parametrize("compress", [True, False])
def test_loads_and_splits_like_mnist(tmp_path: Path, compress: bool) -> None:
    write_idx_set(tmp_path, n_train=50, n_test=20, compress=compress)
    data = kmnist.load_kmnist(tmp_path, download=False, verify=False)
    assert (len(data.train), len(data.validation), len(data.test)) == (45, 5, 20)
    assert data.train.images.shape == (45, 28, 28) and data.train.images.dtype == np.uint8
    assert data.source == tmp_path and set(data.file_sha256) == set(FILES)


def test_a_compressed_file_is_checked_against_its_md5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_idx_set(tmp_path)
    digests = {stem: hashlib.md5((tmp_path / f"{stem}.gz").read_bytes(), usedforsecurity=False).hexdigest() for stem in FILES}
    monkeypatch.setattr(kmnist, "GZ_MD5", digests)
    assert len(kmnist.load_kmnist(tmp_path, download=False).test) == 20  # verify=True passes
    monkeypatch.setattr(kmnist, "GZ_MD5", {**digests, FILES[0]: "0" * 32})
    with pytest.raises(kmnist.ChecksumMismatch, match=f"{FILES[0]}.gz: MD5 {digests[FILES[0]]}"):
        kmnist.load_kmnist(tmp_path, download=False)


def test_synthetic_files_are_not_the_published_ones(tmp_path: Path) -> None:
    write_idx_set(tmp_path)
    with pytest.raises(kmnist.ChecksumMismatch):
        kmnist.load_kmnist(tmp_path, download=False)


def test_kmnist_dir_names_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_idx_set(tmp_path / "k", n_train=30)
    monkeypatch.setenv(kmnist.KMNIST_DIR_ENV, str(tmp_path / "k"))
    assert len(kmnist.load_kmnist(download=False, verify=False).train) == 27


def test_an_incomplete_directory_is_not_replaced_by_the_cache(tmp_path: Path) -> None:
    write_idx_set(tmp_path)
    (tmp_path / f"{FILES[3]}.gz").unlink()
    with pytest.raises(DatasetNotFound, match=f"lacks the KMNIST files {FILES[3]}"):
        kmnist.load_kmnist(tmp_path, download=False)


def test_without_files_or_downloads_it_says_where_to_get_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(kmnist.KMNIST_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(DatasetNotFound, match=r"codh\.rois\.ac\.jp/kmnist/dataset/kmnist/ into .*digits/kmnist"):
        kmnist.load_kmnist(download=False)


def test_a_truncated_file_is_an_idx_error(tmp_path: Path) -> None:
    write_idx_set(tmp_path, compress=False)
    path = tmp_path / FILES[0]
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(IdxFormatError, match="truncated"):
        kmnist.load_kmnist(tmp_path, download=False, verify=False)
