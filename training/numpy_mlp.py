"""A multilayer perceptron written with NumPy only (seed 004): forward pass, backpropagation, training.

The network: inputs standardised with the training split's per-pixel mean and standard deviation
(a pixel that never varies keeps a standard deviation of 1, as scikit-learn's StandardScaler
does), any number of fully connected hidden layers with ReLU, Leaky ReLU or sigmoid, and a
softmax output. The loss is the mean softmax cross-entropy plus `l2 / 2 * sum(W**2)` over the
weight matrices (not the biases). Training is mini-batch gradient descent, with optional
(heavy-ball) momentum, on a seeded shuffle of the training set every epoch.

`MlpParameters.loss_and_gradients` is the backpropagation the gradient check verifies
(tests/training/test_numpy_mlp.py compares it with central differences in float64);
training/onnx_graph.py turns the learned parameters into an ONNX graph.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

Activation = Literal["relu", "leaky_relu", "sigmoid"]
ACTIVATIONS: tuple[Activation, ...] = ("relu", "leaky_relu", "sigmoid")
LEAKY_SLOPE = 0.01
"""Slope of Leaky ReLU for negative inputs (ONNX LeakyRelu's default alpha)."""

Array = npt.NDArray[np.floating]


@dataclass(frozen=True)
class MlpConfig:
    """Architecture and optimiser of one NumPy MLP."""

    hidden: tuple[int, ...] = (256,)
    """Widths of the hidden layers; () is a linear (softmax regression) classifier."""
    activation: Activation = "relu"
    l2: float = 0.0
    learning_rate: float = 0.05
    momentum: float = 0.9
    batch_size: int = 64
    epochs: int = 10
    seed: int = 1234

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if any(w <= 0 for w in self.hidden) or self.batch_size <= 0 or self.epochs <= 0:
            raise ValueError("widths, batch size and epochs must be positive")
        if self.l2 < 0 or self.learning_rate <= 0 or not 0 <= self.momentum < 1:
            raise ValueError("need l2 >= 0, learning_rate > 0 and 0 <= momentum < 1")


def activate(z: Array, activation: Activation) -> Array:
    if activation == "relu":
        return np.maximum(z, 0)
    if activation == "leaky_relu":
        return np.where(z > 0, z, z * LEAKY_SLOPE)
    # Sigmoid written with exp(-|z|) <= 1, so it never overflows for large |z|.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def activation_derivative(z: Array, a: Array, activation: Activation) -> Array:
    """d activation / d z, given the pre-activation z and the activation a."""
    if activation == "relu":
        return (z > 0).astype(z.dtype)
    if activation == "leaky_relu":
        return np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype)
    return a * (1 - a)


def softmax(logits: Array) -> Array:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


@dataclass
class MlpParameters:
    """Weights, biases and the input standardisation of one network."""

    weights: list[Array]
    """weights[k]: (fan_in, fan_out) of layer k; the last layer maps to the classes."""
    biases: list[Array]
    mean: Array
    std: Array
    activation: Activation

    @classmethod
    def initialise(
        cls,
        n_inputs: int,
        hidden: Sequence[int],
        n_classes: int,
        activation: Activation,
        rng: np.random.Generator,
        *,
        mean: Array | None = None,
        std: Array | None = None,
        dtype: type[np.floating] = np.float32,
    ) -> MlpParameters:
        """He-normal weights for (Leaky) ReLU layers, Glorot-normal for sigmoid layers and the
        softmax layer; zero biases."""
        sizes = [n_inputs, *hidden, n_classes]
        weights, biases = [], []
        for k, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            relu_like = k < len(hidden) and activation != "sigmoid"
            scale = np.sqrt(2.0 / fan_in) if relu_like else np.sqrt(2.0 / (fan_in + fan_out))
            weights.append((rng.standard_normal((fan_in, fan_out)) * scale).astype(dtype))
            biases.append(np.zeros(fan_out, dtype=dtype))
        return cls(
            weights=weights,
            biases=biases,
            mean=np.zeros(n_inputs, dtype=dtype) if mean is None else mean.astype(dtype),
            std=np.ones(n_inputs, dtype=dtype) if std is None else std.astype(dtype),
            activation=activation,
        )

    @property
    def parameter_count(self) -> int:
        return sum(w.size + b.size for w, b in zip(self.weights, self.biases, strict=True))

    def standardise(self, x: Array) -> Array:
        return (x.reshape(len(x), -1) - self.mean) / self.std

    def _forward(self, x: Array, standardised: bool = False) -> tuple[list[Array], list[Array], Array]:
        """Pre-activations and activations of every hidden layer, and the output logits."""
        a = x if standardised else self.standardise(x)
        zs: list[Array] = []
        activations: list[Array] = [a]
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            z = a @ w + b
            a = activate(z, self.activation)
            zs.append(z)
            activations.append(a)
        logits: Array = activations[-1] @ self.weights[-1] + self.biases[-1]
        return zs, activations, logits

    def logits(self, x: Array) -> Array:
        return self._forward(x)[2]

    def probabilities(self, x: Array) -> Array:
        """Softmax probabilities for inputs of any shape (N, ...) that flatten to the input width."""
        return softmax(self.logits(x))

    def predict(self, x: Array, batch: int = 10_000, *, standardised: bool = False) -> npt.NDArray[np.int64]:
        return np.concatenate(
            [np.argmax(self._forward(x[i : i + batch], standardised)[2], axis=1) for i in range(0, len(x), batch)]
        )

    def loss(self, x: Array, y: npt.NDArray[np.integer], l2: float = 0.0) -> float:
        logits = self.logits(x)
        return _cross_entropy(logits, y) + 0.5 * l2 * sum(float(np.sum(w * w)) for w in self.weights)

    def loss_and_gradients(
        self, x: Array, y: npt.NDArray[np.integer], l2: float = 0.0, *, standardised: bool = False
    ) -> tuple[float, list[Array], list[Array]]:
        """The loss (mean cross-entropy + l2/2 * sum W^2) and its gradients by backpropagation.

        x: raw inputs (N, ...), or inputs already standardised (N, features) if `standardised`.
        Returns the loss and the gradients of every weight matrix and bias vector.
        """
        zs, activations, logits = self._forward(x, standardised)
        n = len(y)
        probabilities = softmax(logits)
        loss = _cross_entropy(logits, y) + 0.5 * l2 * sum(float(np.sum(w * w)) for w in self.weights)
        # d loss / d logits of the mean softmax cross-entropy: (p - onehot) / n.
        delta = probabilities
        delta[np.arange(n), y] -= 1
        delta /= n
        grad_w: list[Array] = [np.empty(0)] * len(self.weights)
        grad_b: list[Array] = [np.empty(0)] * len(self.weights)
        for k in range(len(self.weights) - 1, -1, -1):
            grad_w[k] = activations[k].T @ delta + l2 * self.weights[k]
            grad_b[k] = delta.sum(axis=0)
            if k > 0:
                delta = (delta @ self.weights[k].T) * activation_derivative(zs[k - 1], activations[k], self.activation)
        return loss, grad_w, grad_b


def _cross_entropy(logits: Array, y: npt.NDArray[np.integer]) -> float:
    """Mean -log softmax(logits)[y], computed from the logits (log-sum-exp) so it never takes log(0)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=1))
    return float(np.mean(log_z - shifted[np.arange(len(y)), y]))


def standardisation(x_train: Array) -> tuple[Array, Array]:
    """Per-feature mean and standard deviation of the training inputs; 1 where a feature is constant."""
    flat = x_train.reshape(len(x_train), -1).astype(np.float64)
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    loss: float
    accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    seconds: float


@dataclass
class TrainingResult:
    parameters: MlpParameters
    config: MlpConfig
    history: list[EpochStats] = field(default_factory=list)
    seconds: float = 0.0


def _evaluate(parameters: MlpParameters, x: Array, y: npt.NDArray[np.integer], batch: int = 10_000) -> tuple[float, float]:
    """Mean cross-entropy (without the L2 term) and accuracy, in batches."""
    losses, correct = 0.0, 0
    for i in range(0, len(x), batch):
        logits = parameters.logits(x[i : i + batch])
        losses += _cross_entropy(logits, y[i : i + batch]) * len(logits)
        correct += int(np.sum(np.argmax(logits, axis=1) == y[i : i + batch]))
    return losses / len(x), correct / len(x)


def train_mlp(
    x_train: Array,
    y_train: npt.NDArray[np.integer],
    config: MlpConfig,
    *,
    validation: tuple[Array, npt.NDArray[np.integer]] | None = None,
    n_classes: int = 10,
    on_epoch: Callable[[EpochStats], None] | None = None,
    train_accuracy_every_epoch: bool = True,
) -> TrainingResult:
    """Mini-batch gradient descent (with momentum if config.momentum > 0) on float32 inputs.

    x_train: (N, ...) inputs (flattened inside); the standardisation comes from them.
    The training loss recorded per epoch is the mean of its mini-batch losses (L2 term included,
    the weights moving during the epoch, as Keras reports it); the training accuracy is measured
    on the whole split after the epoch (every epoch, or only after the last one unless
    `train_accuracy_every_epoch`); validation loss and accuracy (no L2 term) after every epoch.
    """
    rng = np.random.default_rng(config.seed)
    flat = x_train.reshape(len(x_train), -1).astype(np.float32)
    mean, std = standardisation(flat)
    parameters = MlpParameters.initialise(flat.shape[1], config.hidden, n_classes, config.activation, rng, mean=mean, std=std)
    # Standardise once; the parameters keep mean/std for inference and export.
    standardised = parameters.standardise(flat).astype(np.float32)
    velocity_w = [np.zeros_like(w) for w in parameters.weights]
    velocity_b = [np.zeros_like(b) for b in parameters.biases]
    result = TrainingResult(parameters, config)
    started = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        epoch_started = time.perf_counter()
        order = rng.permutation(len(flat))
        total_loss = 0.0
        for i in range(0, len(order), config.batch_size):
            batch = order[i : i + config.batch_size]
            xb, yb = standardised[batch], y_train[batch]
            loss, grad_w, grad_b = parameters.loss_and_gradients(xb, yb, config.l2, standardised=True)
            total_loss += loss * len(batch)
            for k in range(len(parameters.weights)):
                velocity_w[k] *= config.momentum
                velocity_w[k] -= config.learning_rate * grad_w[k]
                velocity_b[k] *= config.momentum
                velocity_b[k] -= config.learning_rate * grad_b[k]
                parameters.weights[k] += velocity_w[k]
                parameters.biases[k] += velocity_b[k]
            if not np.isfinite(loss):
                break
        train_loss = total_loss / len(order)
        train_accuracy = None
        if train_accuracy_every_epoch or epoch == config.epochs:
            train_accuracy = float(np.mean(parameters.predict(standardised, standardised=True) == y_train))
        val_loss = val_accuracy = None
        if validation is not None:
            val_loss, val_accuracy = _evaluate(parameters, validation[0], validation[1])
        stats = EpochStats(epoch, train_loss, train_accuracy, val_loss, val_accuracy, time.perf_counter() - epoch_started)
        result.history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
        if not np.isfinite(train_loss):
            log.warning("training diverged at epoch %d (loss %s); stopping", epoch, train_loss)
            break
    result.seconds = time.perf_counter() - started
    return result
