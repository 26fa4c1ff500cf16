"""Fixtures of the inference tests: a store of tiny ONNX models with every input spec the service serves."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from onnx import TensorProto, helper, numpy_helper

from digit_contract.inputs import MNIST_INPUT, InputSpec
from tests.factories import make_card

UCI_FLAT = InputSpec(height=8, width=8, layout="flat", levels=17, encoding="uci-8x8")
UCI_NHWC = InputSpec(height=8, width=8, layout="nhwc", levels=17, encoding="uci-8x8")


def linear_softmax(spec: InputSpec, *, graph_shape: tuple[int, ...] | None = None, seed: int = 0) -> tuple[bytes, Any]:
    """`image` float32 [N, *shape] -> Flatten -> Gemm -> Softmax `probabilities` [N, 10], and its weights."""
    shape = graph_shape or spec.sample_shape
    features = int(np.prod(shape))
    rng = np.random.default_rng(seed)
    weights = rng.normal(0, 1, (features, 10)).astype(np.float32)
    bias = rng.normal(0, 0.1, 10).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["image"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "weights", "bias"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "linear",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(weights, "weights"), numpy_helper.from_array(bias, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString(), (weights, bias)


def expected_probabilities(batch: npt.NDArray[np.float32], weights: Any) -> npt.NDArray[np.float64]:
    w, b = weights
    logits = batch.reshape(len(batch), -1).astype(np.float64) @ w + b
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def publish(store: Path, name: str, data: bytes, spec: InputSpec) -> None:
    directory = store / name / "1"
    directory.mkdir(parents=True)
    (directory / "model.onnx").write_bytes(data)
    card = make_card(name, input=spec.model_dump(), architecture="mlp", onnx={
        "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data), "opset": 17,
        "input_name": "image", "output_name": "probabilities", "max_abs_diff_vs_keras": 0.0,
    })
    card.write(directory / "card.json")


WEIGHTS: dict[str, Any] = {}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MNIST model, 8x8 models with flat and NHWC inputs, and two whose card and graph disagree."""
    store = tmp_path_factory.mktemp("zoo")
    for name, spec, graph_shape in (
        ("mnist_linear", MNIST_INPUT, None),
        ("digits8_flat", UCI_FLAT, None),
        ("digits8_nhwc", UCI_NHWC, None),
        ("digits8_liar", UCI_FLAT, (28, 28, 1)),  # card: 8x8 flat; graph: MNIST's input
    ):
        data, WEIGHTS[name] = linear_softmax(spec, graph_shape=graph_shape)
        publish(store, name, data, spec)
    # An 8x8 input that says it is framed the MNIST way: no upload could be prepared for it.
    data, _ = linear_softmax(UCI_FLAT)
    publish(store, "digits8_mislabelled", data, UCI_FLAT.model_copy(update={"encoding": "mnist"}))
    return store
