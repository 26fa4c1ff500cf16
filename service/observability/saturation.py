"""Whether this worker can take work now: the readiness probe's saturation check.

A worker whose queues stay full (threads, upload slots, body budget, a batch queue), or whose event
loop stops running, answers its readiness probe with 503 so that a load balancer routes around it,
and with 200 again as soon as it catches up, without a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from digit_contract.errors import ServiceError


class WorkerSaturated(ServiceError):
    """The worker's work queue has been full for longer than a probe period: route elsewhere for now."""

    status_code = 503
    title = "worker saturated"
    headers = {"Retry-After": "5"}  # noqa: RUF012 (read-only, shared by every instance)


class SaturationMonitor:
    """Whether work has been waiting continuously (for a thread, an upload slot, body budget, a batch).

    `sample()` runs every `interval` seconds on the worker's event loop (`watch`): each time something
    waits, the streak goes on; the first sample with nothing waiting ends it. Readiness reports "not
    ready" once the streak is longer than `threshold` (a probe period), or once the event loop has not
    sampled for that long (it is blocked), and ready again at the first idle sample, so that a load
    balancer routes around a saturated worker and back without a restart. Sampling keeps the request
    path free of bookkeeping. Times are `time.monotonic()`: the management listener asks from its own
    thread and event loop.
    """

    def __init__(self, queued: Callable[[], int], threshold: float, interval: float = 0.5) -> None:
        self.queued = queued
        self.threshold = threshold
        self.interval = interval
        self.since: float | None = None
        self.last_sample: float | None = None

    def sample(self) -> None:
        now = time.monotonic()
        self.last_sample = now
        if self.queued() > 0:
            if self.since is None:
                self.since = now
        else:
            self.since = None

    def check(self) -> None:
        """Raise `WorkerSaturated` when the queue has been full, or the loop stalled, beyond the threshold."""
        now = time.monotonic()
        if self.last_sample is not None and now - self.last_sample > self.threshold:
            raise WorkerSaturated(f"this worker's event loop has not run for {now - self.last_sample:.0f} s; retry on "
                                  "another worker or later")
        if self.since is not None and now - self.since > self.threshold:
            raise WorkerSaturated(f"this worker's work queue has been full for {now - self.since:.0f} s; retry on "
                                  "another worker or later")

    async def watch(self) -> None:
        """Sample until cancelled (a task of the lifespan)."""
        while True:
            self.sample()
            await asyncio.sleep(self.interval)
