"""Broken models in the store: each is reported not ready with its reason while the others serve."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from digit_contract.store import CARD_FILE, MODEL_FILE, UPLOAD_EVALUATION_FILE, latest_version, version_dir
from service.errors import StoreUnavailable
from service.models.registry import ModelRegistry
from tests.factories import bar_digit, encode
from tests.service.conftest import edit_card, model_files, multipart
from tests.service.models.conftest import CPU_PLAN, Tensor, fake_factory
from training.data import RawSplit


def load_registry(store: Path, **kwargs: Any) -> ModelRegistry:
    registry = ModelRegistry(store, CPU_PLAN, warmup_runs=2, **kwargs)
    registry.load()
    return registry


def reason_of(store: Path, name: str = "mlp", **kwargs: Any) -> str | None:
    model = load_registry(store, **kwargs).get(name)
    assert model.state == "failed" and model.session is None
    return model.reason


# -- each kind of breakage, at the registry ----------------------------------------------------


def test_a_model_file_that_does_not_match_its_card(copy_store: Callable[..., Path]) -> None:
    store = copy_store("cnn", "mlp")
    onnx, card = model_files(store, "mlp")
    recorded = json.loads(card.read_text())["onnx"]["sha256"]
    data = bytearray(onnx.read_bytes())
    data[-1] ^= 0xFF
    onnx.write_bytes(bytes(data))
    actual = hashlib.sha256(data).hexdigest()
    assert reason_of(store) == f"model.onnx SHA-256 {actual[:12]}... does not match its card's {recorded[:12]}..."


def test_a_truncated_model_file(copy_store: Callable[..., Path]) -> None:
    store = copy_store("cnn", "mlp")
    onnx, _ = model_files(store, "mlp")
    size = onnx.stat().st_size
    onnx.write_bytes(onnx.read_bytes()[:100])
    assert reason_of(store) == f"model.onnx is 100 bytes but its card says {size}"


def test_a_corrupt_model_file_whose_card_was_updated(copy_store: Callable[..., Path]) -> None:
    store = copy_store("cnn", "mlp")
    onnx, card = model_files(store, "mlp")
    garbage = b"this is not a protobuf" * 10
    onnx.write_bytes(garbage)
    edit_card(card, **{"onnx.sha256": hashlib.sha256(garbage).hexdigest(), "onnx.size_bytes": len(garbage)})
    reason = reason_of(store)
    assert reason is not None and reason.startswith("ONNX Runtime cannot load model.onnx: ")
    assert "/" not in reason  # no server path reaches a client


def test_a_missing_card(copy_store: Callable[..., Path]) -> None:
    store = copy_store("cnn", "mlp")
    model_files(store, "mlp")[1].unlink()
    assert reason_of(store) == "card.json is missing"


def test_a_card_that_is_not_json(copy_store: Callable[..., Path]) -> None:
    store = copy_store("cnn", "mlp")
    model_files(store, "mlp")[1].write_text("{ not json")
    reason = reason_of(store)
    assert reason is not None and reason.startswith("card.json is invalid: card: Invalid JSON")


def test_a_card_that_fails_validation(copy_store: Callable[..., Path]) -> None:
    store = copy_store("cnn", "mlp")
    edit_card(model_files(store, "mlp")[1], test_accuracy=1.5)
    assert reason_of(store) == "card.json is invalid: test_accuracy: Input should be less than or equal to 1 (1 error(s))"


def test_a_card_of_another_model(copy_store: Callable[..., Path]) -> None:
    store = copy_store("cnn", "mlp")
    edit_card(model_files(store, "mlp")[1], name="cnn")
    version = latest_version(store, "mlp")
    assert reason_of(store) == f"card.json describes cnn v{version}, not mlp v{version}"


def test_a_graph_with_the_wrong_input_shape(copy_store: Callable[..., Path]) -> None:
    store = copy_store("mlp")
    factory = fake_factory(inputs=[Tensor("image", "tensor(float)", ["batch", 784])])
    assert reason_of(store, session_factory=factory) == (
        "graph input is 'image' tensor(float) [N, 784], expected 'image' tensor(float) [N, 28, 28, 1] "
        "with a dynamic batch dimension")


def test_a_graph_with_a_fixed_batch(copy_store: Callable[..., Path]) -> None:
    store = copy_store("mlp")
    factory = fake_factory(inputs=[Tensor("image", "tensor(float)", [1, 28, 28, 1])])
    assert reason_of(store, session_factory=factory) == (
        "graph input is 'image' tensor(float) [1, 28, 28, 1], expected 'image' tensor(float) [N, 28, 28, 1] "
        "with a dynamic batch dimension")


def test_a_graph_without_softmax(copy_store: Callable[..., Path]) -> None:
    store = copy_store("mlp")
    assert reason_of(store, session_factory=fake_factory(logits=True)) == (
        "warm-up output is not a probability distribution (softmax missing?)")


def test_an_empty_store_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match=r"^no models in the model store "):
        load_registry(tmp_path)


def test_a_default_model_not_in_the_store_refuses_to_start(copy_store: Callable[..., Path]) -> None:
    with pytest.raises(StoreUnavailable, match=r"^DIGITS_DEFAULT_MODEL=resnet is not in the store; models there: mlp$"):
        load_registry(copy_store("mlp"), default_model="resnet")


def test_a_reload_keeps_serving_the_old_version_when_the_new_one_is_broken(copy_store: Callable[..., Path]) -> None:
    store = copy_store("mlp")
    registry = load_registry(store)
    serving = registry.get("mlp")
    new = version_dir(store, "mlp", serving.version + 1)
    new.mkdir()
    (new / MODEL_FILE).write_bytes(b"broken")
    (new / CARD_FILE).write_text("{}")
    registry.load()
    assert registry.get("mlp") is serving


# -- through HTTP ------------------------------------------------------------------------------


@pytest.fixture
def broken_mlp_store(copy_store: Callable[..., Path]) -> Path:
    store = copy_store("cnn", "mlp")
    model_files(store, "mlp")[1].unlink()
    return store


def test_a_broken_model_is_reported_and_the_others_serve(
    app_factory: Callable[..., FastAPI], broken_mlp_store: Path, mnist_test: RawSplit
) -> None:
    with TestClient(app_factory(model_store=broken_mlp_store)) as client:
        models = {m["name"]: m for m in client.get("/models").json()["models"]}
        assert (models["mlp"]["state"], models["mlp"]["reason"], models["mlp"]["providers"]) == (
            "failed", "card.json is missing", [])
        assert models["cnn"]["state"] == "ready"
        detail = client.get("/models/mlp").json()
        assert (detail["state"], detail["card"]) == ("failed", None)

        digit = multipart(encode(mnist_test.images[0]))
        response = client.post("/predict?model=mlp", files=digit)
        assert response.status_code == 503
        assert response.json() == {"error": "model 'mlp' is not ready: card.json is missing", "model": "mlp",
                                   "reason": "card.json is missing"}
        assert client.post("/predict", files=digit).json()["model"] == "cnn"
        assert client.post("/predict?model=cnn", files=digit).status_code == 200

        response = client.get("/health/ready")
        assert (response.status_code, response.json()) == (
            200, {"status": "degraded", "default_model": "cnn", "models": {"cnn": "ready", "mlp": "failed"}})

        compared = client.post("/models/compare", files=digit).json()
        assert [p["model"] for p in compared["predictions"]] == ["cnn"]
        assert compared["unavailable"] == [{"name": "mlp", "reason": "card.json is missing"}]
        table = client.get("/models/compare").json()
        assert [row["name"] for row in table["models"]] == ["cnn"]
        assert (table["cnn_vs_mlp"], table["unavailable"]) == ([], [{"name": "mlp", "reason": "card.json is missing"}])

        metrics = client.get("/metrics").text
        assert 'digits_model_ready{model="mlp"} 0.0' in metrics
        assert 'digits_model_ready{model="cnn"} 1.0' in metrics
        assert 'digits_http_requests_total{method="POST",model="mlp",route="/predict",status="503"} 1.0' in metrics


def test_a_broken_default_model_makes_the_service_not_ready(
    app_factory: Callable[..., FastAPI], broken_mlp_store: Path
) -> None:
    with TestClient(app_factory(model_store=broken_mlp_store, default_model="mlp")) as client:
        response = client.get("/health/ready")
        assert response.status_code == 503
        assert response.json() == {"error": "the default model 'mlp' is not ready",
                                   "models": {"cnn": "ready", "mlp": "failed"}}


def test_with_no_model_ready_nothing_answers(app_factory: Callable[..., FastAPI], copy_store: Callable[..., Path]) -> None:
    store = copy_store("mlp")
    model_files(store, "mlp")[1].unlink()
    with TestClient(app_factory(model_store=store)) as client:
        response = client.get("/health/ready")
        assert (response.status_code, response.json()) == (503, {"error": "no model is ready", "models": {"mlp": "failed"}})
        response = client.post("/predict", content=encode(np.eye(28, dtype=np.uint8) * 255),
                               headers={"content-type": "image/png"})
        assert (response.status_code, response.json()) == (503, {"error": "no model is ready to answer"})
        assert client.get("/health/live").json() == {"status": "alive"}


def test_the_service_refuses_to_start_on_an_empty_store(app_factory: Callable[..., FastAPI], tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable), TestClient(app_factory(model_store=tmp_path)):
        pass


# -- the default model for image uploads -------------------------------------------------------


def write_upload_evaluation(store: Path, accuracy: dict[str, float]) -> None:
    record = {"split": "validation", "uploads": 100, "accuracy": accuracy}
    (store / UPLOAD_EVALUATION_FILE).write_text(json.dumps(record))


def test_uploads_go_to_the_best_model_on_the_validation_uploads(copy_store: Callable[..., Path]) -> None:
    store = copy_store("cnn", "mlp")
    write_upload_evaluation(store, {"cnn": 0.91, "mlp": 0.95})
    registry = load_registry(store)
    assert registry.default_name() == "cnn"  # pixels: best test accuracy, as before
    assert registry.default_name(uploads=True) == "mlp"
    assert registry.get_ready(None, uploads=True).name == "mlp"


def test_without_an_evaluation_uploads_use_the_default_model(copy_store: Callable[..., Path]) -> None:
    registry = load_registry(copy_store("cnn", "mlp"))
    assert registry.default_name(uploads=True) == registry.default_name() == "cnn"


@pytest.mark.parametrize("content", ["not json", '{"accuracy": 3}', '{"accuracy": {"cnn": "high"}}', "[]"])
def test_a_malformed_evaluation_is_ignored(copy_store: Callable[..., Path], content: str) -> None:
    store = copy_store("cnn", "mlp")
    (store / UPLOAD_EVALUATION_FILE).write_text(content)
    registry = load_registry(store)
    assert registry.upload_accuracy == {}
    assert registry.default_name(uploads=True) == "cnn"


def test_a_configured_upload_default_wins(copy_store: Callable[..., Path]) -> None:
    store = copy_store("cnn", "mlp")
    write_upload_evaluation(store, {"cnn": 0.99, "mlp": 0.5})
    assert load_registry(store, default_upload_model="mlp").default_name(uploads=True) == "mlp"


def test_an_upload_default_not_in_the_store_refuses_to_start(copy_store: Callable[..., Path]) -> None:
    with pytest.raises(StoreUnavailable, match=r"^DIGITS_DEFAULT_UPLOAD_MODEL=resnet is not in the store; "):
        load_registry(copy_store("mlp"), default_upload_model="resnet")


def test_models_lists_both_defaults(copy_store: Callable[..., Path], app_factory: Callable[..., FastAPI]) -> None:
    store = copy_store("cnn", "mlp")
    write_upload_evaluation(store, {"cnn": 0.91, "mlp": 0.95})
    with TestClient(app_factory(model_store=store)) as client:
        body = client.get("/models").json()
        upload = client.post("/predict", files=multipart(encode(bar_digit())))
    assert (body["default_model"], body["default_upload_model"]) == ("cnn", "mlp")
    rows = {m["name"]: m for m in body["models"]}
    assert rows["mlp"]["default_for_uploads"] and not rows["cnn"]["default_for_uploads"]
    assert rows["mlp"]["upload_validation_accuracy"] == 0.95
    assert upload.json()["model"] == "mlp"


def test_the_default_model_is_ranked_once_per_state_of_the_store(
    copy_store: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each request naming no model asks for the default: ranking every card each time was 8% of an
    # MNIST upload's CPU (issue 24). The answer is kept until a load or an unload changes the models.
    from service.models import registry as registry_module

    registry = load_registry(copy_store("cnn", "mlp"))
    ranked: list[int] = []
    real = registry_module.rank_cards
    monkeypatch.setattr(registry_module, "rank_cards", lambda *a, **k: ranked.append(1) or real(*a, **k))
    assert [registry.default_name() for _ in range(5)] == ["cnn"] * 5
    assert len(ranked) == 1
    registry.unload("cnn")
    assert registry.default_name() == "mlp"
    assert len(ranked) == 2
