"""Evaluation of an exported ONNX model on labelled images: the test metrics of a model card.

Pure NumPy + ONNX Runtime: it scores the artifact that is served, not the Keras object.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from digit_contract.inputs import INPUT_NAME, NUM_CLASSES, OUTPUT_NAME

# Keras clips probabilities to [eps, 1 - eps] in categorical cross-entropy; do the same so the
# test loss is comparable with the training history.
_EPSILON = 1e-7


@dataclass(frozen=True)
class ClassificationMetrics:
    accuracy: float
    loss: float
    errors: int
    precision: list[float]
    recall: list[float]
    f1: list[float]
    support: list[int]
    confusion_matrix: list[list[int]]
    misclassified_indices: list[int]
    misclassified_labels: list[int]
    misclassified_predicted: list[int]
    misclassified_confidence: list[float]

    @property
    def macro_precision(self) -> float:
        return float(np.mean(self.precision))

    @property
    def macro_recall(self) -> float:
        return float(np.mean(self.recall))

    @property
    def macro_f1(self) -> float:
        return float(np.mean(self.f1))


def classification_metrics(
    labels: npt.NDArray[np.integer], probabilities: npt.NDArray[np.floating]
) -> ClassificationMetrics:
    """Accuracy, cross-entropy, per-class precision/recall/F1, confusion matrix and the errors.

    A class never predicted (or never present) gets precision (recall) 0, as scikit-learn's
    `zero_division=0` does.
    """
    labels = np.asarray(labels, dtype=np.int64)
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_positive = np.diag(confusion).astype(np.float64)
    predicted_count = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    precision = np.divide(true_positive, predicted_count, out=np.zeros(NUM_CLASSES), where=predicted_count > 0)
    recall = np.divide(true_positive, support, out=np.zeros(NUM_CLASSES), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(NUM_CLASSES), where=denominator > 0)
    picked = np.clip(probabilities[np.arange(len(labels)), labels].astype(np.float64), _EPSILON, 1 - _EPSILON)
    wrong = np.flatnonzero(predicted != labels)
    return ClassificationMetrics(
        accuracy=float(true_positive.sum() / len(labels)),
        loss=float(-np.log(picked).mean()),
        errors=len(wrong),
        precision=precision.tolist(),
        recall=recall.tolist(),
        f1=f1.tolist(),
        support=support.tolist(),
        confusion_matrix=confusion.tolist(),
        misclassified_indices=wrong.tolist(),
        misclassified_labels=labels[wrong].tolist(),
        misclassified_predicted=predicted[wrong].tolist(),
        misclassified_confidence=probabilities[wrong, predicted[wrong]].astype(float).tolist(),
    )


def predict_onnx(path: Path, images: npt.NDArray[np.float32], batch_size: int = 1000) -> npt.NDArray[np.float32]:
    """Probabilities of an ONNX model on (N, 28, 28, 1) images, on the CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate(
        [
            session.run([OUTPUT_NAME], {INPUT_NAME: images[i : i + batch_size]})[0]
            for i in range(0, len(images), batch_size)
        ]
    )


def evaluate_onnx(
    path: Path, images: npt.NDArray[np.float32], labels: npt.NDArray[np.integer]
) -> ClassificationMetrics:
    """Score the exported file on labelled images."""
    return classification_metrics(labels, predict_onnx(path, images))
