"""Prometheus metrics of the service, and the ASGI middleware that records every request.

Names follow the Prometheus conventions: counters end in `_total`, durations are histograms in
`_seconds`. Each app owns its own `CollectorRegistry`, so tests can build many apps in one process.

Several workers (`DIGITS_WORKERS` > 1) are separate processes with separate counters. When
`PROMETHEUS_MULTIPROC_DIR` is set (`python -m service` sets it up for workers > 1) the client
library writes every worker's values to files there and `/metrics` sums them, whichever worker
answers the scrape. Gauges then aggregate per their `multiprocess_mode`; the limitation is the
library's: the values of a worker that died stay in the sums until the directory is cleared at the
next start (uvicorn has no per-worker exit hook to call `mark_process_dead` from).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector

from digit_contract.inputs import NUM_CLASSES

if TYPE_CHECKING:
    # Types only: the data plane records into ServiceMetrics without importing the web framework.
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from service.models.registry import ServedModel

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
"""Methods counted under their own name; any other (a client may invent them) counts as `other`,
so that no label takes values from the client: 408 invented methods once grew /metrics 15-fold."""

RENDER_MAX_AGE = 1.0
"""Seconds a rendered exposition is reused. Prometheus scrapes every 15-60 s; a client that asks
hundreds of times a second gets the same text instead of costing a render each time."""

# `*_created` timestamps double the series count and the text format shows them as extra gauge
# families; scrapers get the same information from process start. (A process-wide setting.)
disable_created_metrics()  # type: ignore[no-untyped-call]


def _values_are_shared() -> bool:
    """Whether this process stores metric values in PROMETHEUS_MULTIPROC_DIR files.

    The client library decides once, when it is imported; the environment variable alone could
    have been set later (and reading the files would then show nothing of this process).
    """
    return os.environ.get(MULTIPROC_ENV) is not None and values.ValueClass is not values.MutexValue

# Seconds. Inference of these models takes well under a millisecond; decoding a photo, tens.
_FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0)

# The model a request was answered by, for the request counter's `model` label. The middleware
# puts a fresh dict here per request; the data plane fills it in. A dict (not a value) because
# context variables set further down the call stack are not visible to the middleware above.
_request_labels: ContextVar[dict[str, str] | None] = ContextVar("digits_request_labels", default=None)


def label_request_model(name: str) -> None:
    """Record which model a request used (only names from the registry, so cardinality is bounded)."""
    labels = _request_labels.get()
    if labels is not None:
        labels["model"] = name


class ServiceMetrics:
    """Every metric the service exports, registered in one registry per app."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "digits_http_requests", "HTTP requests answered, by route template, method, model and status.",
            ["route", "method", "model", "status"], registry=r,
        )
        self.request_seconds = Histogram(
            "digits_http_request_duration_seconds", "Whole-request latency, from first byte in to last byte out.",
            ["route", "method", "model"], buckets=_REQUEST_BUCKETS, registry=r,
        )
        self.in_flight = Gauge(
            "digits_http_requests_in_flight", "Requests being handled now.", registry=r, multiprocess_mode="livesum",
        )
        self.preprocess_seconds = Histogram(
            "digits_preprocess_duration_seconds", "Decoding and MNIST-style preparation of one image.",
            ["model"], buckets=_FAST_BUCKETS, registry=r,
        )
        self.inference_seconds = Histogram(
            "digits_inference_duration_seconds", "One ONNX Runtime call (a batch of one or more images).",
            ["model"], buckets=_FAST_BUCKETS, registry=r,
        )
        self.predictions = Counter(
            "digits_predictions", "Predictions made, by model and predicted digit.", ["model", "digit"], registry=r,
        )
        self.confidence = Histogram(
            "digits_prediction_confidence", "Probability of the predicted digit.", ["model"],
            buckets=_CONFIDENCE_BUCKETS, registry=r,
        )
        self.model_ready = Gauge(
            "digits_model_ready", "1 when the model is loaded and serving, 0 when it failed to load.",
            ["model"], registry=r, multiprocess_mode="livemin",
        )
        self.model_info = Gauge(
            "digits_model_info", "Always 1; the labels say which version runs on which execution providers.",
            ["model", "version", "providers"], registry=r, multiprocess_mode="livemax",
        )
        self.reloads = Counter(
            "digits_store_reloads", "Reloads of the model store, by trigger (admin, signal) and outcome.",
            ["trigger", "outcome"], registry=r,
        )
        self._info_labels: dict[str, tuple[str, str, str]] = {}
        self._rendered: tuple[float, bytes] | None = None
        self._render_lock = threading.Lock()

    def observe_registry(self, models: Mapping[str, ServedModel]) -> None:
        """Set the ready and info gauges from the registry (at start-up and after a reload)."""
        for name, model in models.items():
            self.model_ready.labels(model=name).set(1 if model.ready else 0)
            labels = (name, str(model.version), ",".join(model.providers) or "none")
            previous = self._info_labels.get(name)
            if previous is not None and previous != labels:
                # Zero rather than remove: in multiprocess mode a removed child lingers in the files.
                self.model_info.labels(*previous).set(0)
            self.model_info.labels(*labels).set(1)
            self._info_labels[name] = labels

    def forget_model(self, name: str) -> None:
        """A model left the store (reload): it is no longer ready, and no version of it runs."""
        self.model_ready.labels(model=name).set(0)
        previous = self._info_labels.pop(name, None)
        if previous is not None:
            self.model_info.labels(*previous).set(0)

    def observe_prediction(self, model: str, probabilities: npt.NDArray[np.float32]) -> None:
        """Count each answer's digit and observe its confidence, for (N, 10) probabilities."""
        # Counted per digit rather than per image: a batch of 1,024 costs 10 counter increments, not
        # 1,024 (that loop took ~8 ms, more than the MLP's inference). The confidence histogram has
        # no bulk observe: one per image.
        digits = probabilities.argmax(axis=1)
        for digit, count in enumerate(np.bincount(digits, minlength=NUM_CLASSES).tolist()):
            if count:
                self.predictions.labels(model=model, digit=str(digit)).inc(count)
        observe = self.confidence.labels(model=model).observe
        confidences = probabilities[np.arange(len(digits)), digits]
        # Tensors reach the model unchecked (as Triton's do), so a NaN or infinite input can give a
        # NaN confidence; one such value would turn the histogram's sum into NaN for good. The
        # answer's digit is still counted above; only its confidence, which has no value, is left out.
        for confidence in confidences[np.isfinite(confidences)].tolist():
            observe(confidence)

    def prime_model(self, model: str) -> None:
        """Create each per-class series at 0 so that rates work from the first prediction."""
        for digit in range(NUM_CLASSES):
            self.predictions.labels(model=model, digit=str(digit))

    def render_cached(self, max_age: float = RENDER_MAX_AGE) -> tuple[bytes, str]:
        """`render`, reused for `max_age` seconds; concurrent callers wait for one render, not one each."""
        with self._render_lock:
            now = time.monotonic()
            if self._rendered is None or now - self._rendered[0] >= max_age:
                self._rendered = (now, self.render()[0])
            return self._rendered[1], CONTENT_TYPE_LATEST

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type; summed over workers in multiprocess mode."""
        if _values_are_shared():
            aggregate = CollectorRegistry()
            MultiProcessCollector(aggregate)  # type: ignore[no-untyped-call]
            return generate_latest(aggregate), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request, including rejected ones.

    The `route` label is the matched route's template (`/models/{name}`), never the raw path, so a
    client cannot create unbounded series; unmatched paths count as `unmatched`.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        labels = {"model": ""}
        token = _request_labels.set(labels)
        status = 500  # what the client sees if the app raises before answering
        start = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, record_status)
        finally:
            self.metrics.in_flight.dec()
            _request_labels.reset(token)
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            if method not in KNOWN_METHODS:
                method = "other"
            elapsed = time.perf_counter() - start
            self.metrics.requests.labels(template, method, labels["model"], str(status)).inc()
            self.metrics.request_seconds.labels(template, method, labels["model"]).observe(elapsed)
