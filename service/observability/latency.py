"""What requests see: a rolling window of each model's real inference times.

The warm-up at load (service/models/checks.py) times single images on an idle server: its best
case. Operators and the comparison want the time real requests take, under whatever load and
batch sizes they arrive with, so the data plane records every inference here and the figures
are computed from the last `WINDOW` requests. The window is per worker process.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Wall-clock latency of single-image inferences measured at warm-up, in milliseconds."""

    runs: int
    p50_ms: float
    p95_ms: float
    mean_ms: float

    @classmethod
    def from_seconds(cls, samples: Sequence[float]) -> LatencyStats:
        ms = np.asarray(samples, dtype=np.float64) * 1000.0
        return cls(len(ms), float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), float(ms.mean()))


WINDOW = 1024
"""Requests remembered per model: enough for stable percentiles, a few seconds of a busy server."""


class RequestLatency:
    """Inference seconds and batch sizes of a model's recent requests (thread-safe: the data plane
    records from the event loop and from worker threads)."""

    def __init__(self, window: int = WINDOW) -> None:
        self._seconds: deque[float] = deque(maxlen=window)
        self._images: deque[int] = deque(maxlen=window)
        self._lock = threading.Lock()

    def record(self, seconds: float, images: int) -> None:
        with self._lock:
            self._seconds.append(seconds)
            self._images.append(images)

    def stats(self) -> LatencyStats | None:
        """Per-request latency over the window; None before the first request."""
        with self._lock:
            samples = list(self._seconds)
        return LatencyStats.from_seconds(samples) if samples else None

    def per_image_stats(self) -> LatencyStats | None:
        """Each request's inference time divided by its images, over the window; None before the first.

        A batch of 64 takes longer than one image but less per image: per request, a model's p50
        moves with the batch sizes its traffic happens to send (1.58 ms against 0.07 ms for the same
        CNN); per image, models compare whatever their traffic.
        """
        with self._lock:
            samples = [seconds / max(images, 1) for seconds, images in zip(self._seconds, self._images, strict=True)]
        return LatencyStats.from_seconds(samples) if samples else None

    def mean_batch(self) -> float | None:
        with self._lock:
            return float(np.mean(self._images)) if self._images else None
