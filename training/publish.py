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
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

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
from digit_contract.inputs import INPUT_NAME, MNIST_INPUT, NUM_CLASSES, OUTPUT_NAME, InputSpec
from digit_contract.store import CARD_FILE, MODEL_FILE, publish_version
from training.evaluate import evaluate_onnx
from training.export import ExportReport, convert_to_onnx, verify_export

if TYPE_CHECKING:
    import keras

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


def history_records(history: Mapping[str, Sequence[float]]) -> list[EpochRecord]:
    """Keras's History.history (loss, accuracy and their validation twins) as the card's per-epoch
    records; every Keras trainer's card history comes from here."""
    return [
        EpochRecord(
            epoch=i + 1,
            loss=float(history["loss"][i]),
            accuracy=float(history["accuracy"][i]),
            val_loss=float(history["val_loss"][i]),
            val_accuracy=float(history["val_accuracy"][i]),
        )
        for i in range(len(history["loss"]))
    ]


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


def publish_keras(
    model: keras.Model,
    *,
    name: str,
    experiment: str,
    architecture: str,
    description: str,
    hyperparameters: Hyperparameters,
    history: list[EpochRecord],
    seconds: float,
    seed: int,
    parity_inputs: npt.NDArray[np.float32],
    test: TestSplit,
    store: Path,
    spec: InputSpec = MNIST_INPUT,
) -> ModelCard:
    """Export a trained Keras model to ONNX, check its parity with Keras on `parity_inputs`, score
    the file on `test` and publish it with its card: the one path of every Keras trainer.

    Args:
        experiment: the experiment's id (training/experiments.py).
        spec: what the graph takes (MNIST's [N, 28, 28, 1] unless told otherwise).
    Returns:
        The card written into the store.
    """
    # The export goes to a scratch directory first: `publish` copies it into the store's staging
    # directory only once it has been verified, so a failed parity check leaves no version behind.
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as tmp:
        onnx_file = Path(tmp) / MODEL_FILE
        convert_to_onnx(model, onnx_file, spec)
        trained = TrainedModel(
            name=name,
            experiment=experiment,
            architecture=architecture,
            framework="keras",
            input=spec,
            description=description,
            hyperparameters=hyperparameters,
            parameter_count=int(model.count_params()),
            seed=seed,
            history=history,
            training_seconds=seconds,
            onnx_file=onnx_file,
            export=verify_export(model, onnx_file, parity_inputs, spec),
        )
        return publish(trained, test, store)
