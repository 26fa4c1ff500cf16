"""`cnn_writers`: the upload model taught a second population of writers, the UCI digits' 43.

Every MNIST model of the zoo has only seen MNIST's writers, and reads digits written by others
worse than the data would allow: the UCI 8x8 digits, upscaled and framed as the service frames
them, read ~88% against MNIST's 99% (renderer C, issue 21). This trainer starts from the upload
model's weights (`cnn_augmented`, read back from its ONNX file) and goes on training it on MNIST's
training digits plus the UCI *training* split, framed exactly as the service frames an upload of
one (`upscale_blocks`, then `frame_digit`), every epoch freshly distorted by the same 'uploads'
recipe. The UCI test split, which the evaluations draw from, is never seen.

Validation: MNIST's validation digits and a seeded fifth of the UCI training split, held out.
Fonts are left out on purpose: the evaluations' font digits come from the same installed fonts.

    python -m training train --experiment writers [--epochs N] [--option lr=0.0003]
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from digit_contract.card import Hyperparameters, ModelCard
from digit_contract.inputs import NUM_CLASSES
from digit_contract.store import MODEL_FILE, latest_version, version_dir
from training.data import VALIDATION_FRACTION, Mnist, RawSplit, as_model_input, load_mnist
from training.experiments import Experiment, ExperimentRun, limit_tensorflow_threads, write_record
from training.publish import history_records, publish_keras
from training.trainer import TrainingConfig, fit_augmented, mnist_test_split, parity_images
from training.variants import VARIANTS_BY_NAME

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

NAME = "cnn_writers"
START_FROM = "cnn_augmented"
"""The model whose weights training starts from: the network and recipe are the same."""

EPOCHS = 8
LEARNING_RATE = 3e-4
"""A third of Adam's default: the weights already read MNIST; a full rate would unlearn some of it."""

UCI_REPEATS = 6
"""Each UCI training digit appears this often per epoch (each time distorted afresh): 1,150 digits
against MNIST's 54,000 would otherwise be 2% of the batches."""

UCI_VALIDATION_SHARE = 0.2


def uci_as_uploads(counts: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """UCI 8x8 block counts (0-16) as the 28x28 digits the service makes of an upload of each."""
    from digit_frontend.framing import frame_digit
    from digit_frontend.pipeline import upscale_blocks

    return np.stack([frame_digit(upscale_blocks(digit).astype(np.float32) / 255.0) for digit in counts])


def uci_fit_and_validation(seed: int) -> tuple[RawSplit, RawSplit]:
    """The UCI training split as uploads, cut into a part to train on and a held-out part."""
    from training.ink_writers import uci_split

    counts, wide_labels = uci_split("train")
    labels = wide_labels.astype(np.uint8)  # as MNIST's labels
    order = np.random.default_rng(seed).permutation(len(labels))
    held = round(len(labels) * UCI_VALIDATION_SHARE)
    images = uci_as_uploads(counts)
    return (RawSplit(images[order[held:]], labels[order[held:]]),
            RawSplit(images[order[:held]], labels[order[:held]]))


def with_other_writers(mnist: Mnist, uci_fit: RawSplit) -> Mnist:
    """MNIST with the UCI digits added to its training split, `UCI_REPEATS` times over."""
    images = np.concatenate([mnist.train.images, *[uci_fit.images] * UCI_REPEATS])
    labels = np.concatenate([mnist.train.labels, *[uci_fit.labels] * UCI_REPEATS])
    return Mnist(train=RawSplit(images, labels), validation=mnist.validation, test=mnist.test,
                 source=mnist.source, file_sha256=mnist.file_sha256)


def accuracy(model: keras.Model, split: RawSplit) -> float:
    predicted = model.predict(as_model_input(split), batch_size=512, verbose=0).argmax(axis=1)
    return float((predicted == split.labels).mean())


def train(experiment: Experiment, run: ExperimentRun) -> list[ModelCard]:
    """Fine-tune the upload model on both populations of writers and publish it as `cnn_writers`."""
    import keras

    from training.onnx_to_keras import keras_model_from_onnx

    limit_tensorflow_threads(run.threads())
    epochs = run.epochs or EPOCHS
    learning_rate = float(run.options.get("lr", LEARNING_RATE))
    config = TrainingConfig(epochs=epochs, seed=run.seed, learning_rate=learning_rate)
    keras.utils.set_random_seed(config.seed)
    mnist = load_mnist(run.data_dir, download=run.download)
    uci_fit, uci_validation = uci_fit_and_validation(run.seed)
    data = with_other_writers(mnist, uci_fit)

    spec = VARIANTS_BY_NAME[START_FROM]
    start = _latest_model_file(run.store, START_FROM)
    model = keras_model_from_onnx(spec, start)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    before = {"mnist": accuracy(model, mnist.validation), "uci": accuracy(model, uci_validation)}
    # Keras validates on both populations together; each is also reported on its own below.
    validation = RawSplit(np.concatenate([mnist.validation.images, uci_validation.images]),
                          np.concatenate([mnist.validation.labels, uci_validation.labels]))
    y_train = keras.utils.to_categorical(data.train.labels, NUM_CLASSES)
    y_val = keras.utils.to_categorical(validation.labels, NUM_CLASSES)
    started = time.perf_counter()
    history = fit_augmented(model, spec.augmentation or "uploads", data, y_train,
                             (as_model_input(validation), y_val), config)
    seconds = time.perf_counter() - started
    after = {"mnist": accuracy(model, mnist.validation), "uci": accuracy(model, uci_validation)}
    log.info("validation accuracy, %s -> %s: MNIST %.4f -> %.4f, UCI held out %.4f -> %.4f (%d digits)",
             start, NAME, before["mnist"], after["mnist"], before["uci"], after["uci"], len(uci_validation))

    card = publish_keras(
        model,
        name=NAME,
        experiment=experiment.id,
        architecture=spec.architecture,
        description=(f"{START_FROM} trained on for {epochs} more epochs on MNIST's writers and the UCI "
                     f"digits' ({len(uci_fit)} training digits x{UCI_REPEATS}), 'uploads' augmentations; "
                     f"held-out UCI {after['uci']:.1%} (was {before['uci']:.1%}), MNIST validation "
                     f"{after['mnist']:.2%} (was {before['mnist']:.2%})"),
        hyperparameters=Hyperparameters(
            hidden_units=spec.hidden_units, dropout_rate=spec.dropout_rate, noise_stddev=spec.noise_stddev,
            optimizer="adam", learning_rate=learning_rate, loss="categorical_crossentropy",
            batch_size=config.batch_size, epochs=epochs, validation_fraction=VALIDATION_FRACTION,
            augmentation=spec.augmentation),
        history=history_records(history),
        seconds=seconds,
        seed=config.seed,
        parity_inputs=parity_images(mnist, config.parity_images),
        test=mnist_test_split(data, experiment.split),
        store=run.store,
    )
    write_record(experiment, run.store)
    return [card]



def _latest_model_file(store: Path, name: str) -> Path:
    version = latest_version(store, name)
    if version is None:
        raise FileNotFoundError(f"{store} has no {name} to start from: train it first (--experiment uploads)")
    return version_dir(store, name, version) / MODEL_FILE
