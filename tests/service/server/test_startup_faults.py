"""Start-up with a store where most models are broken, each in its own way, and the repair by reload.

One store holds two good models and four broken ones: a corrupt ONNX file (its card updated to
match, so only ONNX Runtime can tell), a missing card, a card that is not JSON, and a real ONNX
graph with the wrong input shape. The service starts, reports each broken model not ready with its
reason, serves the good ones, and says `degraded` on /health/ready (still 200: degraded is ready,
the default model answers). Once the files are repaired, one reload makes every model ready.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.factories import bar_digit, encode
from tests.service.conftest import edit_card, model_files

onnx = pytest.importorskip("onnx", reason="building a wrong-shape graph needs the onnx package (ci.lock has it)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

TOKEN = "startup-faults-" + "f" * 20
DIGIT = encode(bar_digit(120))
EXPECTED_REASONS = {
    "cnn_dropout": "ONNX Runtime cannot load model.onnx: ",
    "cnn_noise": "card.json is missing",
    "mlp_dropout": "card.json is invalid: card: Invalid JSON",
    "mlp_noise": "graph input is 'image' tensor(float) [N, 784], expected 'image' tensor(float) [N, 28, 28, 1] "
                 "with a dynamic batch dimension",
}


def flat_input_model() -> bytes:
    """A valid ONNX graph, `image` float32 [N, 784] -> softmax `probabilities` [N, 10]: the wrong input."""
    weights = numpy_helper.from_array(np.full((784, 10), 0.01, dtype=np.float32), "weights")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["image", "weights"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)],
        "flat_mlp",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 784])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        [weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def replace_model_file(store: Path, name: str, data: bytes) -> None:
    """Put `data` in place of the model's ONNX file and make its card record it (hash and size)."""
    onnx_path, card = model_files(store, name)
    onnx_path.write_bytes(data)
    edit_card(card, **{"onnx.sha256": hashlib.sha256(data).hexdigest(), "onnx.size_bytes": len(data)})


@pytest.fixture
def broken_store(copy_store: Callable[..., Path]) -> Path:
    store = copy_store("cnn", "mlp", "cnn_dropout", "cnn_noise", "mlp_dropout", "mlp_noise")
    replace_model_file(store, "cnn_dropout", b"\x08\x07" + b"not a protobuf graph" * 20)
    model_files(store, "cnn_noise")[1].unlink()
    model_files(store, "mlp_dropout")[1].write_text('{"name": "mlp_dropout", ')
    replace_model_file(store, "mlp_noise", flat_input_model())
    return store


def test_broken_models_are_not_ready_with_their_reasons_while_the_others_serve(
    app_factory: Callable[..., FastAPI], broken_store: Path
) -> None:
    with TestClient(app_factory(model_store=broken_store)) as client:
        models = {m["name"]: m for m in client.get("/models").json()["models"]}
        ready = client.get("/health/ready")
        answers = {name: client.post(f"/predict?model={name}", content=DIGIT, headers={"content-type": "image/png"})
                   for name in models}
        default = client.post("/predict", content=DIGIT, headers={"content-type": "image/png"})
        metrics = client.get("/metrics").text
    for name, prefix in EXPECTED_REASONS.items():
        assert models[name]["state"] == "failed"
        assert models[name]["reason"].startswith(prefix), (name, models[name]["reason"])
        assert "/" not in models[name]["reason"].replace("card.json", "").replace("model.onnx", "")
        assert answers[name].status_code == 503
        assert answers[name].json() == {"error": f"model {name!r} is not ready: {models[name]['reason']}",
                                        "model": name, "reason": models[name]["reason"]}
        assert f'digits_model_ready{{model="{name}"}} 0.0' in metrics
    assert {name for name, m in models.items() if m["state"] == "ready"} == {"cnn", "mlp"}
    assert answers["cnn"].status_code == answers["mlp"].status_code == 200
    assert default.status_code == 200 and default.json()["model"] in {"cnn", "mlp"}
    # Degraded is ready: the default model (and every ready one) answers, so traffic should keep coming.
    assert ready.status_code == 200
    assert ready.json() == {"status": "degraded", "default_model": default.json()["model"],
                            "models": {name: m["state"] for name, m in sorted(models.items())}}


def test_repairing_the_files_and_reloading_makes_every_model_ready(
    app_factory: Callable[..., FastAPI], broken_store: Path, store: Path
) -> None:
    with TestClient(app_factory(model_store=broken_store, admin_token=TOKEN)) as client:
        assert client.get("/health/ready").json()["status"] == "degraded"
        for name in EXPECTED_REASONS:  # an operator puts the right files back, in place
            source = model_files(store, name)
            for good, target in zip(source, model_files(broken_store, name), strict=True):
                shutil.copyfile(good, target)
        report = client.post("/admin/reload", headers={"authorization": f"Bearer {TOKEN}"}).json()
        ready = client.get("/health/ready").json()
        answers = [client.post(f"/predict?model={name}", content=DIGIT, headers={"content-type": "image/png"})
                   for name in EXPECTED_REASONS]
    assert {row["name"]: (row["change"], row["state"]) for row in report["models"]} == {
        name: ("reloaded", "ready") for name in ("cnn", "mlp", *EXPECTED_REASONS)}
    assert ready["status"] == "ready"
    assert [answer.status_code for answer in answers] == [200] * len(EXPECTED_REASONS)
