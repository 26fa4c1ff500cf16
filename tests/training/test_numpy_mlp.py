"""The NumPy MLP: backpropagation against central differences, training, and its ONNX graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from digit_contract.inputs import INPUT_NAME, MNIST_INPUT, OUTPUT_NAME
from training.export import verify_onnx
from training.numpy_mlp import ACTIVATIONS, MlpConfig, MlpParameters, softmax, standardisation, train_mlp
from training.onnx_graph import build_mlp_graph, write_mlp_onnx


def _numerical_gradients(parameters: MlpParameters, x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """Central differences of the loss w.r.t. every weight and bias, in the order backprop returns them."""
    step = 1e-6
    values = []
    for arrays in (parameters.weights, parameters.biases):
        for array in arrays:
            for index in np.ndindex(array.shape):
                original = array[index]
                array[index] = original + step
                plus = parameters.loss(x, y, l2)
                array[index] = original - step
                minus = parameters.loss(x, y, l2)
                array[index] = original
                values.append((plus - minus) / (2 * step))
    return np.array(values)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("hidden", [(), (6,), (6, 5)])
def test_backpropagation_matches_a_gradient_check(activation: str, hidden: tuple[int, ...]) -> None:
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
    parameters = MlpParameters.initialise(
        4, hidden, 3, activation, rng,  # type: ignore[arg-type]
        mean=rng.standard_normal(4) * 0.1, std=np.abs(rng.standard_normal(4)) + 0.5, dtype=np.float64,
    )
    for b in parameters.biases:
        b[:] = rng.standard_normal(b.shape) * 0.1
    l2 = 0.01
    loss, grad_w, grad_b = parameters.loss_and_gradients(x, y, l2)
    analytic = np.concatenate([g.ravel() for g in (*grad_w, *grad_b)])
    numeric = _numerical_gradients(parameters, x, y, l2)
    relative_error = np.linalg.norm(analytic - numeric) / (np.linalg.norm(analytic) + np.linalg.norm(numeric))
    assert relative_error < 1e-7
    assert loss == pytest.approx(parameters.loss(x, y, l2))


def test_standardisation_keeps_constant_pixels_finite() -> None:
    x = np.zeros((5, 3), dtype=np.float32)
    x[:, 1] = [0, 1, 2, 3, 4]
    mean, std = standardisation(x)
    assert std[0] == 1.0 and std[2] == 1.0
    assert mean[1] == pytest.approx(2.0) and std[1] == pytest.approx(np.std([0, 1, 2, 3, 4]))


def test_softmax_is_stable_for_large_logits() -> None:
    p = softmax(np.array([[1000.0, 0.0, -1000.0]]))
    assert np.all(np.isfinite(p)) and p[0, 0] == pytest.approx(1.0)


def _blobs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ten separable clusters in 784 dimensions, shaped like MNIST input."""
    rng = np.random.default_rng(seed)
    centres = rng.random((10, 784)).astype(np.float32)
    y = rng.integers(0, 10, n)
    x = np.clip(centres[y] + 0.1 * rng.standard_normal((n, 784)).astype(np.float32), 0, 1)
    return x.reshape(n, 28, 28, 1).astype(np.float32), y


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_training_learns_separable_classes(activation: str) -> None:
    x, y = _blobs(600)
    config = MlpConfig(hidden=(32,), activation=activation, epochs=5, batch_size=32, learning_rate=0.05)  # type: ignore[arg-type]
    result = train_mlp(x[:500], y[:500], config, validation=(x[500:], y[500:]))
    assert len(result.history) == 5
    assert result.history[-1].val_accuracy is not None and result.history[-1].val_accuracy > 0.9
    assert result.history[-1].loss < result.history[0].loss


def test_training_is_reproducible_from_the_seed() -> None:
    x, y = _blobs(300)
    config = MlpConfig(hidden=(16,), epochs=2, batch_size=50)
    first, second = train_mlp(x, y, config), train_mlp(x, y, config)
    for a, b in zip(first.parameters.weights, second.parameters.weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_l2_shrinks_the_weights() -> None:
    x, y = _blobs(300)
    plain = train_mlp(x, y, MlpConfig(hidden=(16,), epochs=3, l2=0.0))
    decayed = train_mlp(x, y, MlpConfig(hidden=(16,), epochs=3, l2=0.1))
    norm = lambda r: sum(float(np.sum(w * w)) for w in r.parameters.weights)  # noqa: E731
    assert norm(decayed) < 0.75 * norm(plain)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("hidden", [(), (24,), (24, 12)])
def test_onnx_graph_matches_the_numpy_forward_pass(tmp_path: Path, activation: str, hidden: tuple[int, ...]) -> None:
    rng = np.random.default_rng(3)
    parameters = MlpParameters.initialise(
        784, hidden, 10, activation, rng,  # type: ignore[arg-type]
        mean=rng.random(784).astype(np.float32), std=(rng.random(784) + 0.5).astype(np.float32),
    )
    path = tmp_path / "mlp.onnx"
    write_mlp_onnx(parameters, path)
    images = rng.random((1000, 28, 28, 1), dtype=np.float32)
    report = verify_onnx(path, parameters.probabilities, images, MNIST_INPUT)
    assert report.max_abs_diff <= 1e-5 and report.opset == 17


def test_onnx_graph_signature_and_operators() -> None:
    rng = np.random.default_rng(0)
    parameters = MlpParameters.initialise(784, (8,), 10, "leaky_relu", rng)
    graph = build_mlp_graph(parameters).graph  # type: ignore[attr-defined]
    assert [i.name for i in graph.input] == [INPUT_NAME] and [o.name for o in graph.output] == [OUTPUT_NAME]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == [28, 28, 1]
    assert [n.op_type for n in graph.node] == ["Flatten", "Sub", "Div", "Gemm", "LeakyRelu", "Gemm", "Softmax"]


def test_onnx_graph_refuses_a_network_of_the_wrong_width() -> None:
    parameters = MlpParameters.initialise(64, (8,), 10, "relu", np.random.default_rng(0))
    with pytest.raises(ValueError, match="takes 64 features"):
        build_mlp_graph(parameters)
