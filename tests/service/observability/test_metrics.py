"""GET /metrics: Prometheus text with requests, latencies, predictions, confidence and model state."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from service.observability.metrics import KNOWN_METHODS, RENDER_MAX_AGE
from tests.factories import encode
from tests.service.conftest import MODEL_NAMES, multipart
from training.data import RawSplit


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_requests_predictions_and_latencies(app_factory: Callable[..., FastAPI], mnist_test: RawSplit) -> None:
    with TestClient(app_factory()) as client:
        digits = mnist_test.images[:3]
        answers = client.post("/predict?model=cnn", files=multipart(*(encode(d) for d in digits))).json()
        client.post("/predict?model=cnn", files=multipart(b"junk"))
        client.post("/predict?model=nope", files=multipart(encode(digits[0])))
        client.get("/models/mlp")
        client.get("/models/vgg")
        client.get("/nowhere/at/all")
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text

    requests = "digits_http_requests_total"
    assert value(text, requests, route="/predict", method="POST", model="cnn", status="200") == 1
    assert value(text, requests, route="/predict", method="POST", model="cnn", status="415") == 1
    # An unknown model name is never a label value (clients cannot create series at will).
    assert value(text, requests, route="/predict", method="POST", model="", status="404") == 1
    assert value(text, requests, route="/models/{name}", method="GET", model="", status="200") == 1
    assert value(text, requests, route="/models/{name}", method="GET", model="", status="404") == 1
    assert value(text, requests, route="unmatched", method="GET", model="", status="404") == 1
    assert "nope" not in text and "vgg" not in text and "nowhere" not in text

    for answer in answers:
        assert value(text, "digits_predictions_total", model="cnn", digit=str(answer["digit"])) >= 1
    assert sum(value(text, "digits_predictions_total", model="cnn", digit=str(d)) for d in range(10)) == 3
    assert value(text, "digits_prediction_confidence_count", model="cnn") == 3
    assert value(text, "digits_inference_duration_seconds_count", model="cnn") == 1
    assert value(text, "digits_preprocess_duration_seconds_count", model="cnn") == 4  # 3 digits + the junk
    assert value(text, "digits_http_request_duration_seconds_count", route="/predict", method="POST", model="cnn") == 2
    assert value(text, "digits_http_requests_in_flight") == 1  # the scrape itself
    for name in MODEL_NAMES:
        assert value(text, "digits_model_ready", model=name) == 1
        assert re.search(rf'digits_model_info{{model="{name}",providers="CPUExecutionProvider",version="\d+"}} 1.0', text)


def test_metric_names_follow_prometheus_conventions(client: TestClient) -> None:
    families = {family.name: family.type for family in text_string_to_metric_families(client.get("/metrics").text)}
    ours = {name: kind for name, kind in families.items() if name.startswith("digits_")}
    assert ours == {
        "digits_http_requests": "counter",
        "digits_http_request_duration_seconds": "histogram",
        "digits_http_requests_in_flight": "gauge",
        "digits_preprocess_duration_seconds": "histogram",
        "digits_inference_duration_seconds": "histogram",
        "digits_predictions": "counter",
        "digits_prediction_confidence": "histogram",
        "digits_model_ready": "gauge",
        "digits_model_info": "gauge",
        "digits_store_reloads": "counter",
    }


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_per_class_series_exist_before_the_first_prediction(app_factory: Callable[..., FastAPI], name: str) -> None:
    with TestClient(app_factory()) as client:
        text = client.get("/metrics").text
    for digit in range(10):
        assert f'digits_predictions_total{{digit="{digit}",model="{name}"}} 0.0' in text


def test_invented_methods_count_as_other_so_the_metrics_cannot_grow(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory()) as client:
        baseline = len(client.get("/metrics").content)
        for index in range(300):
            client.request(f"X{index:04d}", "/predict")
        time.sleep(RENDER_MAX_AGE)
        text = client.get("/metrics").text
    methods = {label for _, labels in samples(text) for key, label in labels if key == "method"}
    assert methods <= KNOWN_METHODS | {"other"}
    assert value(text, "digits_http_requests_total", route="/predict", method="other", model="", status="405") == 300
    assert len(text) < baseline + 4000  # a few new series, not 300 of them


def test_a_flood_of_scrapes_shares_one_render(app_factory: Callable[..., FastAPI],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    app = app_factory()
    with TestClient(app) as client:
        metrics = app.state.metrics
        renders = []
        original = metrics.render
        monkeypatch.setattr(metrics, "render", lambda: renders.append(1) or original())
        bodies = {client.get("/metrics").content for _ in range(50)}
    assert len(renders) <= 2 and len(bodies) <= 2  # within a second: one render (two if a second turned)


def test_the_metrics_can_require_a_token(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory(metrics_token="scrape-me")) as client:  # noqa: S106 (a test token)
        missing = client.get("/metrics")
        wrong = client.get("/metrics", headers={"authorization": "Bearer nope"})
        right = client.get("/metrics", headers={"authorization": "Bearer scrape-me"})
        assert client.get("/health/live").status_code == 200  # nothing else needs it
    assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["error"]
    assert wrong.status_code == 403
    assert right.status_code == 200 and "digits_http_requests_total" in right.text


def test_a_non_finite_confidence_leaves_the_histogram_sum_finite() -> None:
    # A tensor of NaNs reaches the model unchecked (Triton's behaviour) and comes back as NaN
    # probabilities: before, the confidence histogram's sum became NaN and stayed so.
    from prometheus_client import generate_latest

    from service.observability.metrics import ServiceMetrics

    metrics = ServiceMetrics()
    nan_row = np.full((1, 10), np.nan, dtype=np.float32)
    sure_row = np.eye(10, dtype=np.float32)[[3]] * np.float32(0.9)
    metrics.observe_prediction("cnn", np.concatenate([nan_row, sure_row, np.full((1, 10), np.inf, np.float32)]))
    text = generate_latest(metrics.registry).decode()
    assert value(text, "digits_prediction_confidence_count", model="cnn") == 1
    assert value(text, "digits_prediction_confidence_sum", model="cnn") == pytest.approx(0.9)
    # Every answer is still counted by its digit, the non-finite ones included.
    assert sum(value(text, "digits_predictions_total", model="cnn", digit=str(d)) for d in range(10)) == 3
