"""Train one variant with the seed's protocol, export it, evaluate the export, publish it.

The seed's protocol: Adam at its default learning rate, categorical cross-entropy, batch 128,
100 epochs, no early stopping, the last 10% of the training images for validation, a fixed seed.
A variant with an augmentation recipe trains on a freshly augmented copy of the training images
every epoch (validated on the clean validation images, as the others); its epoch count is its own.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from digit_contract.card import DatasetInfo, EpochRecord, Hyperparameters, ModelCard
from digit_contract.inputs import NUM_CLASSES
from training.augment import augmenter
from training.data import VALIDATION_FRACTION, Mnist, RawSplit, as_model_input
from training.experiments import Experiment, ExperimentRun, experiment_of, write_record
from training.export import PARITY_MIN_IMAGES
from training.publish import TestSplit, history_records, publish_keras
from training.variants import VARIANTS_BY_NAME, VariantSpec, build_model

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

SEED_EPOCHS = 100


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = SEED_EPOCHS
    batch_size: int = 128
    seed: int = 1234
    learning_rate: float = 0.001  # Adam's default, as in the seed
    parity_images: int = PARITY_MIN_IMAGES
    augment_workers: int = min(2, os.cpu_count() or 1)
    """Processes generating augmented images (between epochs, while TensorFlow is idle)."""


def config_for(spec: VariantSpec, config: TrainingConfig, epochs: int | None = None) -> TrainingConfig:
    """`config` with the epoch count this variant trains for: `epochs` if given, else the variant's
    own (an extra variant's protocol), else the seed's."""
    return replace(config, epochs=epochs if epochs is not None else spec.epochs or SEED_EPOCHS)


def fit_variant(spec: VariantSpec, data: Mnist, config: TrainingConfig) -> tuple[keras.Model, list[EpochRecord], float]:
    """Build and train one variant; returns the model, its per-epoch history and the wall time."""
    import keras

    # Same seed for every variant: weight init, shuffling, dropout masks and noise all follow it.
    keras.utils.set_random_seed(config.seed)
    model = build_model(spec)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    x_train, x_val = as_model_input(data.train), as_model_input(data.validation)
    y_train = keras.utils.to_categorical(data.train.labels, NUM_CLASSES)
    y_val = keras.utils.to_categorical(data.validation.labels, NUM_CLASSES)
    started = time.perf_counter()
    if spec.augmentation is None:
        fitted = model.fit(
            x_train,
            y_train,
            batch_size=config.batch_size,
            epochs=config.epochs,
            validation_data=(x_val, y_val),
            shuffle=True,
            verbose=2,
        )
        h = fitted.history
    else:
        h = fit_augmented(model, spec.augmentation, data, y_train, (x_val, y_val), config)
    # The wall time includes generating the augmented images: it is part of this protocol's cost.
    seconds = time.perf_counter() - started
    return model, history_records(h), seconds


def fit_augmented(
    model: keras.Model,
    recipe: str,
    data: Mnist,
    y_train: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray],
    config: TrainingConfig,
) -> dict[str, list[float]]:
    """Train one epoch at a time, each on a new augmented copy of the training images."""
    history: dict[str, list[float]] = {}
    with augmenter(recipe, config.seed, config.augment_workers) as augment:
        upcoming = augment.start_epoch(data.train.images, 0)
        for epoch in range(config.epochs):
            waited = time.perf_counter()
            images = upcoming()
            log.info("epoch %d: %d augmented images (waited %.1f s)", epoch + 1, len(images), time.perf_counter() - waited)
            if epoch + 1 < config.epochs:
                # Generate the next epoch in the workers while TensorFlow fits this one.
                upcoming = augment.start_epoch(data.train.images, epoch + 1)
            # Our own seeded order (not Keras's shuffle), so an epoch's batches follow from the seed alone.
            order = np.random.default_rng((config.seed, epoch)).permutation(len(images))
            fitted = model.fit(
                as_model_input(RawSplit(images[order], data.train.labels[order])),
                y_train[order],
                batch_size=config.batch_size,
                initial_epoch=epoch,
                epochs=epoch + 1,
                validation_data=validation,
                shuffle=False,
                verbose=2,
            )
            for key, values in fitted.history.items():
                history.setdefault(key, []).extend(values)
    return history


def parity_images(data: Mnist, count: int = PARITY_MIN_IMAGES) -> np.ndarray:
    """The first `count` test images, topped up from validation and then training images when the
    test split is smaller (only the tests' small sample is): parity is about the graph, not labels."""
    pool = np.concatenate([as_model_input(split[:count]) for split in (data.test, data.validation, data.train)])
    if len(pool) < count:
        raise ValueError(f"export parity needs {count} images, the dataset has {len(pool)}")
    return pool[:count]


def mnist_test_split(data: Mnist, split: str, name: str = "mnist") -> TestSplit:
    """The test images of an MNIST-format dataset (`name`: mnist, or kmnist where seed 004 trains on it)
    as the MNIST models take them, with the dataset's card entry."""
    return TestSplit(
        inputs=as_model_input(data.test),
        labels=data.test.labels,
        dataset=DatasetInfo(
            name=name,
            split=split,
            file_sha256=data.file_sha256,
            train_samples=len(data.train),
            validation_samples=len(data.validation),
            test_samples=len(data.test),
        ),
    )


def train_and_publish(spec: VariantSpec, data: Mnist, config: TrainingConfig, store: Path) -> ModelCard:
    """Train, export, verify, evaluate and publish one variant as the next version in `store`."""
    experiment = experiment_of(spec.name)
    if experiment is None:
        raise ValueError(f"{spec.name}: no experiment in training/experiments.py declares this variant")
    log.info("training %s (%s) for %d epochs, seed %d", spec.name, spec.description, config.epochs, config.seed)
    model, history, seconds = fit_variant(spec, data, config)
    return publish_keras(
        model,
        name=spec.name,
        experiment=experiment.id,
        architecture=spec.architecture,
        description=spec.description,
        hyperparameters=Hyperparameters(
            hidden_units=spec.hidden_units,
            dropout_rate=spec.dropout_rate,
            noise_stddev=spec.noise_stddev,
            optimizer="adam",
            learning_rate=config.learning_rate,
            loss="categorical_crossentropy",
            batch_size=config.batch_size,
            epochs=config.epochs,
            validation_fraction=VALIDATION_FRACTION,
            augmentation=spec.augmentation,
        ),
        history=history,
        seconds=seconds,
        seed=config.seed,
        parity_inputs=parity_images(data, config.parity_images),
        test=mnist_test_split(data, experiment.split),
        store=store,
    )


def train_experiment(experiment: Experiment, run: ExperimentRun) -> list[ModelCard]:
    """Train the Keras variants of seed 000's experiments (`regularisation`, `uploads`)."""
    from training.data import load_mnist

    data = load_mnist(run.data_dir, download=run.download)
    config = TrainingConfig(seed=run.seed)
    cards = [
        train_and_publish(VARIANTS_BY_NAME[name], data, config_for(VARIANTS_BY_NAME[name], config, run.epochs), run.store)
        for name in run.variants or experiment.variants
    ]
    write_record(experiment, run.store)
    return cards
