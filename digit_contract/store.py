"""Layout of the model store, shared by the trainer that writes it and the service that reads it.

The layout is that of a Triton / KServe model repository, so other servers can read it too::

    model_store/
      cnn_noise/
        1/
          model.onnx
          card.json

Versions are positive integers. A new version is assembled in a hidden staging directory next
to the versions and renamed into place, so readers never see a half-written version.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from digit_contract.card import ModelCard

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
CARD_FILE = "card.json"
_STAGING_PREFIX = ".incomplete-"


def list_versions(store: Path, name: str) -> list[int]:
    """Published versions of one model, ascending. Staging and non-integer entries are ignored.

    Raises:
        OSError: the model's directory exists but cannot be listed (permissions, I/O).
    """
    model_dir = store / name
    if not model_dir.is_dir():
        return []
    return sorted(
        int(entry.name)
        for entry in model_dir.iterdir()
        if entry.name.isascii() and entry.name.isdigit() and int(entry.name) > 0 and entry.is_dir()
    )


@dataclass(frozen=True)
class StoreListing:
    """What a store holds: each model's published versions, and the model directories that could
    not be read (name -> why), which a server reports as failed models rather than ignoring."""

    versions: dict[str, list[int]]
    unreadable: dict[str, str]

    @property
    def latest(self) -> dict[str, int]:
        """Each readable model's highest published version, in name order."""
        return {name: found[-1] for name, found in self.versions.items()}


def scan_store(store: Path) -> StoreListing:
    """List every model directory of the store.

    Raises:
        OSError: the store's own directory exists but cannot be listed.
    """
    if not store.is_dir():
        return StoreListing({}, {})
    versions: dict[str, list[int]] = {}
    unreadable: dict[str, str] = {}
    for entry in sorted(store.iterdir()):
        try:
            found = list_versions(store, entry.name)
        except OSError as exc:
            unreadable[entry.name] = exc.strerror or type(exc).__name__
            continue
        if found:
            versions[entry.name] = found
    return StoreListing(versions, unreadable)


def list_models(store: Path) -> dict[str, list[int]]:
    """Every readable model directory that holds at least one published version."""
    return scan_store(store).versions


def latest_version(store: Path, name: str) -> int | None:
    """The highest published version of one model, or None when the model has none."""
    versions = list_versions(store, name)
    return versions[-1] if versions else None


def latest_versions(store: Path) -> dict[str, int]:
    """The latest version of each model: name -> its highest published version, in name order.

    The one definition of "the latest version" (the registry's default version policy, the report,
    the bench and the tests all read it); unreadable model directories are left out.
    """
    return scan_store(store).latest


def latest_cards(store: Path) -> dict[str, ModelCard]:
    """The card of each model's latest version, in name order.

    Raises:
        OSError, pydantic.ValidationError: a card is missing or invalid (a server reports such a
            model as failed instead; this is for tools that read a store they trust).
    """
    return {name: ModelCard.read(version_dir(store, name, version) / CARD_FILE)
            for name, version in latest_versions(store).items()}


def version_dir(store: Path, name: str, version: int) -> Path:
    """Directory of one version (it need not exist)."""
    return store / name / str(version)


UPLOAD_EVALUATION_FILE = "uploads-validation.json"
"""Beside the models: each model's accuracy on the user-style uploads rendered from the validation
split (`python -m evaluation --split validation --record`), which ranks models for image uploads,
and which of those uploads each model read right (for paired tests between models)."""


@dataclass(frozen=True)
class UploadEvaluation:
    """The store's record of the validation uploads (`UPLOAD_EVALUATION_FILE`)."""

    uploads: int
    """How many uploads every model was scored on: the same uploads, in the same order, for all."""
    accuracy: dict[str, float]
    correct: dict[str, npt.NDArray[np.bool_]]
    """Per model, which uploads it read right (length `uploads`); absent from records made before
    they were kept, and for a model whose bits do not fit the count."""
    onnx_sha256: dict[str, str]
    """Per model, the hash of the ONNX file that was scored; absent from older records."""


def pack_correct(right: npt.NDArray[np.bool_]) -> str:
    """One bit per upload, base64: 4,840 uploads take 808 characters instead of a JSON list of 4,840."""
    return base64.b64encode(np.packbits(np.asarray(right, dtype=bool)).tobytes()).decode("ascii")


def unpack_correct(text: str, count: int) -> npt.NDArray[np.bool_]:
    """The inverse of `pack_correct`.

    Raises:
        ValueError: not base64, or not `count` bits long.
    """
    packed = np.frombuffer(base64.b64decode(text, validate=True), dtype=np.uint8)
    if len(packed) != (count + 7) // 8:
        raise ValueError(f"{len(packed) * 8} bits recorded for {count} uploads")
    bits: npt.NDArray[np.bool_] = np.unpackbits(packed)[:count].astype(bool)
    return bits


def read_upload_evaluation(store: Path) -> UploadEvaluation | None:
    """The store's validation-upload record; None when there is none or it is malformed.

    A malformed file is logged and ignored: it only orders and compares models, it never stops one
    serving. One model's malformed bits are dropped with a warning, its accuracy kept.
    """
    path = store / UPLOAD_EVALUATION_FILE
    try:
        record = json.loads(path.read_text())
        uploads = int(record.get("uploads", 0))
        accuracy = {str(name): float(value) for name, value in record["accuracy"].items() if 0.0 <= float(value) <= 1.0}
        hashes = {str(name): str(value) for name, value in record.get("onnx_sha256", {}).items()}
        packed = dict(record.get("correct", {}))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("ignoring %s: %s", UPLOAD_EVALUATION_FILE, exc)
        return None
    correct = {}
    for name, text in packed.items():
        try:
            correct[str(name)] = unpack_correct(str(text), uploads)
        except ValueError as exc:
            log.warning("%s: ignoring %s's per-upload results: %s", UPLOAD_EVALUATION_FILE, name, exc)
    return UploadEvaluation(uploads, accuracy, correct, hashes)


def read_upload_accuracy(store: Path) -> dict[str, float]:
    """Model name -> accuracy on the validation uploads; empty when the store has no evaluation."""
    evaluation = read_upload_evaluation(store)
    return evaluation.accuracy if evaluation is not None else {}


class VersionConflict(FileExistsError):
    """Another writer published the version number this writer had chosen."""


def publish_version(store: Path, name: str, build: Callable[[Path, int], None]) -> Path:
    """Create the next version of `name` atomically.

    `build(staging, version)` fills an empty staging directory for the chosen version number.
    Only when it returns is the directory renamed to that version; if it raises, the staging
    directory is removed and no version appears. A crash mid-build leaves only a hidden
    `.incomplete-*` directory, which readers ignore.

    Raises:
        VersionConflict: a concurrent writer published the same version first; nothing of
            this writer's is left behind.

    Returns:
        The published version directory.
    """
    model_dir = store / name
    model_dir.mkdir(parents=True, exist_ok=True)
    version = (latest_version(store, name) or 0) + 1
    target = version_dir(store, name, version)
    staging = model_dir / f"{_STAGING_PREFIX}{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        build(staging, version)
        _fsync_tree(staging)
        if target.exists():
            raise VersionConflict(f"{name} version {version} was published by another writer meanwhile")
        # rename(2) is atomic within one filesystem: readers see no version or a complete one.
        os.rename(staging, target)
        _fsync_dir(model_dir)
        return target
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _fsync_tree(directory: Path) -> None:
    for path in directory.iterdir():
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
