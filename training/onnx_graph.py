"""The NumPy MLP as an ONNX graph, built node by node with onnx.helper from its learned parameters.

No framework in between: the graph is exactly the forward pass of `training.numpy_mlp`::

    image [N, 28, 28, 1] -> Flatten -> Sub(mean) -> Div(std)
        -> (Gemm(W_k, b_k) -> Relu | LeakyRelu(0.01) | Sigmoid) per hidden layer
        -> Gemm(W_out, b_out) -> Softmax(axis=1) -> probabilities [N, 10]

at the zoo's pinned opset, with a dynamic batch axis. `training.export.verify_onnx` then checks
it against `MlpParameters.probabilities` (parity at batch 1 and a large batch, determinism).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digit_contract.inputs import INPUT_NAME, MNIST_INPUT, NUM_CLASSES, OUTPUT_NAME, InputSpec
from training.export import OPSET
from training.numpy_mlp import LEAKY_SLOPE, MlpParameters

PRODUCER = "digit-serving training.onnx_graph"


def build_mlp_graph(parameters: MlpParameters, spec: InputSpec = MNIST_INPUT, name: str = "numpy_mlp") -> object:
    """The ONNX ModelProto of `parameters` taking inputs shaped as `spec` says."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n_features = int(np.prod(spec.sample_shape))
    if parameters.weights[0].shape[0] != n_features:
        raise ValueError(f"the network takes {parameters.weights[0].shape[0]} features, the input spec gives {n_features}")
    if parameters.weights[-1].shape[1] != NUM_CLASSES:
        raise ValueError(f"the network has {parameters.weights[-1].shape[1]} outputs, expected {NUM_CLASSES}")

    def tensor(array: np.ndarray, tensor_name: str) -> onnx.TensorProto:
        return numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), tensor_name)

    initializers = [tensor(parameters.mean, "mean"), tensor(parameters.std, "std")]
    nodes = [
        helper.make_node("Flatten", [INPUT_NAME], ["flat"], axis=1, name="flatten"),
        helper.make_node("Sub", ["flat", "mean"], ["centred"], name="centre"),
        helper.make_node("Div", ["centred", "std"], ["standardised"], name="scale"),
    ]
    current = "standardised"
    last = len(parameters.weights) - 1
    for k, (w, b) in enumerate(zip(parameters.weights, parameters.biases, strict=True)):
        initializers += [tensor(w, f"W{k}"), tensor(b, f"b{k}")]
        out = "logits" if k == last else f"z{k}"
        nodes.append(helper.make_node("Gemm", [current, f"W{k}", f"b{k}"], [out], name=f"dense{k}"))
        current = out
        if k < last:
            activated = f"a{k}"
            if parameters.activation == "relu":
                nodes.append(helper.make_node("Relu", [out], [activated], name=f"relu{k}"))
            elif parameters.activation == "leaky_relu":
                nodes.append(helper.make_node("LeakyRelu", [out], [activated], alpha=LEAKY_SLOPE, name=f"leaky_relu{k}"))
            else:
                nodes.append(helper.make_node("Sigmoid", [out], [activated], name=f"sigmoid{k}"))
            current = activated
    nodes.append(helper.make_node("Softmax", [current], [OUTPUT_NAME], axis=1, name="softmax"))

    graph = helper.make_graph(
        nodes,
        name,
        inputs=[helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", *spec.sample_shape])],
        outputs=[helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", NUM_CLASSES])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER)
    # The zoo's ONNX Runtime reads IR version 10 files and older; pin it rather than take onnx's newest.
    model.ir_version = min(model.ir_version, 10)
    model.doc_string = (
        f"{name}: NumPy MLP {'-'.join(str(w.shape[1]) for w in parameters.weights[:-1]) or 'linear'} "
        f"({parameters.activation}), {INPUT_NAME} ({spec.describe()}) -> {OUTPUT_NAME}"
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def write_mlp_onnx(parameters: MlpParameters, path: Path, spec: InputSpec = MNIST_INPUT, name: str = "numpy_mlp") -> None:
    """Build the graph of `parameters` and write it to `path`."""
    model = build_mlp_graph(parameters, spec, name)
    path.write_bytes(model.SerializeToString())  # type: ignore[attr-defined]
