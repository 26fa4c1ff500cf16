"""`python -m service store add`: an ONNX file built here is checked, evaluated, carded, served,
ranked beside the zoo's model of the same test set, and loaded into a running server without a restart."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from digit_contract.card import ModelCard
from digit_contract.store import CARD_FILE, MODEL_FILE, version_dir
from service.__main__ import main
from service.inference_protocol.triton_config import CONFIG_FILE, render_config
from service.models.store_add import UCI_INPUT
from tests.service.conftest import REPO

onnx = pytest.importorskip("onnx", reason="store add rewrites graphs with onnx (the training environment)")
pytest.importorskip("sklearn", reason="the UCI 8x8 test set comes with scikit-learn")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

TOKEN = "s3cret-admin-token"  # noqa: S105 - a test token
ZOO_UCI_MODEL = "digits8_sklearn_mlp"


def linear_graph(weights: npt.NDArray[np.float32], bias: npt.NDArray[np.float32], *, input_shape: list[int | str],
                 softmax: bool, names: tuple[str, str] = ("x", "logits")) -> bytes:
    """A linear classifier as a user's exporter would write it: its own tensor names, logits or softmax."""
    source, target = names
    flat = int(np.prod([d for d in input_shape[1:] if isinstance(d, int)]))
    nodes = [helper.make_node("Reshape", [source, "shape"], ["flat"]),
             helper.make_node("Gemm", ["flat", "W", "b"], ["z" if softmax else target])]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["z"], [target], axis=1))
    graph = helper.make_graph(
        nodes, "user_model", [helper.make_tensor_value_info(source, TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info(target, TensorProto.FLOAT, [input_shape[0], 10])],
        [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b"),
         numpy_helper.from_array(np.array([-1, flat], np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return bytes(model.SerializeToString())


@pytest.fixture(scope="module")
def uci_classifier() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], float]:
    """Logistic regression on the UCI split's training digits: weights, bias, and its own test accuracy."""
    from sklearn.linear_model import LogisticRegression

    from training.digits_8x8 import load_uci_digits

    uci = load_uci_digits()
    fitted = LogisticRegression(max_iter=1000).fit(uci.x_train, uci.y_train)
    return fitted.coef_.T.astype(np.float32), fitted.intercept_.astype(np.float32), float(fitted.score(uci.x_test, uci.y_test))


@pytest.fixture
def uci_file(tmp_path: Path, uci_classifier: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], float]) -> Path:
    weights, bias, _ = uci_classifier
    path = tmp_path / "my_digits.onnx"
    path.write_bytes(linear_graph(weights, bias, input_shape=["batch", 64], softmax=False))
    return path


@pytest.fixture
def zoo_store(tmp_path: Path) -> Path:
    """A store holding the zoo's scikit-learn 8x8 model, to rank the added one against."""
    store = tmp_path / "store"
    store.mkdir()
    shutil.copytree(REPO / "model_store" / ZOO_UCI_MODEL, store / ZOO_UCI_MODEL)
    return store


def add(*arguments: str | Path) -> int:
    return main(["store", "add", *map(str, arguments)])


def test_add_writes_the_model_its_card_and_the_triton_config(
    uci_file: Path, zoo_store: Path, uci_classifier: tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert add(uci_file, "--name", "my_digits", "--store", zoo_store, "--add-softmax") == 0
    assert "my_digits v1: uci-digits-8x8 test accuracy" in capsys.readouterr().out
    directory = version_dir(zoo_store, "my_digits", 1)
    card = ModelCard.read(directory / CARD_FILE)
    payload = (directory / MODEL_FILE).read_bytes()
    assert card.onnx.sha256 == hashlib.sha256(payload).hexdigest() and card.onnx.size_bytes == len(payload)
    # Evaluated on the 360 UCI test digits: softmax keeps the argmax, so the accuracy is the classifier's own.
    assert card.input == UCI_INPUT and card.dataset.test_samples == 360
    assert card.test_accuracy == pytest.approx(uci_classifier[2], abs=1e-12)
    assert sum(map(sum, card.confusion_matrix)) == 360 and len(card.misclassified) == card.test_errors
    # What it cannot know is null and said so; the graph's own names are recorded as renamed.
    assert (card.framework, card.architecture, card.experiment) == ("imported", "imported", "imported")
    assert card.hyperparameters is None and card.seed is None and card.history == [] and card.training_seconds is None
    assert {"hyperparameters", "seed", "history", "training_seconds", "calibration"} <= set(card.not_measured)
    assert "'x' renamed 'image'" in card.description and "Softmax appended" in card.description
    assert (zoo_store / "my_digits" / CONFIG_FILE).read_text() == render_config("my_digits", spec=UCI_INPUT)
    # The next add is version 2 unless told; a taken version is refused.
    assert add(uci_file, "--name", "my_digits", "--store", zoo_store, "--add-softmax", "--version", "5") == 0
    assert version_dir(zoo_store, "my_digits", 5).is_dir()
    assert add(uci_file, "--name", "my_digits", "--store", zoo_store, "--add-softmax", "--version", "5") == 1
    assert "my_digits version 5 already exists" in capsys.readouterr().err


@pytest.mark.parametrize(("graph", "flags", "error"), [
    ("logits", [], "the outputs are not probabilities (row sums"),
    ("fixed_batch", ["--add-softmax"], "has no dynamic batch axis"),
    ("wide", ["--add-softmax"], "cannot tell which digits the input [batch, 100] takes"),
    ("logits", ["--add-softmax", "--input", "mnist"], "but --input says [N, 28, 28, 1]"),
    ("not_onnx", [], "not a valid ONNX model"),
])
def test_a_graph_that_does_not_fit_is_refused_and_nothing_written(
    graph: str, flags: list[str], error: str, tmp_path: Path, zoo_store: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    rng = np.random.default_rng(0)
    width = 100 if graph == "wide" else 64
    weights, bias = rng.normal(size=(width, 10)).astype(np.float32), np.zeros(10, np.float32)
    shape: list[int | str] = [1 if graph == "fixed_batch" else "batch", width]
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not a graph" if graph == "not_onnx" else linear_graph(weights, bias, input_shape=shape, softmax=False))
    assert add(path, "--name", "refused", "--store", zoo_store, *flags) == 1
    assert error in capsys.readouterr().err
    assert not (zoo_store / "refused").exists() or not any((zoo_store / "refused").iterdir())


def test_an_added_model_is_served_ranked_and_listed(
    uci_file: Path, zoo_store: Path, app_factory: Callable[..., FastAPI],
) -> None:
    assert add(uci_file, "--name", "my_digits", "--store", zoo_store, "--add-softmax") == 0
    from training.digits_8x8 import load_uci_digits

    digits = load_uci_digits().x_test[:16]
    import onnxruntime as ort

    session = ort.InferenceSession((version_dir(zoo_store, "my_digits", 1) / MODEL_FILE).read_bytes(),
                                   providers=["CPUExecutionProvider"])
    expected = session.run(["probabilities"], {"image": digits})[0]
    with TestClient(app_factory(model_store=zoo_store)) as client:
        listed = {m["name"]: m for m in client.get("/models").json()["models"]}
        assert listed["my_digits"]["state"] == "ready" and listed["my_digits"]["architecture"] == "imported"
        body = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [16, 64], "data": digits.ravel().tolist()}]}
        answer = client.post("/v2/models/my_digits/infer", json=body)
        assert answer.status_code == 200, answer.text
        probabilities = np.asarray(answer.json()["outputs"][0]["data"], dtype=np.float32).reshape(16, 10)
        assert np.allclose(probabilities, expected, atol=1e-6)
        comparison = client.get("/models/compare").json()
    # Ranked with the zoo's 8x8 model on the same 360 digits, not apart from it.
    (uci,) = [d for d in comparison["datasets"] if d["dataset"] == "uci-digits-8x8"]
    assert set(uci["models"]) == {"my_digits", ZOO_UCI_MODEL}
    row = next(r for r in comparison["models"] if r["name"] == "my_digits")
    assert row["framework"] == "imported" and row["epochs"] is None and row["training_seconds"] is None


def test_load_serves_an_added_model_without_a_restart(
    uci_file: Path, zoo_store: Path, app_factory: Callable[..., FastAPI],
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app_factory(model_store=zoo_store, admin_token=TOKEN)) as client:
        assert client.get("/v2/models/my_digits/ready").status_code == 404
        assert add(uci_file, "--name", "my_digits", "--store", zoo_store, "--add-softmax") == 0
        loaded = client.post("/v2/repository/models/my_digits/load", headers=headers)
        assert loaded.status_code == 200, loaded.text
        assert client.get("/v2/models/my_digits/ready").status_code == 200
        assert "my_digits" in {m["name"] for m in client.get("/models").json()["models"]}


@pytest.mark.skipif(not os.environ.get("MNIST_DIR"), reason="needs the full MNIST set (set MNIST_DIR)")
def test_an_mnist_model_is_ranked_with_the_zoo_and_calibrated_only_where_asked(tmp_path: Path) -> None:
    from digit_contract.ranking import rank_within_noise

    store = tmp_path / "store"
    shutil.copytree(REPO / "model_store" / "mlp", store / "mlp")
    rng = np.random.default_rng(1)
    path = tmp_path / "keras_style.onnx"
    path.write_bytes(linear_graph(rng.normal(scale=0.05, size=(784, 10)).astype(np.float32), np.zeros(10, np.float32),
                                  input_shape=["N", 28, 28, 1], softmax=True, names=("input_1", "dense")))
    assert add(path, "--name", "mine", "--store", store) == 0
    assert add(path, "--name", "mine", "--store", store, "--apply-temperature") == 0
    first, second = (ModelCard.read(version_dir(store, "mine", v) / CARD_FILE) for v in (1, 2))
    assert first.dataset.test_samples == 10_000 and first.input.encoding == "mnist"
    # The temperature is fitted on MNIST's validation images either way, applied only when vouched for.
    assert first.calibration is not None and not first.calibration.applied and "calibration.applied" in first.not_measured
    assert second.calibration is not None and second.calibration.applied == (
        second.calibration.validation_nll_after < second.calibration.validation_nll_before)
    zoo = ModelCard.read(version_dir(store, "mlp", 1) / CARD_FILE)
    ranking = rank_within_noise({"mlp": zoo, "mine": second})
    assert len(ranking.groups) == 1  # the same test images as the zoo's: one ranking
