"""Triton's statistics extension: what each model version has done, as Triton counts it.

Per model and version: `inference_count` (images inferred), `execution_count` (model runs),
`last_inference` (ms since the epoch) and durations as (count, nanoseconds): `success` and `fail`
(whole requests, from the model's lookup to the built answer), `queue`, `compute_input` (the
request's tensor checked and shaped, or image files decoded and framed), `compute_infer` (the
model's run) and `compute_output` (the answer's tensors built).

What is counted: the protocol's inference requests, REST and gRPC, of this worker process (as
Triton's are per server). `queue` counts each request with zero nanoseconds: no scheduler queue
stands in front of a model, and with `DIGITS_BATCHING` on the wait for a batch is inside
`compute_infer` (the batcher does not report it apart). For image files the decoding happens
inside the data plane's run, so their `compute_input` is counted in `compute_infer` too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

PHASES = ("queue", "compute_input", "compute_infer", "compute_output")
"""The request phases a success counts, in Triton's names."""


@dataclass
class _Counts:
    inference_count: int = 0
    execution_count: int = 0
    last_inference_ms: int = 0
    durations: dict[str, list[int]] = field(
        default_factory=lambda: {name: [0, 0] for name in ("success", "fail", *PHASES)})


class RequestTimer:
    """Times one request's phases: `phase(name)` closes the phase running since the last mark."""

    def __init__(self) -> None:
        self.start = self._mark = time.perf_counter_ns()
        self.phases: dict[str, int] = dict.fromkeys(PHASES, 0)

    def phase(self, name: str) -> None:
        now = time.perf_counter_ns()
        self.phases[name] += now - self._mark
        self._mark = now

    def elapsed_ns(self) -> int:
        return time.perf_counter_ns() - self.start


class InferenceStatistics:
    """The counts of every model version this process has served (thread-safe, cumulative)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], _Counts] = {}

    def succeeded(self, name: str, version: str, timer: RequestTimer, images: int) -> None:
        with self._lock:
            counts = self._counts.setdefault((name, version), _Counts())
            counts.inference_count += images
            counts.execution_count += 1
            counts.last_inference_ms = time.time_ns() // 1_000_000
            _add(counts.durations["success"], timer.elapsed_ns())
            for phase, ns in timer.phases.items():
                _add(counts.durations[phase], ns)

    def failed(self, name: str, version: str, timer: RequestTimer) -> None:
        with self._lock:
            counts = self._counts.setdefault((name, version), _Counts())
            _add(counts.durations["fail"], timer.elapsed_ns())

    def report(self, name: str, version: str) -> dict[str, Any]:
        """One version's `ModelStatistics`, as Triton's JSON (uint64 as numbers; zeros before any request)."""
        with self._lock:
            counts = self._counts.get((name, version), _Counts())
            durations = {key: {"count": count, "ns": ns} for key, (count, ns) in counts.durations.items()}
            return {
                "name": name,
                "version": version,
                "last_inference": counts.last_inference_ms,
                "inference_count": counts.inference_count,
                "execution_count": counts.execution_count,
                "inference_stats": {**durations, "cache_hit": {"count": 0, "ns": 0},
                                    "cache_miss": {"count": 0, "ns": 0}},
                "batch_stats": [],
            }


def _add(duration: list[int], ns: int) -> None:
    duration[0] += 1
    duration[1] += ns
