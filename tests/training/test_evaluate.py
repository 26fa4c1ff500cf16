"""The classification metrics recorded in model cards, on a case worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluate import classification_metrics


def one_hot(predicted: list[int], confidence: float = 0.9) -> np.ndarray:
    probs = np.full((len(predicted), 10), (1 - confidence) / 9, dtype=np.float32)
    probs[np.arange(len(predicted)), predicted] = confidence
    return probs


def test_metrics_of_a_small_hand_checked_case() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2])
    predicted = [0, 1, 1, 1, 2, 0]  # two errors: #1 (0 -> 1) and #5 (2 -> 0)
    m = classification_metrics(labels, one_hot(predicted))
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.errors == 2
    assert m.misclassified_indices == [1, 5]
    assert m.misclassified_labels == [0, 2]
    assert m.misclassified_predicted == [1, 0]
    assert m.misclassified_confidence == pytest.approx([0.9, 0.9])
    # Digit 0: predicted 2x (1 right) -> precision 1/2; present 2x (1 found) -> recall 1/2.
    # Digit 1: predicted 3x (2 right) -> precision 2/3; recall 2/2.
    assert m.precision[:3] == pytest.approx([1 / 2, 2 / 3, 1.0])
    assert m.recall[:3] == pytest.approx([1 / 2, 1.0, 1 / 2])
    assert m.f1[1] == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))
    # Digits 3-9 never occur and are never predicted: 0 everywhere (zero_division=0).
    assert m.precision[3:] == m.recall[3:] == m.f1[3:] == [0.0] * 7
    assert m.support == [2, 2, 2] + [0] * 7
    assert m.confusion_matrix[0][:3] == [1, 1, 0] and m.confusion_matrix[2][:3] == [1, 0, 1]
    assert m.loss == pytest.approx((4 * -np.log(0.9) + 2 * -np.log(0.1 / 9)) / 6, rel=1e-5)
    assert m.macro_f1 == pytest.approx(np.mean(m.f1))


def test_loss_is_clipped_like_keras() -> None:
    probs = np.zeros((1, 10), np.float32)
    probs[0, 3] = 1.0
    assert classification_metrics(np.array([5]), probs).loss == pytest.approx(-np.log(1e-7))
