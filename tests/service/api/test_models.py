"""GET /models, GET /models/{name}, GET /models/compare and POST /models/compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from digit_contract.card import ModelCard
from digit_contract.store import latest_version
from tests.factories import encode
from tests.service.conftest import AVAILABLE, MODEL_NAMES, best_model, model_files, multipart
from training.data import RawSplit


def card_of(store: Path, name: str) -> ModelCard:
    return ModelCard.read(model_files(store, name)[1])


def test_models_lists_every_model_ready_with_its_providers(client: TestClient, store: Path) -> None:
    response = client.get("/models")
    assert response.status_code == 200
    body = response.json()
    assert body["default_model"] == best_model(store)
    assert [m["name"] for m in body["models"]] == list(MODEL_NAMES)
    for model in body["models"]:
        card = card_of(store, model["name"])
        assert model["state"] == "ready" and model["reason"] is None
        assert model["version"] == latest_version(store, model["name"])
        assert model["providers"] == ["CPUExecutionProvider"]
        assert model["default"] is (model["name"] == body["default_model"])
        assert (model["architecture"], model["test_accuracy"], model["description"]) == (
            card.architecture, card.test_accuracy, card.description)
        assert model["latency"]["runs"] == 3 and 0 < model["latency"]["p50_ms"] <= model["latency"]["p95_ms"]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_one_model_comes_with_its_whole_card(client: TestClient, store: Path, name: str) -> None:
    response = client.get(f"/models/{name}")
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["state"]) == (name, "ready")
    assert body["card"] == json.loads(card_of(store, name).model_dump_json())
    assert len(body["card"]["history"]) == body["card"]["hyperparameters"]["epochs"]
    assert len(body["card"]["confusion_matrix"]) == 10 and len(body["card"]["per_class"]) == 10


def test_an_unknown_model_is_404(client: TestClient) -> None:
    response = client.get("/models/vgg16")
    assert response.status_code == 404
    assert response.json() == {"error": f"no model 'vgg16'; available: {AVAILABLE}", "available": list(MODEL_NAMES)}


def test_compare_ranks_the_variants_and_computes_the_deltas(client: TestClient, store: Path) -> None:
    response = client.get("/models/compare")
    assert response.status_code == 200
    body = response.json()
    cards = {name: card_of(store, name) for name in MODEL_NAMES}
    ranked = sorted(MODEL_NAMES, key=lambda n: (-cards[n].test_accuracy, cards[n].test_loss, n))
    assert body["best"] == ranked[0] == best_model(store)
    # Listed by accuracy; ranks are shared within noise (tests/service/inference/test_comparison.py checks how).
    assert [row["name"] for row in body["models"]] == ranked
    assert body["models"][0]["rank"] == 1
    for row in body["models"]:
        card = cards[row["name"]]
        assert (row["test_accuracy"], row["test_errors"], row["test_loss"], row["macro_f1"]) == (
            card.test_accuracy, card.test_errors, card.test_loss, card.macro_avg.f1)
        assert (row["parameter_count"], row["onnx_size_bytes"], row["training_seconds"]) == (
            card.parameter_count, card.onnx.size_bytes, card.training_seconds)
        # Real requests' latency (null until a request reaches the model; tests/service/observability/test_request_latency.py
        # checks it) and the warm-up's best case, apart.
        assert row["warmup_latency_p50_ms"] > 0
        assert row["latency_p50_ms"] is None or row["latency_p50_ms"] > 0
    assert body["per_class_f1"] == {name: [c.f1 for c in cards[name].per_class] for name in ranked}
    assert body["unavailable"] == []

    gaps = {gap["regularisation"]: gap for gap in body["cnn_vs_mlp"]}
    assert list(gaps) == ["none", "dropout", "noise"]
    for regularisation, (mlp, cnn) in {"none": ("mlp", "cnn"), "dropout": ("mlp_dropout", "cnn_dropout"),
                                       "noise": ("mlp_noise", "cnn_noise")}.items():
        gap = gaps[regularisation]
        assert (gap["baseline"], gap["model"]) == (mlp, cnn)
        assert gap["test_accuracy_delta"] == pytest.approx(cards[cnn].test_accuracy - cards[mlp].test_accuracy)
        assert gap["test_errors_delta"] == cards[cnn].test_errors - cards[mlp].test_errors

    effects = {(e["architecture"], e["regularisation"]): e for e in body["regularisation_effects"]}
    # The augmented model has its own key, so it never stands in for cnn_dropout in the seed's deltas.
    expected = {("cnn", "dropout"): "cnn_dropout", ("cnn", "noise"): "cnn_noise",
                ("cnn", "dropout+augmented"): "cnn_augmented", ("mlp", "dropout"): "mlp_dropout",
                ("mlp", "noise"): "mlp_noise"}
    assert list(effects) == list(expected)
    for (architecture, regularisation), effect in effects.items():
        baseline, model = architecture, expected[(architecture, regularisation)]
        assert (effect["baseline"], effect["model"]) == (baseline, model)
        assert effect["test_errors_delta"] == cards[model].test_errors - cards[baseline].test_errors
        assert effect["macro_f1_delta"] == pytest.approx(cards[model].macro_avg.f1 - cards[baseline].macro_avg.f1)
    assert {row["name"]: row["regularisation"] for row in body["models"]}["cnn_augmented"] == "dropout+augmented"
    assert body["findings"][0].startswith(f"{ranked[0]} has the highest test accuracy: ")


def test_compare_an_image_gives_every_model_side_by_side(client: TestClient, mnist_test: RawSplit) -> None:
    digit = encode(mnist_test.images[0])
    response = client.post("/models/compare", files=multipart(digit))
    assert response.status_code == 200
    body = response.json()
    singles = {name: client.post(f"/predict?model={name}", files=multipart(digit)).json() for name in MODEL_NAMES}
    assert [p["model"] for p in body["predictions"]] == list(MODEL_NAMES)
    for prediction in body["predictions"]:
        assert prediction["digit"] == singles[prediction["model"]]["digit"]
        assert prediction["probabilities"] == pytest.approx(singles[prediction["model"]]["probabilities"], abs=1e-6)
    votes: dict[str, list[str]] = {}
    for prediction in body["predictions"]:
        votes.setdefault(str(prediction["digit"]), []).append(prediction["model"])
    majority = max(votes.values(), key=len)
    assert body["agreement"]["votes"] == dict(sorted(votes.items()))
    assert body["agreement"]["agreement"] == pytest.approx(len(majority) / len(MODEL_NAMES))
    assert body["agreement"]["unanimous"] is (len(votes) == 1)
    assert body["unavailable"] == []


def test_compare_an_image_takes_exactly_one_image(client: TestClient, mnist_test: RawSplit) -> None:
    two = multipart(encode(mnist_test.images[0]), encode(mnist_test.images[1]))
    response = client.post("/models/compare", files=two)
    assert (response.status_code, response.json()) == (422, {"error": "POST /models/compare takes exactly one image, got 2"})
    response = client.post("/models/compare", json={"images": []})
    assert response.status_code == 415
    assert response.json() == {"error": "unsupported content type 'application/json': send multipart/form-data "
                                        "with `file` parts, or an image/* body"}
    response = client.post("/models/compare", content=b"junk", headers={"content-type": "image/png"})
    assert response.status_code == 415
