"""Dense networks on MNIST for seeds 001 and 003: their split, builder, history and publication.

Both seeds split MNIST's 60,000 training images into the first 50,000 (fit) and the last 10,000
(validation: every choice of architecture, epochs and hyperparameters), and keep the 10,000 test
images for the final evaluation of the published ONNX file only. Their models are Keras
Sequential stacks of Dense layers (with Dropout, and BatchNormalization for seed 003) behind a
Flatten of MNIST's [N, 28, 28, 1] input, so they serve exactly like seed 000's models.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from digit_contract.card import EpochRecord, Hyperparameters, ModelCard
from digit_contract.inputs import MNIST_INPUT, NUM_CLASSES
from digit_contract.store import CARD_FILE, latest_version, version_dir
from training.data import Mnist, RawSplit, load_mnist
from training.experiments import Experiment, ExperimentRun
from training.publish import publish_keras
from training.trainer import mnist_test_split, parity_images

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

VALIDATION_SHARE = 10_000 / 60_000
"""Seeds 001 and 003: the last 10,000 of the 60,000 training images validate."""


@dataclass(frozen=True)
class DenseSplit:
    """The 50,000 / 10,000 / test split, as uint8 digits (the model input is made from them)."""

    train: RawSplit
    validation: RawSplit
    test: RawSplit
    mnist: Mnist

    def as_mnist(self) -> Mnist:
        """The same data as a `Mnist` (for helpers that take one, e.g. parity image selection)."""
        return Mnist(self.train, self.validation, self.test, self.mnist.source, self.mnist.file_sha256)






def load_dense_split(run: ExperimentRun) -> DenseSplit:
    """MNIST with the seeds' split: the 60,000 training images in their original order, the last
    sixth (10,000 of 60,000) for validation, the rest for training."""
    mnist = load_mnist(run.data_dir, download=run.download)
    images = np.concatenate([mnist.train.images, mnist.validation.images])
    labels = np.concatenate([mnist.train.labels, mnist.validation.labels])
    cut = len(labels) - round(len(labels) * VALIDATION_SHARE)
    return DenseSplit(RawSplit(images[:cut], labels[:cut]), RawSplit(images[cut:], labels[cut:]), mnist.test, mnist)


def one_hot(labels: npt.NDArray[np.integer]) -> npt.NDArray[np.float32]:
    encoded: npt.NDArray[np.float32] = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    return encoded


def build_dense(
    widths: Sequence[int],
    *,
    dropout: float = 0.0,
    batch_norm: bool = False,
    input_dropout: float = 0.0,
    name: str = "dense",
) -> keras.Model:
    """Flatten -> [Dense(w) (-> BatchNormalization) -> ReLU (-> Dropout)] per width -> Dense(10, softmax).

    With batch normalisation the Dense layer has no bias (BatchNormalization's beta replaces it)
    and the ReLU follows the normalisation. A rate of 0 means no Dropout layer.
    """
    import keras

    stack: list[keras.layers.Layer] = [keras.Input(MNIST_INPUT.sample_shape), keras.layers.Flatten()]
    if input_dropout > 0:
        stack.append(keras.layers.Dropout(input_dropout))
    for width in widths:
        if batch_norm:
            stack += [keras.layers.Dense(width, use_bias=False), keras.layers.BatchNormalization(),
                      keras.layers.Activation("relu")]
        else:
            stack.append(keras.layers.Dense(width, activation="relu"))
        if dropout > 0:
            stack.append(keras.layers.Dropout(dropout))
    stack.append(keras.layers.Dense(NUM_CLASSES, activation="softmax"))
    return keras.Sequential(stack, name=name)


def overfitting_epoch(history: Sequence[EpochRecord]) -> EpochRecord:
    """The epoch of lowest validation loss: past it the model fits the training images better and
    the validation images worse (the workflow's 'where overfitting starts')."""
    measured = [e for e in history if e.val_loss is not None]
    return min(measured, key=lambda e: e.val_loss if e.val_loss is not None else float("inf"))


def export_and_publish(
    model: keras.Model,
    *,
    name: str,
    experiment: Experiment,
    description: str,
    hyperparameters: Hyperparameters,
    history: list[EpochRecord],
    seconds: float,
    seed: int,
    split: DenseSplit,
    store: Path,
) -> ModelCard:
    """Publish a dense MLP trained on the seeds' split (`training.publish.publish_keras`)."""
    mnist = split.as_mnist()
    return publish_keras(
        model,
        name=name,
        experiment=experiment.id,
        architecture="mlp",
        description=description,
        hyperparameters=hyperparameters,
        history=history,
        seconds=seconds,
        seed=seed,
        parity_inputs=parity_images(mnist),
        test=mnist_test_split(mnist, experiment.split),
        store=store,
    )


def latest_card(store: Path, name: str) -> ModelCard | None:
    """The newest published card of `name` in `store`, if any (for records that cover every variant)."""
    version = latest_version(store, name)
    if version is None:
        return None
    return ModelCard.read(version_dir(store, name, version) / CARD_FILE)
