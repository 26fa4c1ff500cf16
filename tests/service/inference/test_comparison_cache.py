"""GET /models/compare computes its statistics once per set of loaded models, not once per call
(issue 23), and still reports the latency each model has had so far."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import service.inference.dataplane
from training.data import RawSplit

TOKEN = "comparison-cache-token"  # noqa: S105 (a test app's admin token)
AUTH = {"authorization": f"Bearer {TOKEN}"}
LIVE = ("models", "experiments", "datasets")
"""The sections that carry latency."""


def _row(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(row for row in body["models"] if row["name"] == name)


def test_the_statistics_are_computed_once_per_load_and_the_latency_is_read_each_time(
        app_factory: Callable[..., FastAPI], monkeypatch: pytest.MonkeyPatch, mnist_test: RawSplit) -> None:
    computed: list[int] = []
    compare = service.inference.dataplane.compare_served

    def counting(models: Any, store: Path | None) -> Any:
        computed.append(len(models))
        return compare(models, store)

    monkeypatch.setattr(service.inference.dataplane, "compare_served", counting)
    with TestClient(app_factory(admin_token=TOKEN)) as client:
        first = client.get("/models/compare").json()
        pixels = {"images": (mnist_test.images[:1] / 255.0).tolist()}
        assert client.post("/predict?model=cnn", json=pixels).status_code == 200
        second = client.get("/models/compare").json()
        assert len(computed) == 1
        assert _row(first, "cnn")["latency_p50_ms"] is None
        assert _row(second, "cnn")["latency_p50_ms"] is not None
        # Everything but the latency is the same answer.
        assert {k: v for k, v in first.items() if k not in LIVE} == {k: v for k, v in second.items() if k not in LIVE}
        assert client.post("/admin/reload", headers=AUTH).status_code == 200
        third = client.get("/models/compare").json()
        assert len(computed) == 2  # a reload may change the models and the records: computed again
        assert {k: v for k, v in third.items() if k not in LIVE} == {k: v for k, v in first.items() if k not in LIVE}
