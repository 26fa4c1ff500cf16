"""Reloading the model store without a restart, on `POST /admin/reload` or on SIGHUP.

A reload is `ModelRegistry.load()` run again: every model's newest version is read, validated and
warmed up off the event loop while the current models keep answering, then the new mapping is
swapped in with one assignment. A request that already holds a model finishes on that model's
session; later requests get the new one; none fails because of the swap. A model whose newest
version fails keeps its previous ready version serving (and the report says why). When the store
as a whole cannot be loaded (emptied, default model gone), nothing is swapped at all.

Reloads never overlap: one that is asked for while another runs waits for it, then loads again
(so it sees whatever was published meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Literal

import anyio.to_thread

from service.errors import DeviceUnavailable, ReloadFailed, StoreUnavailable
from service.models.registry import ModelRegistry, ServedModel
from service.observability.metrics import ServiceMetrics
from service.schemas import ModelReload, ReloadReport

log = logging.getLogger(__name__)

Trigger = Literal["admin", "signal"]


class StoreReloader:
    """Serialises reloads of one registry and keeps the metrics in step with them."""

    def __init__(self, registry: ModelRegistry, metrics: ServiceMetrics) -> None:
        self.registry = registry
        self.metrics = metrics
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()  # signal-triggered reloads, referenced until done
        self.after_reload: list[Callable[[], None]] = []
        self.load_with_models: list[Callable[[], None]] = []
        """Also loaded from the store at each reload, in the reload's thread (the front end's segmenter)."""
        """Called after each successful swap (the adaptive batcher retires the replaced models' queues)."""

    async def reload(self, trigger: Trigger = "admin") -> ReloadReport:
        """Load the store again and swap the models in.

        Raises:
            ReloadFailed: the store cannot be loaded as a whole; the previous models keep serving.
        """
        async with self._lock:
            before = self.registry.models
            start = time.perf_counter()
            try:
                after = await anyio.to_thread.run_sync(self._load)
            except (StoreUnavailable, DeviceUnavailable) as exc:
                self.metrics.reloads.labels(trigger, "failed").inc()
                log.error("reload (%s) failed, the previous models keep serving: %s", trigger, exc)
                public = exc.public if isinstance(exc, StoreUnavailable) else str(exc)
                raise ReloadFailed(f"reload failed: {public}; the previous models keep serving") from exc
            seconds = time.perf_counter() - start
            report = describe_reload(before, after, self.registry.rejected, self.registry.default_name(after), seconds)
            self._observe(before, after)
            for hook in self.after_reload:
                hook()
            self.metrics.reloads.labels(trigger, "succeeded").inc()
            changes = ", ".join(f"{m.name} {m.change}" for m in report.models)
            log.info("reload (%s) done in %.2f s: %s", trigger, seconds, changes)
            return report

    def _load(self) -> Mapping[str, ServedModel]:
        models = self.registry.load()
        for load in self.load_with_models:
            load()
        return models

    def _observe(self, before: Mapping[str, ServedModel], after: Mapping[str, ServedModel]) -> None:
        self.metrics.observe_registry(after)
        for name in after.keys() - before.keys():
            self.metrics.prime_model(name)
        for name in before.keys() - after.keys():
            self.metrics.forget_model(name)

    # -- SIGHUP ------------------------------------------------------------------------------

    def install_signal_handler(self) -> Callable[[], None]:
        """Reload on SIGHUP; returns the function that restores the previous handler.

        Only the main thread may set signal handlers: under uvicorn the lifespan runs there; under a
        test client (another thread) or on Windows nothing is installed and signals stay as they were.
        With several uvicorn workers, SIGHUP sent to the supervisor makes uvicorn replace the workers
        one by one (each loads the store afresh); sent to one worker, it reloads that worker in place.
        """
        hup = getattr(signal, "SIGHUP", None)
        if hup is None or threading.current_thread() is not threading.main_thread():
            return lambda: None
        loop = asyncio.get_running_loop()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            # A signal handler runs between two bytecodes of the main thread: only schedule here.
            loop.call_soon_threadsafe(self._reload_in_background)

        previous = signal.signal(hup, on_signal)

        def restore() -> None:
            signal.signal(hup, previous)
            for task in self._tasks:
                task.cancel()

        return restore

    def _reload_in_background(self) -> None:
        log.info("SIGHUP received: reloading the model store")
        task = asyncio.get_running_loop().create_task(self._reload_logged())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload_logged(self) -> None:
        try:
            await self.reload("signal")
        except ReloadFailed:
            pass  # logged by reload(); the previous models keep serving
        except Exception:  # a signal's reload has no caller to raise to: never an unhandled task
            self.metrics.reloads.labels("signal", "failed").inc()
            log.exception("reload (signal) failed unexpectedly; the previous models keep serving")


def describe_reload(
    before: Mapping[str, ServedModel],
    after: Mapping[str, ServedModel],
    rejected: Mapping[str, ServedModel],
    default_model: str | None,
    seconds: float,
) -> ReloadReport:
    """What changed, model by model, between two registry mappings."""
    rows = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if new is None:
            assert old is not None
            rows.append(ModelReload(name=name, change="removed", version=None, previous_version=old.version,
                                    state=None, reason=None))
            continue
        reason: str | None
        if name in rejected:
            change: Literal["added", "updated", "reloaded", "kept"] = "kept"
            reason = f"version {rejected[name].version} failed: {rejected[name].reason}"
        else:
            change = "added" if old is None else "updated" if new.version != old.version else "reloaded"
            reason = new.reason
        rows.append(ModelReload(name=name, change=change, version=new.version,
                                previous_version=old.version if old else None, state=new.state, reason=reason))
    return ReloadReport(default_model=default_model, seconds=seconds, models=rows)
