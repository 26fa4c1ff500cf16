"""Kuzushiji-MNIST (KMNIST), the dataset seed 004 used: 70,000 28x28 greyscale Hiragana, 10 classes.

KMNIST comes in MNIST's IDX format with MNIST's four file names, so this module reuses
training/data.py's parsing and validation and returns the same `Mnist` structure, split the
same way (the last 10% of the 60,000 training images validate). Where the files come from:

1. a directory given explicitly (`--data-dir` with `--option dataset=kmnist`) or by `KMNIST_DIR`;
2. the cache directory (`$XDG_CACHE_HOME/digits/kmnist`, by default `~/.cache/digits/kmnist`);
3. a download from the authors' site (ROIS-CODH, https://github.com/rois-codh/kmnist) into the
   cache, each .gz checked against its MD5.

The KMNIST authors' download script (rois-codh/kmnist, download_data.py) lists the URLs but no
checksums; the MD5s below are those of the same four .gz files as torchvision's KMNIST dataset
pins them. A compressed file found on disk is checked against them too (a raw, uncompressed
file cannot be: its SHA-256, like MNIST's, is recorded in the card).

These machines cannot reach codh.rois.ac.jp; the numpy-mlp experiment trains on MNIST here and
says so in its cards and record.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from training.data import (
    FILES,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    VALIDATION_FRACTION,
    DatasetNotFound,
    IdxFormatError,
    Mnist,
    RawSplit,
    find_file,
    load_split,
)

log = logging.getLogger(__name__)

KMNIST_DIR_ENV = "KMNIST_DIR"
BASE_URL = "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"
URLS = {stem: f"{BASE_URL}{stem}.gz" for stem in FILES}

GZ_MD5 = {
    TRAIN_IMAGES: "bdb82020997e1d708af4cf47b453dcf7",
    TRAIN_LABELS: "e144d726b3acfaa3e44228e80efcd344",
    TEST_IMAGES: "5c965bf0a639b31b8f53240b1b52f4d7",
    TEST_LABELS: "7320c461ea6c1c855c0b718fb2a4b134",
}
"""MD5 of each published .gz file."""

CLASSES = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
"""The ten Hiragana, by label (KMNIST's classmap)."""


class ChecksumMismatch(IdxFormatError):
    """A KMNIST .gz file is not the published one."""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "digits" / "kmnist"


def _missing(directory: Path) -> list[str]:
    return [stem for stem in FILES if find_file(directory, stem) is None]


def verify_checksums(directory: Path) -> None:
    """Check every compressed KMNIST file in `directory` against its published MD5."""
    for stem in FILES:
        path = directory / f"{stem}.gz"
        if not path.is_file():
            continue
        digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        if digest != GZ_MD5[stem]:
            raise ChecksumMismatch(f"{path}: MD5 {digest}, the published KMNIST file has {GZ_MD5[stem]}")


def resolve_kmnist_dir(data_dir: Path | None = None, *, download: bool = True) -> Path:
    """A directory holding the four KMNIST files: explicit, `KMNIST_DIR`, the cache, or a download.

    An explicit directory must be complete: it is never silently replaced by the cache.
    """
    explicit = data_dir or (Path(os.environ[KMNIST_DIR_ENV]) if os.environ.get(KMNIST_DIR_ENV) else None)
    if explicit is not None:
        missing = _missing(explicit)
        if missing:
            raise DatasetNotFound(
                f"{explicit} lacks the KMNIST files {', '.join(m + '[.gz]' for m in missing)}; put the four "
                f"IDX files there (from {BASE_URL}) or point --data-dir / {KMNIST_DIR_ENV} elsewhere"
            )
        return explicit
    cache = default_cache_dir()
    missing = _missing(cache)
    if not missing:
        return cache
    if not download:
        raise DatasetNotFound(_how_to_provide(cache, missing, "downloads are disabled"))
    cache.mkdir(parents=True, exist_ok=True)
    for stem in missing:
        download_file(stem, cache)
    return cache


def download_file(stem: str, cache: Path) -> Path:
    """Fetch `<stem>.gz` from the authors' site, check its MD5, move it into the cache."""
    url = URLS[stem]
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (a fixed http URL: the authors' only one)
            payload = response.read()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise DatasetNotFound(_how_to_provide(cache, [stem], f"{url}: {exc}")) from exc
    digest = hashlib.md5(payload, usedforsecurity=False).hexdigest()
    if digest != GZ_MD5[stem]:
        raise ChecksumMismatch(f"{url}: MD5 {digest}, expected {GZ_MD5[stem]}")
    target = cache / f"{stem}.gz"
    partial = target.with_suffix(".gz.part")
    partial.write_bytes(payload)
    partial.replace(target)
    return target


def _how_to_provide(cache: Path, missing: list[str], reason: str) -> str:
    return (
        f"KMNIST files missing: {', '.join(m + '.gz' for m in missing)} ({reason}). Download them from "
        f"{BASE_URL} into {cache}, or pass --data-dir DIR / set {KMNIST_DIR_ENV}=DIR to a directory that holds them."
    )


def load_kmnist(data_dir: Path | None = None, *, download: bool = True, verify: bool = True) -> Mnist:
    """Load, validate and split KMNIST as `training.data.load_mnist` does MNIST.

    verify: check compressed files against the published MD5s (tests with synthetic files turn it off).
    """
    directory = resolve_kmnist_dir(data_dir, download=download)
    if verify:
        verify_checksums(directory)
    train_full, train_hashes = load_split(directory, TRAIN_IMAGES, TRAIN_LABELS)
    test, test_hashes = load_split(directory, TEST_IMAGES, TEST_LABELS)
    n_val = round(len(train_full) * VALIDATION_FRACTION)
    cut = len(train_full) - n_val
    log.info("KMNIST from %s: %d train, %d validation, %d test", directory, cut, n_val, len(test))
    return Mnist(
        train=RawSplit(train_full.images[:cut], train_full.labels[:cut]),
        validation=RawSplit(train_full.images[cut:], train_full.labels[cut:]),
        test=test,
        source=directory,
        file_sha256={**train_hashes, **test_hashes},
    )
