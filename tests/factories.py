"""Small, valid model cards for tests that need one without training a model."""

from __future__ import annotations

import gzip
import io
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from digit_contract.card import ModelCard
from digit_contract.inputs import MNIST_INPUT


def make_card(
    name: str = "cnn",
    version: int = 1,
    errors: tuple[tuple[int, int, int], ...] = ((3, 5, 3),),
    test_samples: int = 1000,
    epochs: int = 2,
    **overrides: Any,
) -> ModelCard:
    """A self-consistent card. `errors` are (test index, true digit, predicted digit)."""
    confusion = [[0] * 10 for _ in range(10)]
    for digit in range(10):
        confusion[digit][digit] = test_samples // 10
    for _, label, predicted in errors:
        confusion[label][label] -= 1
        confusion[label][predicted] += 1
    fields: dict[str, Any] = {
        "name": name,
        "version": version,
        "experiment": "regularisation",
        "architecture": "cnn" if name.startswith("cnn") else "mlp",
        "framework": "keras",
        "input": MNIST_INPUT.model_dump(),
        "description": "test card",
        "hyperparameters": {
            "hidden_units": None if name.startswith("cnn") else 44,
            "dropout_rate": 0.0,
            "noise_stddev": 0.0,
            "optimizer": "adam",
            "learning_rate": 0.001,
            "loss": "categorical_crossentropy",
            "batch_size": 128,
            "epochs": epochs,
            "validation_fraction": 0.1,
        },
        "parameter_count": 34_826,
        "seed": 1,
        "history": [
            {"epoch": e, "loss": 0.5 / e, "accuracy": 0.9, "val_loss": 0.4 / e, "val_accuracy": 0.95}
            for e in range(1, epochs + 1)
        ],
        "training_seconds": 12.5,
        "test_accuracy": (test_samples - len(errors)) / test_samples,
        "test_loss": 0.03,
        "test_errors": len(errors),
        "per_class": [
            {"digit": d, "precision": 0.99, "recall": 0.99, "f1": 0.99, "support": test_samples // 10}
            for d in range(10)
        ],
        "macro_avg": {"precision": 0.99, "recall": 0.99, "f1": 0.99},
        "confusion_matrix": confusion,
        "misclassified": [
            {"index": i, "label": label, "predicted": predicted, "confidence": 0.6} for i, label, predicted in errors
        ],
        "onnx": {
            "sha256": "0" * 64,
            "size_bytes": 1234,
            "opset": 17,
            "input_name": "image",
            "output_name": "probabilities",
            "max_abs_diff_vs_keras": 1e-7,
        },
        "dataset": {
            "split": "train: first 90%; validation: last 10%; test: the test images",
            "file_sha256": {"t10k-images-idx3-ubyte": "1" * 64},
            "train_samples": 54_000,
            "validation_samples": 6_000,
            "test_samples": test_samples,
        },
        "library_versions": {"python": "3.11.7"},
        "created_at": datetime(2026, 11, 21, 12, 0, tzinfo=UTC),
    }
    fields.update(overrides)
    return ModelCard.model_validate(fields)


def encode(image: Image.Image | npt.NDArray[Any], fmt: str = "PNG", **params: Any) -> bytes:
    """The bytes of `image` (a PIL image or an array) saved in `fmt`."""
    if not isinstance(image, Image.Image):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def bar_digit(size: int = 280, *, ink: int = 0, paper: int = 255) -> npt.NDArray[np.uint8]:
    """A thick vertical stroke (a "1") on a square page, dark on light by default."""
    page = np.full((size, size), paper, dtype=np.uint8)
    page[size // 5 : size - size // 5, size // 2 - size // 20 : size // 2 + size // 20] = ink
    return page


def write_idx_set(directory: Path, n_train: int = 50, n_test: int = 20, *, compress: bool = True, seed: int = 0) -> None:
    """The four KMNIST/MNIST IDX files with random 28x28 images and labels."""
    from training.data import FILES

    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for stem, n in zip(FILES, (n_train, n_train, n_test, n_test), strict=True):
        if "images" in stem:
            payload = struct.pack(">IIII", 0x803, n, 28, 28) + rng.integers(0, 256, (n, 28, 28), dtype=np.uint8).tobytes()
        else:
            payload = struct.pack(">II", 0x801, n) + rng.integers(0, 10, n, dtype=np.uint8).tobytes()
        if compress:
            (directory / f"{stem}.gz").write_bytes(gzip.compress(payload))
        else:
            (directory / stem).write_bytes(payload)
