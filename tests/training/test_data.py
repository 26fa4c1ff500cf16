"""IDX parsing, validation and the order in which MNIST sources are tried."""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
from pathlib import Path

import numpy as np
import pytest

from training import data
from training.data import (
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    DatasetNotFound,
    IdxFormatError,
    load_mnist,
    load_split,
    parse_idx,
    resolve_data_dir,
)


def idx_bytes(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload


def test_sample_loads_with_the_seed_split(sample: data.Mnist) -> None:
    # 2,500 training images: the last 10% (250) validate, as the seed's validation_split did.
    assert (len(sample.train), len(sample.validation), len(sample.test)) == (2250, 250, 500)
    assert sample.train.images.shape == (2250, 28, 28)
    assert sample.train.images.dtype == np.uint8
    raw, _ = load_split(sample.source, TRAIN_IMAGES, TRAIN_LABELS)
    np.testing.assert_array_equal(sample.validation.images, raw.images[2250:])
    np.testing.assert_array_equal(sample.train.labels, raw.labels[:2250])
    # First training label of MNIST is a 5, first test label a 7: the files are not shuffled.
    assert (sample.train.labels[0], sample.test.labels[0]) == (5, 7)


def test_model_input_is_float32_unit_range_white_on_black(sample: data.Mnist) -> None:
    x = data.as_model_input(sample.test)
    assert x.shape == (500, 28, 28, 1) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    # White digit on black: the border is background (0) and the ink is bright.
    assert x[:, 0, :, 0].max() == 0.0
    np.testing.assert_array_equal(x[..., 0] * 255, sample.test.images.astype(np.float32))


def test_hashes_are_of_the_uncompressed_bytes(sample_dir: Path, sample: data.Mnist) -> None:
    content = gzip.decompress((sample_dir / f"{TEST_LABELS}.gz").read_bytes())
    assert sample.file_sha256[TEST_LABELS] == hashlib.sha256(content).hexdigest()


def test_raw_and_gzip_files_give_the_same_arrays(raw_sample_dir: Path, sample: data.Mnist) -> None:
    raw = load_mnist(raw_sample_dir, download=False)
    np.testing.assert_array_equal(raw.test.images, sample.test.images)
    assert raw.file_sha256 == sample.file_sha256


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"\x00\x00", "2 bytes is shorter than the 16-byte IDX header"),
        (idx_bytes(0x0801, (1, 28, 28), b""), "magic number 0x00000801, expected 0x00000803"),
        (idx_bytes(0x0803, (2, 32, 32), bytes(2 * 32 * 32)), "images are 32x32, expected 28x28"),
        (
            idx_bytes(0x0803, (2, 28, 28), bytes(784 + 100)),
            "truncated: header declares 2x28x28 items (1584 bytes), file has 900 bytes",
        ),
        (
            idx_bytes(0x0803, (1, 28, 28), bytes(785)),
            "has trailing bytes: header declares 1x28x28 items (800 bytes), file has 801 bytes",
        ),
    ],
)
def test_parse_idx_rejects_corrupt_images(blob: bytes, message: str) -> None:
    with pytest.raises(IdxFormatError) as excinfo:
        parse_idx(blob, expected_magic=0x0803, name="x.idx")
    assert str(excinfo.value) == f"x.idx: {message}"


def test_truncated_file_on_disk_names_the_file(raw_sample_dir: Path) -> None:
    path = raw_sample_dir / TEST_IMAGES
    path.write_bytes(path.read_bytes()[: -784 * 3])
    with pytest.raises(IdxFormatError, match=rf"^{TEST_IMAGES}: truncated: header declares 500x28x28"):
        load_mnist(raw_sample_dir, download=False)


def test_corrupt_gzip_names_the_file(gz_sample_dir: Path) -> None:
    path = gz_sample_dir / f"{TRAIN_LABELS}.gz"
    path.write_bytes(path.read_bytes()[:-20])  # cut off the gzip trailer and some data
    with pytest.raises(IdxFormatError, match=rf"^{TRAIN_LABELS}.gz: not a valid gzip file"):
        load_mnist(gz_sample_dir, download=False)


def test_image_and_label_counts_must_agree(raw_sample_dir: Path) -> None:
    labels = raw_sample_dir / TEST_LABELS
    labels.write_bytes(idx_bytes(0x0801, (499,), labels.read_bytes()[8:-1]))
    with pytest.raises(IdxFormatError, match=f"{TEST_IMAGES} has 500 images but {TEST_LABELS} has 499 labels"):
        load_mnist(raw_sample_dir, download=False)


def test_labels_must_be_digits(raw_sample_dir: Path) -> None:
    labels = raw_sample_dir / TEST_LABELS
    blob = bytearray(labels.read_bytes())
    blob[8 + 17] = 12
    labels.write_bytes(bytes(blob))
    with pytest.raises(IdxFormatError, match=f"{TEST_LABELS}: label 12 is not a digit"):
        load_mnist(raw_sample_dir, download=False)


def test_explicit_directory_missing_files_says_which(tmp_path: Path, gz_sample_dir: Path) -> None:
    (gz_sample_dir / f"{TEST_IMAGES}.gz").unlink()
    with pytest.raises(DatasetNotFound, match=rf"lacks {TEST_IMAGES}\[\.gz\]; put the four MNIST IDX files there"):
        resolve_data_dir(gz_sample_dir)


def test_environment_variable_names_the_directory(monkeypatch: pytest.MonkeyPatch, gz_sample_dir: Path) -> None:
    monkeypatch.setenv(data.DATA_DIR_ENV, str(gz_sample_dir))
    assert resolve_data_dir() == gz_sample_dir


def test_cache_is_used_when_nothing_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_dir: Path) -> None:
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = tmp_path / "digits" / "mnist"
    cache.mkdir(parents=True)
    for gz in sample_dir.glob("*.gz"):
        (cache / gz.name).write_bytes(gz.read_bytes())
    assert resolve_data_dir(download=False) == cache


def test_offline_with_empty_cache_says_what_is_missing_and_how_to_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    def unreachable(url: str, timeout: float) -> None:
        raise data.urllib.error.URLError("no route to host")

    monkeypatch.setattr(data.urllib.request, "urlopen", unreachable)
    with pytest.raises(DatasetNotFound) as excinfo:
        resolve_data_dir()
    message = str(excinfo.value)
    assert message.startswith(f"MNIST files missing: {TRAIN_IMAGES}.gz (download failed: ")
    assert "no route to host" in message
    assert f"Copy the four IDX files into {tmp_path / 'digits' / 'mnist'}" in message
    assert "--data-dir DIR / set MNIST_DIR=DIR" in message


class _FakeResponse(io.BytesIO):
    def __enter__(self) -> _FakeResponse:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


def test_download_verifies_sha256_and_tries_the_next_mirror(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_dir: Path
) -> None:
    good = (sample_dir / f"{TEST_LABELS}.gz").read_bytes()
    tampered = gzip.compress(b"\x00\x00\x08\x01" + bytes(4))
    monkeypatch.setitem(data.CANONICAL_SHA256, TEST_LABELS, hashlib.sha256(gzip.decompress(good)).hexdigest())
    served = {data.MIRRORS[0]: tampered, data.MIRRORS[1]: good}
    asked = []

    def fake_urlopen(url: str, timeout: float) -> _FakeResponse:
        asked.append(url)
        return _FakeResponse(served[url.rsplit("/", 1)[0] + "/"])

    monkeypatch.setattr(data.urllib.request, "urlopen", fake_urlopen)
    path = data.download_file(TEST_LABELS, tmp_path)
    assert asked == [f"{m}{TEST_LABELS}.gz" for m in data.MIRRORS]
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{TEST_LABELS}.gz"]  # no .part left


def test_download_with_only_bad_copies_fails_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(data.urllib.request, "urlopen", lambda url, timeout: _FakeResponse(gzip.compress(b"junk")))
    with pytest.raises(DatasetNotFound, match=r"SHA-256 .* != expected"):
        data.download_file(TEST_LABELS, tmp_path)
    assert list(tmp_path.iterdir()) == []
