"""MNIST from the four canonical IDX files, validated, normalised and split as the seed did.

Where the files come from, in order:
1. a directory given explicitly (the `--data-dir` flag) or by the `MNIST_DIR` environment variable;
2. the cache directory (`$XDG_CACHE_HOME/digits/mnist`, by default `~/.cache/digits/mnist`);
3. a download from the public mirrors into the cache, each file checked against its SHA-256.

Files may be gzip-compressed (`*.gz`) or raw. Every file is checked for its magic number,
dimensions and length; a truncated or corrupt file raises `IdxFormatError` naming the file.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from digit_contract.inputs import IMAGE_SIDE, NUM_CLASSES, normalize_pixels

DATA_DIR_ENV = "MNIST_DIR"

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# SHA-256 of the *uncompressed* canonical files. Checking the content rather than the .gz bytes
# accepts any faithful re-compression (mirrors differ) while still catching a wrong file.
CANONICAL_SHA256 = {
    TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension

VALIDATION_FRACTION = 0.1
"""The seed's split: the last 10% of the training images validate, the rest train."""


class IdxFormatError(ValueError):
    """An IDX file is corrupt, truncated or not the kind of file expected."""


class DatasetNotFound(FileNotFoundError):
    """The MNIST files are neither in the given directory nor the cache, and cannot be downloaded."""


@dataclass(frozen=True)
class RawSplit:
    """uint8 images (N, 28, 28) and their labels (N,)."""

    images: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.uint8]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: slice) -> RawSplit:
        return RawSplit(self.images[index], self.labels[index])


@dataclass(frozen=True)
class Mnist:
    """The dataset as the seed uses it, plus where it came from."""

    train: RawSplit
    validation: RawSplit
    test: RawSplit
    source: Path
    file_sha256: dict[str, str]


# ---------------------------------------------------------------------------------------------
# IDX parsing


def parse_idx(data: bytes, *, expected_magic: int, name: str) -> npt.NDArray[np.uint8]:
    """Parse the bytes of one uncompressed IDX file of unsigned bytes.

    Raises:
        IdxFormatError: wrong magic number, wrong dimensions, or a length that does not match
            the header (truncated or trailing bytes).
    """
    ndim = expected_magic & 0xFF
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise IdxFormatError(f"{name}: {len(data)} bytes is shorter than the {header_size}-byte IDX header")
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expected_magic:
        raise IdxFormatError(f"{name}: magic number 0x{magic:08x}, expected 0x{expected_magic:08x}")
    dims = struct.unpack(f">{ndim}I", data[4:header_size])
    if ndim == 3 and dims[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise IdxFormatError(f"{name}: images are {dims[1]}x{dims[2]}, expected {IMAGE_SIDE}x{IMAGE_SIDE}")
    expected_len = header_size + int(np.prod(dims))
    if len(data) != expected_len:
        problem = "truncated" if len(data) < expected_len else "has trailing bytes"
        raise IdxFormatError(
            f"{name}: {problem}: header declares {'x'.join(map(str, dims))} items "
            f"({expected_len} bytes), file has {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims)


def read_idx_bytes(path: Path) -> bytes:
    """Read a raw or gzip-compressed IDX file, turning gzip damage into IdxFormatError."""
    raw = path.read_bytes()
    if path.suffix != ".gz":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise IdxFormatError(f"{path.name}: not a valid gzip file ({exc})") from exc


def load_split(directory: Path, images_name: str, labels_name: str) -> tuple[RawSplit, dict[str, str]]:
    """Load one images/labels pair and check they agree."""
    arrays: dict[str, npt.NDArray[np.uint8]] = {}
    hashes: dict[str, str] = {}
    for stem, magic in ((images_name, IMAGES_MAGIC), (labels_name, LABELS_MAGIC)):
        path = find_file(directory, stem)
        if path is None:
            raise DatasetNotFound(f"{stem}[.gz] not found in {directory}")
        data = read_idx_bytes(path)
        hashes[stem] = hashlib.sha256(data).hexdigest()
        arrays[stem] = parse_idx(data, expected_magic=magic, name=path.name)
    images, labels = arrays[images_name], arrays[labels_name]
    if len(images) != len(labels):
        raise IdxFormatError(f"{images_name} has {len(images)} images but {labels_name} has {len(labels)} labels")
    if labels.size and labels.max() >= NUM_CLASSES:
        raise IdxFormatError(f"{labels_name}: label {labels.max()} is not a digit")
    return RawSplit(images, labels), hashes


def find_file(directory: Path, stem: str) -> Path | None:
    """The compressed or raw copy of an IDX file in `directory`, if any."""
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


# ---------------------------------------------------------------------------------------------
# Where the files come from


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "digits" / "mnist"


def missing_files(directory: Path) -> list[str]:
    return [stem for stem in FILES if find_file(directory, stem) is None]


def resolve_data_dir(data_dir: Path | None = None, *, download: bool = True) -> Path:
    """Find a directory holding all four files, downloading into the cache if need be.

    An explicit directory (argument or `MNIST_DIR`) must be complete: it is never silently
    replaced by the cache, since that would train on other data than the user named.
    """
    explicit = data_dir or (Path(os.environ[DATA_DIR_ENV]) if os.environ.get(DATA_DIR_ENV) else None)
    if explicit is not None:
        missing = missing_files(explicit)
        if missing:
            raise DatasetNotFound(
                f"{explicit} lacks {', '.join(f + '[.gz]' for f in missing)}; "
                "put the four MNIST IDX files there or point --data-dir / MNIST_DIR elsewhere"
            )
        return explicit
    cache = default_cache_dir()
    missing = missing_files(cache)
    if not missing:
        return cache
    if not download:
        raise DatasetNotFound(_how_to_provide(cache, missing, reason="downloads are disabled"))
    cache.mkdir(parents=True, exist_ok=True)
    for stem in missing:
        download_file(stem, cache)
    return cache


def download_file(stem: str, cache: Path) -> Path:
    """Fetch `<stem>.gz` from the first mirror that answers, verify it, and move it into the cache."""
    errors = []
    for mirror in MIRRORS:
        url = f"{mirror}{stem}.gz"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (fixed https URLs)
                payload = response.read()
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            errors.append(f"{url}: {exc}")
            continue
        try:
            content = gzip.decompress(payload)
        except (OSError, EOFError, zlib.error) as exc:
            errors.append(f"{url}: not gzip ({exc})")
            continue
        digest = hashlib.sha256(content).hexdigest()
        if digest != CANONICAL_SHA256[stem]:
            errors.append(f"{url}: SHA-256 {digest} != expected {CANONICAL_SHA256[stem]}")
            continue
        target = cache / f"{stem}.gz"
        partial = target.with_suffix(".gz.part")
        partial.write_bytes(payload)
        partial.replace(target)  # never leave a half-written file under the real name
        return target
    raise DatasetNotFound(_how_to_provide(cache, [stem], reason="; ".join(errors)))


def _how_to_provide(cache: Path, missing: list[str], reason: str) -> str:
    return (
        f"MNIST files missing: {', '.join(m + '.gz' for m in missing)} (download failed: {reason}). "
        f"Copy the four IDX files into {cache}, or pass --data-dir DIR / set {DATA_DIR_ENV}=DIR "
        "to a directory that holds them."
    )


# ---------------------------------------------------------------------------------------------
# The dataset as training uses it


def load_mnist(data_dir: Path | None = None, *, download: bool = True) -> Mnist:
    """Load, validate and split MNIST: the last 10% of the training images validate."""
    directory = resolve_data_dir(data_dir, download=download)
    train_full, train_hashes = load_split(directory, TRAIN_IMAGES, TRAIN_LABELS)
    test, test_hashes = load_split(directory, TEST_IMAGES, TEST_LABELS)
    n_val = round(len(train_full) * VALIDATION_FRACTION)
    cut = len(train_full) - n_val
    return Mnist(
        train=RawSplit(train_full.images[:cut], train_full.labels[:cut]),
        validation=RawSplit(train_full.images[cut:], train_full.labels[cut:]),
        test=test,
        source=directory,
        file_sha256={**train_hashes, **test_hashes},
    )


def as_model_input(split: RawSplit) -> npt.NDArray[np.float32]:
    """The split's images as (N, 28, 28, 1) float32 in [0, 1], via the shared normalisation."""
    return normalize_pixels(split.images)
