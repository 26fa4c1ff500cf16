"""GET /health/live and GET /health/ready on a healthy store (broken stores: test_registry)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.service.conftest import MODEL_NAMES, best_model


def test_live(client: TestClient) -> None:
    response = client.get("/health/live")
    assert (response.status_code, response.json()) == (200, {"status": "alive"})


def test_ready_when_every_model_serves(client: TestClient, store: Path) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "default_model": best_model(store),
                               "models": dict.fromkeys(MODEL_NAMES, "ready")}
