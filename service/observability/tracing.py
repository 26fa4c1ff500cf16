"""Optional OpenTelemetry tracing: a span per request and per stage of its path, sent over OTLP.

Off by default. `DIGITS_OTLP_ENDPOINT` (a collector's OTLP/HTTP base URL, e.g.
http://otel-collector:4318) turns it on: spans go to `<endpoint>/v1/traces` in batches from a
background thread, as the OpenTelemetry SDK's BatchSpanProcessor sends them. The SDK and its
exporter are the `otel` extra (`pip install 'digit-serving[otel]'`), which the serving image does
not install: turning tracing on without them is a start-up error that says so.

Spans:
- one per request (kind SERVER): `POST /predict` over HTTP, with its route template, status code
  and the caller's W3C `traceparent` as parent; `inference.GRPCInferenceService/ModelInfer` over gRPC;
- one per stage below it: `decode` (the image file to pixels), `find` (the digit in them),
  `frame` (the digit framed for the model's input), per image file; `infer` (the model run) and
  `answer` (the probabilities post-processed and counted), per request. Tensor input has no
  image stages. With the adaptive batcher on, `infer` runs in the batcher's task for several
  requests at once, so it is a trace of its own rather than a request's child.

Off, every stage is a shared no-op context manager (0.2 us each, 1 us a request): nothing else is paid.
The tracer is process-wide (like the front end's segmenter), set when an app is built.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from service.settings import Settings

if TYPE_CHECKING:  # the middleware speaks plain ASGI: the data plane imports this module, not the framework
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

STAGES = ("decode", "find", "frame", "infer", "answer")
"""The stages of a request's path that get a span each, in the order they run."""

TRACES_PATH = "/v1/traces"
"""Where an OTLP/HTTP collector takes spans, under its base URL (the OTLP specification's path)."""

INSTRUMENTATION = "digit-serving"

_OFF: AbstractContextManager[None] = nullcontext()


class TracingUnavailable(RuntimeError):
    """Tracing is turned on, but the OpenTelemetry SDK or its exporter is not installed."""


@dataclass
class Tracing:
    """The process's tracer (None: tracing off) and the provider that owns its exporter."""

    tracer: Any = None
    provider: Any = None


TRACING = Tracing()


def configure_tracing(settings: Settings, *, version: str, exporter: Any = None) -> bool:
    """Turn tracing on for this process when `settings.otlp_endpoint` is set, off otherwise.

    Args:
        settings: the service's settings; `otlp_endpoint` decides.
        version: the package's version, the spans' `service.version`.
        exporter: a SpanExporter that replaces the OTLP one (the tests' in-memory exporter); spans
            then reach it as each one ends, not in batches.
    Returns:
        Whether tracing is on.
    Raises:
        TracingUnavailable: tracing is on and the `otel` extra is not installed.
    """
    shutdown_tracing()
    if settings.otlp_endpoint is None:
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as error:
        raise TracingUnavailable(
            f"DIGITS_OTLP_ENDPOINT is set but OpenTelemetry's SDK is missing ({error.name}): "
            "pip install 'digit-serving[otel]', or unset DIGITS_OTLP_ENDPOINT"
        ) from error
    # A provider of our own, not the global one: each app (and each test) sets its own exporter,
    # and the API allows the global provider to be set only once per process.
    provider = TracerProvider(resource=Resource.create({"service.name": INSTRUMENTATION,
                                                        "service.version": version}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider.add_span_processor(BatchSpanProcessor(otlp_exporter(settings.otlp_endpoint)))
    TRACING.provider, TRACING.tracer = provider, provider.get_tracer(INSTRUMENTATION)
    return True


def otlp_exporter(endpoint: str) -> Any:
    """OTLP/HTTP (protobuf) to `<endpoint>/v1/traces`, the OTLP default protocol."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as error:
        raise TracingUnavailable(
            f"DIGITS_OTLP_ENDPOINT is set but the OTLP exporter is missing ({error.name}): "
            "pip install 'digit-serving[otel]'"
        ) from error
    return OTLPSpanExporter(endpoint=endpoint.rstrip("/") + TRACES_PATH)


def shutdown_tracing() -> None:
    """Send what is buffered and turn tracing off (an app's shutdown, or a new configuration)."""
    provider, TRACING.provider, TRACING.tracer = TRACING.provider, None, None
    if provider is not None:
        provider.shutdown()


def flush_tracing() -> None:
    """Send the spans buffered so far (an app's shutdown); tracing stays as it is."""
    if TRACING.provider is not None:
        TRACING.provider.force_flush()


def stage(name: str, **attributes: str | int) -> AbstractContextManager[Any]:
    """A span for one stage of the request's path (see STAGES), a child of the current span; a
    shared no-op when tracing is off."""
    tracer = TRACING.tracer
    if tracer is None:
        return _OFF
    span: AbstractContextManager[Any] = tracer.start_as_current_span(name, attributes=attributes or None)
    return span


@contextlib.contextmanager
def request_span(name: str, headers: Mapping[str, str], **attributes: str | int) -> Iterator[Any]:
    """A SERVER span for one request, continuing the caller's trace from its `traceparent` header;
    an exception leaving it marks the span as an error (by type only: no traceback is kept, since
    a gRPC abort's traceback holds the request message). Yields None when tracing is off."""
    tracer = TRACING.tracer
    if tracer is None:
        yield None
        return
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind, Status, StatusCode

    parent = propagate.extract(headers)
    with tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes or None,
                                      record_exception=False, set_status_on_exception=False) as span:
        try:
            yield span
        except BaseException as error:
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            raise


class TracingMiddleware:
    """ASGI middleware: a request span around every HTTP request (added only when tracing is on).

    Named `METHOD route` once routing has found the route (`POST /v2/models/{model_name}/infer`),
    so that spans of one endpoint group together; `METHOD path` for requests no route took.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or TRACING.tracer is None:
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        with request_span(f"{method} {path}", headers, **{"http.request.method": method, "url.path": path}) as span:

            async def send_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                    if message["status"] >= 500:
                        from opentelemetry.trace import Status, StatusCode

                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            try:
                await self.app(scope, receive, send_status)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route is not None:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
