"""What requests see: /models (and the comparison) report real requests' inference time, beside the
warm-up's best case, labelled as such."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.observability.latency import RequestLatency
from training.data import RawSplit


def test_the_window_keeps_the_last_requests_only() -> None:
    window = RequestLatency(window=4)
    assert window.stats() is None and window.mean_batch() is None
    for seconds, images in [(1.0, 1), (0.001, 2), (0.002, 2), (0.003, 2), (0.004, 2)]:
        window.record(seconds, images)
    stats = window.stats()
    assert stats is not None and stats.runs == 4
    assert stats.p50_ms == pytest.approx(2.5) and stats.mean_ms == pytest.approx(2.5)  # the 1 s request fell out
    assert window.mean_batch() == 2


def test_per_image_latency_does_not_move_with_the_batch_size() -> None:
    # Before, the comparison's p50 was per request: 64-image batches made a model look 30x slower.
    window = RequestLatency()
    for seconds, images in [(0.0001, 1), (0.0064, 64), (0.0001, 1)]:
        window.record(seconds, images)
    per_image, per_request = window.per_image_stats(), window.stats()
    assert per_image is not None and per_request is not None
    assert per_image.p95_ms == pytest.approx(0.1) and per_request.p95_ms > 5


def _model(client: TestClient, name: str) -> dict[str, Any]:
    return next(m for m in client.get("/models").json()["models"] if m["name"] == name)


def test_models_report_requests_apart_from_the_warm_up(
    app_factory: Callable[..., FastAPI], mnist_test: RawSplit
) -> None:
    with TestClient(app_factory()) as client:
        before = _model(client, "cnn")
        assert before["request_latency"] is None and before["latency"]["runs"] >= 1
        images = (mnist_test.images[:3] / 255.0).round(4).tolist()
        for _ in range(5):
            assert client.post("/predict?model=cnn", json={"images": images}).status_code == 200
        client.post("/predict?model=mlp", json={"images": images[:1]})
        seen = _model(client, "cnn")["request_latency"]
        assert seen["requests"] == 5 and seen["mean_batch"] == 3
        assert 0 < seen["p50_ms"] <= seen["p95_ms"]
        assert _model(client, "mlp")["request_latency"]["requests"] == 1
        assert _model(client, "mlp_noise")["request_latency"] is None
        assert np.isfinite(seen["mean_ms"])


def test_the_comparison_reports_requests_and_labels_the_warm_up(
    app_factory: Callable[..., FastAPI], mnist_test: RawSplit
) -> None:
    with TestClient(app_factory()) as client:
        rows = {r["name"]: r for r in client.get("/models/compare").json()["models"]}
        assert rows["cnn"]["latency_p50_ms"] is None  # no request yet: nothing a request saw
        assert rows["cnn"]["warmup_latency_p50_ms"] > 0
        images = (mnist_test.images[:2] / 255.0).round(4).tolist()
        for _ in range(3):
            client.post("/predict?model=cnn", json={"images": images})
        seen = _model(client, "cnn")["request_latency"]
        row = {r["name"]: r for r in client.get("/models/compare").json()["models"]}["cnn"]
        # Per image: each request of 2 images counts half its time (GET /models reports per request).
        assert row["latency_p50_ms"] == pytest.approx(seen["p50_ms"] / 2)
        assert row["latency_p95_ms"] == pytest.approx(seen["p95_ms"] / 2)
