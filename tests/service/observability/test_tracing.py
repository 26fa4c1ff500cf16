"""Optional OpenTelemetry tracing (service.observability.tracing): off by default, DIGITS_OTLP_ENDPOINT turns it on;
a span per request and per stage (decode, find, frame, infer, answer), read back with the SDK's own
in-memory exporter, and a real OTLP/HTTP export to a loopback collector."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import ValidationError
from tritonclient.utils import InferenceServerException

from bench.toolkit import free_port
from service.observability import tracing
from service.server.app import create_app
from service.settings import Settings
from tests.factories import encode
from tests.service.conftest import make_settings, multipart
from tests.service.live_server import live_server
from training.data import RawSplit

ENDPOINT = "http://127.0.0.1:9"
"""Never reached: the in-memory exporter replaces the OTLP one."""
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    yield spans
    tracing.shutdown_tracing()  # the tracer is process-wide: leave the next test's app untraced


def traced_client(store: Path, exporter: InMemorySpanExporter, **overrides: Any) -> TestClient:
    app = create_app(make_settings(store, otlp_endpoint=ENDPOINT, **overrides), span_exporter=exporter)
    return TestClient(app)


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    named = {span.name: span for span in spans}
    assert len(named) == len(spans), [span.name for span in spans]  # one of each
    return named


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_tracing_is_off_by_default(store: Path) -> None:
    assert Settings().otlp_endpoint is None
    assert not tracing.configure_tracing(make_settings(store), version="0")
    # Off, a stage is the one shared no-op: nothing is created per request.
    assert tracing.stage("decode") is tracing.stage("infer")
    app = create_app(make_settings(store))
    assert tracing.TracingMiddleware not in [getattr(m, "cls", None) for m in app.user_middleware]


def test_an_image_request_has_a_span_per_stage_under_its_request_span(store: Path, exporter: InMemorySpanExporter,
                                                                     mnist_test: RawSplit) -> None:
    with traced_client(store, exporter) as client:
        exporter.clear()  # start-up work is not the request's
        response = client.post("/predict?model=cnn", files=multipart(encode(mnist_test.images[0])),
                               headers={"traceparent": TRACEPARENT})
        assert response.status_code == 200, response.text
    spans = by_name(exporter.get_finished_spans())
    assert set(spans) == {"POST /predict", *tracing.STAGES}
    request = spans["POST /predict"]
    assert request.kind is SpanKind.SERVER
    assert request.attributes is not None and request.attributes["http.response.status_code"] == 200
    assert request.attributes["http.route"] == "/predict"
    # The caller's trace continues: every span is in it, each stage a child of the request's span.
    assert {format(span.context.trace_id, "032x") for span in spans.values()} == {TRACE_ID}
    for name in tracing.STAGES:
        assert parent_of(spans[name]) == request.context.span_id, name
    starts = [spans[name].start_time or 0 for name in tracing.STAGES]
    assert starts == sorted(starts)  # decode, find, frame, infer, answer: in the order they ran
    assert spans["infer"].attributes == {"model": "cnn", "images": 1}


def test_a_tensor_request_has_no_image_stages(store: Path, exporter: InMemorySpanExporter) -> None:
    body = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [2, 28, 28, 1],
                        "data": np.zeros(2 * 28 * 28).tolist()}]}
    with traced_client(store, exporter) as client:
        exporter.clear()
        assert client.post("/v2/models/cnn/infer", json=body).status_code == 200
    spans = by_name(exporter.get_finished_spans())
    assert set(spans) == {"POST /v2/models/{model_name}/infer", "infer", "answer"}
    assert spans["infer"].attributes == {"model": "cnn", "images": 2}


def test_an_error_answer_marks_the_request_span(store: Path, exporter: InMemorySpanExporter) -> None:
    with traced_client(store, exporter) as client:
        exporter.clear()
        assert client.post("/predict", files=multipart(b"not an image")).status_code == 415
    spans = by_name(exporter.get_finished_spans())
    # The decode failed: its span ends in error too, and nothing after it ran.
    assert set(spans) == {"POST /predict", "decode"}
    assert spans["decode"].status.status_code is StatusCode.ERROR
    assert spans["POST /predict"].attributes is not None
    assert spans["POST /predict"].attributes["http.response.status_code"] == 415


def test_a_grpc_call_has_its_request_span(store: Path, exporter: InMemorySpanExporter) -> None:
    port = free_port()
    with traced_client(store, exporter, grpc_port=port):
        exporter.clear()
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
        tensor = grpcclient.InferInput("image", [1, 28, 28, 1], "FP32")
        tensor.set_data_from_numpy(np.zeros((1, 28, 28, 1), np.float32))
        client.infer("cnn", [tensor], headers={"traceparent": TRACEPARENT})
        with pytest.raises(InferenceServerException, match="NOT_FOUND"):
            client.infer("no_such_model", [tensor])
        client.close()
    spans = exporter.get_finished_spans()
    requests = [s for s in spans if s.name == "inference.GRPCInferenceService/ModelInfer"]
    assert len(requests) == 2
    answered, refused = sorted(requests, key=lambda s: s.start_time or 0)
    assert format(answered.context.trace_id, "032x") == TRACE_ID
    assert answered.status.status_code is StatusCode.UNSET
    assert refused.status.status_code is StatusCode.ERROR  # NOT_FOUND
    children = {s.name for s in spans if parent_of(s) == answered.context.span_id}
    assert children == {"infer", "answer"}


def test_turning_it_on_without_the_sdk_says_what_to_install(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # import fails as if not installed
    with pytest.raises(tracing.TracingUnavailable, match=r"pip install 'digit-serving\[otel\]'"):
        create_app(make_settings(store, otlp_endpoint=ENDPOINT))


def test_the_endpoint_setting_is_checked(store: Path) -> None:
    assert make_settings(store, otlp_endpoint="").otlp_endpoint is None
    with pytest.raises(ValidationError, match="otlp_endpoint"):
        make_settings(store, otlp_endpoint="collector:4318")  # no scheme


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP collector's one route: keeps each export's body."""

    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no access log on the test's output


def test_the_setting_alone_exports_over_otlp_http(store: Path, monkeypatch: pytest.MonkeyPatch,
                                                  mnist_test: RawSplit) -> None:
    collector = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    Collector.received.clear()
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # the SDK's batch interval, in ms (5 s by default)
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}"
    try:
        with live_server(store, otlp_endpoint=endpoint) as server:
            answer = httpx.post(f"{server.base_url}/predict?model=cnn", files=multipart(encode(mnist_test.images[0])))
            assert answer.status_code == 200
            deadline = time.monotonic() + 20
            names: set[str] = set()
            while time.monotonic() < deadline and not {"POST /predict", *tracing.STAGES} <= names:
                time.sleep(0.1)
                for path, body in list(Collector.received):
                    assert path == "/v1/traces"
                    export = ExportTraceServiceRequest.FromString(body)
                    names |= {span.name for rs in export.resource_spans for ss in rs.scope_spans for span in ss.spans}
    finally:
        collector.shutdown()
    assert {"POST /predict", *tracing.STAGES} <= names
