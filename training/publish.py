"""Publish any trained digit classifier to the store: its ONNX file, evaluated, with its card.

Every experiment's trainer (Keras, scikit-learn, NumPy) ends here. It gives the ONNX file it
exported and verified, what the card says about how the model was built and trained, and the
test split; this module scores the ONNX file (not the framework's object) on the test split,
fills the card's evaluation fields and publishes the version atomically (`digit_contract.store`).
"""

from __future__ import annotations

import hashlib
import logging
import platform
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import numpy.typing as npt

from digit_contract.card import (
    AveragedMetrics,
    ClassMetrics,
    DatasetInfo,
    EpochRecord,
    Hyperparameters,
    Misclassification,
    ModelCard,
    OnnxArtifact,
)
from digit_contract.inputs import INPUT_NAME, NUM_CLASSES, OUTPUT_NAME, InputSpec
from digit_contract.store import CARD_FILE, MODEL_FILE, publish_version
from training.evaluate import evaluate_onnx
from training.export import ExportReport

log = logging.getLogger(__name__)

_LIBRARIES = ("tensorflow", "keras", "tf2onnx", "scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "protobuf")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in _LIBRARIES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


@dataclass(frozen=True)
class TrainedModel:
    """What a trainer knows about the model it trained and exported (everything but the test score)."""

    name: str
    experiment: str
    architecture: str  # "mlp" or "cnn": the card validates it
    framework: str  # "keras", "scikit-learn" or "numpy"
    input: InputSpec
    description: str
    hyperparameters: Hyperparameters
    parameter_count: int
    seed: int
    history: list[EpochRecord]
    training_seconds: float
    onnx_file: Path
    """The exported, verified file; copied into the store."""
    export: ExportReport


@dataclass(frozen=True)
class TestSplit:
    """The experiment's test images, shaped as the model's input spec says, and their labels."""

    inputs: npt.NDArray[np.float32]
    labels: npt.NDArray[np.integer]
    dataset: DatasetInfo


def card_for(model: TrainedModel, test: TestSplit, version: int, onnx_file: Path) -> ModelCard:
    """The full card of `model`, with the evaluation of `onnx_file` on the test split."""
    metrics = evaluate_onnx(onnx_file, test.inputs, test.labels)
    payload = onnx_file.read_bytes()
    return ModelCard.model_validate(
        {
            "name": model.name,
            "version": version,
            "experiment": model.experiment,
            "architecture": model.architecture,
            "framework": model.framework,
            "input": model.input,
            "description": model.description,
            "hyperparameters": model.hyperparameters,
            "parameter_count": model.parameter_count,
            "seed": model.seed,
            "history": model.history,
            "training_seconds": round(model.training_seconds, 2),
            "test_accuracy": metrics.accuracy,
            "test_loss": metrics.loss,
            "test_errors": metrics.errors,
            "per_class": [
                ClassMetrics(
                    digit=d,
                    precision=metrics.precision[d],
                    recall=metrics.recall[d],
                    f1=metrics.f1[d],
                    support=metrics.support[d],
                )
                for d in range(NUM_CLASSES)
            ],
            "macro_avg": AveragedMetrics(
                precision=metrics.macro_precision, recall=metrics.macro_recall, f1=metrics.macro_f1
            ),
            "confusion_matrix": metrics.confusion_matrix,
            "misclassified": [
                Misclassification(index=i, label=t, predicted=p, confidence=c)
                for i, t, p, c in zip(
                    metrics.misclassified_indices,
                    metrics.misclassified_labels,
                    metrics.misclassified_predicted,
                    metrics.misclassified_confidence,
                    strict=True,
                )
            ],
            "onnx": OnnxArtifact(
                file=MODEL_FILE,
                sha256=hashlib.sha256(payload).hexdigest(),
                size_bytes=len(payload),
                opset=model.export.opset,
                input_name=INPUT_NAME,
                output_name=OUTPUT_NAME,
                max_abs_diff_vs_keras=model.export.max_abs_diff,
            ),
            "dataset": test.dataset,
            "library_versions": library_versions(),
            "created_at": datetime.now(UTC).replace(microsecond=0),
        }
    )


def publish(model: TrainedModel, test: TestSplit, store: Path) -> ModelCard:
    """Copy the ONNX file into the next version of `model.name`, score it, write its card."""
    written: list[ModelCard] = []

    def build(staging: Path, version: int) -> None:
        target = staging / MODEL_FILE
        if model.onnx_file != target:
            shutil.copyfile(model.onnx_file, target)
        card = card_for(model, test, version, target)
        card.write(staging / CARD_FILE)
        written.append(card)

    publish_version(store, model.name, build)
    card = written[0]
    log.info(
        "%s v%d (%s): test accuracy %.4f (%d errors of %d), loss %.4f, trained in %.0f s",
        card.name,
        card.version,
        card.experiment,
        card.test_accuracy,
        card.test_errors,
        card.dataset.test_samples,
        card.test_loss,
        card.training_seconds,
    )
    return card
