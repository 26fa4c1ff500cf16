"""`python -m service store pack|fetch|verify`: a store for users who installed the package (no checkout).

Everything runs on local files and `file://` URLs: no test downloads anything.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from service import __main__ as cli
from service.models.store_archive import ArchiveError, fetch, pack, verify
from service.server.startup import check_store
from tests.service.conftest import REPO


@pytest.fixture
def archive(copy_store: Callable[..., Path], tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "digits-store.tar.gz"
    return path, pack(copy_store("cnn", "mlp"), path)


def test_a_fetched_archive_is_a_store_the_service_accepts(archive: tuple[Path, str], tmp_path: Path) -> None:
    path, digest = archive
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    names = fetch(path.as_uri(), digest, tmp_path / "fetched")
    assert names == ["cnn", "mlp"]
    check_store(tmp_path / "fetched")  # raises if the service would refuse it
    assert verify(tmp_path / "fetched") == []


def test_packing_is_reproducible(copy_store: Callable[..., Path], tmp_path: Path) -> None:
    store = copy_store("mlp")
    first, second = pack(store, tmp_path / "a.tar.gz"), pack(store, tmp_path / "b.tar.gz")
    assert first == second  # so a published digest can be checked against a checkout


def test_a_wrong_digest_is_refused_and_leaves_nothing(archive: tuple[Path, str], tmp_path: Path) -> None:
    path, digest = archive
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    with pytest.raises(ArchiveError, match=f"the archive's SHA-256 is {digest}, not the expected {wrong}"):
        fetch(str(path), wrong, tmp_path / "fetched")
    assert not (tmp_path / "fetched").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".incomplete-")]


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_model_that_does_not_match_its_card_is_refused(store: Path, tmp_path: Path) -> None:
    # The archive's digest is right (its publisher's mistake, or a tampered archive republished with
    # its new digest): the cards' SHA-256s still catch the model file.
    card = (store / "mlp" / "1" / "card.json").read_bytes()
    data = tar_gz({"mlp/1/card.json": card, "mlp/1/model.onnx": b"not the model"})
    path = tmp_path / "tampered.tar.gz"
    path.write_bytes(data)
    with pytest.raises(ArchiveError, match=re.escape("mlp v1: model.onnx does not match the SHA-256 on its card")):
        fetch(str(path), hashlib.sha256(data).hexdigest(), tmp_path / "fetched")
    assert not (tmp_path / "fetched").exists()


def test_an_archive_escaping_its_directory_is_refused(tmp_path: Path) -> None:
    data = tar_gz({"../escaped.txt": b"outside"})
    path = tmp_path / "evil.tar.gz"
    path.write_bytes(data)
    with pytest.raises(ArchiveError, match="cannot be unpacked safely"):
        fetch(str(path), hashlib.sha256(data).hexdigest(), tmp_path / "deep" / "fetched")
    assert not (tmp_path / "deep" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


def test_an_existing_store_is_not_overwritten(archive: tuple[Path, str], tmp_path: Path) -> None:
    path, digest = archive
    (tmp_path / "fetched").mkdir()
    (tmp_path / "fetched" / "mine.txt").write_text("keep")
    with pytest.raises(ArchiveError, match="already exists and is not an empty directory"):
        fetch(str(path), digest, tmp_path / "fetched")
    assert (tmp_path / "fetched" / "mine.txt").read_text() == "keep"


def test_the_command_line_fetches_and_says_how_to_serve(archive: tuple[Path, str], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path, digest = archive
    target = tmp_path / "fetched"
    assert cli.main(["store", "fetch", "--from", path.as_uri(), "--sha256", digest, "--to", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"2 models in {target} (cnn, mlp)" in out and f"python -m service --model-store {target}" in out
    assert cli.main(["store", "fetch", "--from", str(path), "--sha256", "ab" * 32, "--to", str(tmp_path / "x")]) == 1
    assert "refused" in capsys.readouterr().err


def test_an_installed_package_gets_a_store_outside_the_repository(archive: tuple[Path, str], tmp_path: Path) -> None:
    # As a user who ran `pip install 'digit-serving[serve]'` elsewhere: the console script's module,
    # from a directory with no model_store/, fetches one and `verify` accepts it.
    path, digest = archive
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = [sys.executable, "-m", "service", "store"]
    fetched = subprocess.run([*run, "fetch", "--from", path.as_uri(), "--sha256", digest, "--to", "store"],  # noqa: S603
                             cwd=elsewhere, capture_output=True, text=True, timeout=60, check=False)
    assert fetched.returncode == 0, fetched.stderr
    verified = subprocess.run([*run, "verify", "store"], cwd=elsewhere, capture_output=True, text=True,  # noqa: S603
                              timeout=60, check=False)
    assert verified.returncode == 0 and "every model file matches its card" in verified.stdout
    assert json.loads((elsewhere / "store" / "mlp" / "1" / "card.json").read_text())["name"] == "mlp"
    assert REPO not in elsewhere.parents
