"""Calibration: how far a model's confidence is from its accuracy, and temperature scaling.

A model is calibrated when, of the answers it gives with confidence ~0.9, ~90% are right. The
expected calibration error (ECE) measures the gap over equal-width confidence bins. Temperature
scaling divides the logits by one number T, fitted on the validation split by minimising the
negative log-likelihood: T > 1 softens over-confident answers, T < 1 sharpens timid ones, and the
predicted digit never changes (argmax is invariant to a positive scale).

The served ONNX graphs end in a softmax, so they give probabilities, not logits; log(p) is the
logits up to a constant per image, which softmax ignores, so softmax(log(p) / T) is exactly
temperature scaling. Pure NumPy: the service applies it without TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from digit_contract.card import ModelCard

ECE_BINS = 15

# Probabilities that underflowed to 0 in float32 would give log(0) = -inf; the smallest normal
# float32 keeps them finite (a logit ~87 below the top one: still ~0 after any sane T).
_TINY = float(np.finfo(np.float32).tiny)

# The search interval for T; a fitted value at either end means the fit is not to be trusted.
T_MIN, T_MAX = 0.05, 20.0


def apply_temperature(probabilities: npt.ArrayLike, temperature: float) -> npt.NDArray[np.float32]:
    """softmax(log(p) / T) row by row, computed in float64, returned as float32.

    T = 1 returns the probabilities unchanged (as float32).

    Raises:
        ValueError: T not a finite positive number, or probabilities not (N, classes).
    """
    if not (np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    p = np.asarray(probabilities)
    if p.ndim != 2:
        raise ValueError(f"probabilities must be (N, classes), got shape {p.shape}")
    if temperature == 1.0:
        return p.astype(np.float32, copy=False)
    logits = np.log(np.clip(p.astype(np.float64), _TINY, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)  # exp never overflows
    scaled = np.exp(logits)
    scaled /= scaled.sum(axis=1, keepdims=True)
    return scaled.astype(np.float32)


def negative_log_likelihood(probabilities: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Mean -log p(true digit), with p floored at the smallest float32."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    return float(-np.log(np.clip(p[np.arange(len(y)), y], _TINY, None)).mean())


def fit_temperature(probabilities: npt.ArrayLike, labels: npt.ArrayLike, iterations: int = 80) -> float:
    """The T in [T_MIN, T_MAX] that minimises the NLL of `apply_temperature(probabilities, T)`.

    The NLL is convex in 1/T (a log-sum-exp of a linear function of it minus a linear term), so a
    golden-section search on 1/T finds the minimum; 80 steps narrow it to ~1e-15 of the interval.
    """
    log_p = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), _TINY, None))
    y = np.asarray(labels, dtype=np.int64)
    picked = log_p[np.arange(len(y)), y]

    def nll(beta: float) -> float:
        z = beta * log_p
        top = z.max(axis=1)
        return float((top + np.log(np.exp(z - top[:, None]).sum(axis=1)) - beta * picked).mean())

    low, high = 1 / T_MAX, 1 / T_MIN
    ratio = (np.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = nll(a), nll(b)
    for _ in range(iterations):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = nll(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = nll(b)
    return float(1 / ((low + high) / 2))


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    confidence: float
    """Mean confidence of the answers in the bin (0 when empty)."""
    accuracy: float
    """Share of them that were right (0 when empty)."""


def reliability_bins(
    confidences: npt.ArrayLike, correct: npt.ArrayLike, bins: int = ECE_BINS
) -> list[ReliabilityBin]:
    """Answers grouped by confidence into `bins` equal-width bins (low, high]; 0 goes in the first."""
    conf = np.asarray(confidences, dtype=np.float64)
    right = np.asarray(correct, dtype=bool)
    if conf.shape != right.shape or conf.ndim != 1:
        raise ValueError("confidences and correct must be 1-D and of one length")
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds (edges[i], edges[i+1]]: searchsorted(side="left") - 1, with 0 put in bin 0.
    index = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    result = []
    for i in range(bins):
        members = index == i
        count = int(members.sum())
        result.append(
            ReliabilityBin(
                low=float(edges[i]),
                high=float(edges[i + 1]),
                count=count,
                confidence=float(conf[members].mean()) if count else 0.0,
                accuracy=float(right[members].mean()) if count else 0.0,
            )
        )
    return result


def expected_calibration_error(confidences: npt.ArrayLike, correct: npt.ArrayLike, bins: int = ECE_BINS) -> float:
    """sum over bins of (bin size / N) * |accuracy - mean confidence| (Guo et al., 2017)."""
    table = reliability_bins(confidences, correct, bins)
    total = sum(b.count for b in table)
    if total == 0:
        raise ValueError("no answers")
    return float(sum(b.count / total * abs(b.accuracy - b.confidence) for b in table))


def top_confidence(probabilities: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Each answer's confidence (its top probability) and whether it was right."""
    p = np.asarray(probabilities, dtype=np.float64)
    return p.max(axis=1), p.argmax(axis=1) == np.asarray(labels)


def served_probabilities(
    card: ModelCard | None, probabilities: npt.NDArray[np.float32], *, enabled: bool = True
) -> tuple[npt.NDArray[np.float32], bool]:
    """The probabilities to answer with, and whether they are calibrated.

    Temperature-scaled where serving calibration is `enabled` and the model's card says its
    temperature lowered the validation NLL (`calibration.applied`); otherwise the model's own.
    """
    calibration = card.calibration if card is not None else None
    if not enabled or calibration is None or not calibration.applied:
        return probabilities, False
    return apply_temperature(probabilities, calibration.temperature), True
