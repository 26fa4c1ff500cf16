"""Train one variant with the seed's protocol, export it, evaluate the export, publish it.

The seed's protocol: Adam at its default learning rate, categorical cross-entropy, batch 128,
100 epochs, no early stopping, the last 10% of the training images for validation, a fixed seed.
A variant with an augmentation recipe trains on a freshly augmented copy of the training images
every epoch (validated on the clean validation images, as the others); its epoch count is its own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from service.card import (
    AveragedMetrics,
    ClassMetrics,
    DatasetInfo,
    EpochRecord,
    Hyperparameters,
    Misclassification,
    ModelCard,
    OnnxArtifact,
)
from service.digit_input import INPUT_NAME, NUM_CLASSES, OUTPUT_NAME
from service.model_store import CARD_FILE, MODEL_FILE, publish_version
from training.augment import augmenter
from training.data import VALIDATION_FRACTION, Mnist, RawSplit, as_model_input
from training.evaluate import evaluate_onnx
from training.export import PARITY_MIN_IMAGES, convert_to_onnx, verify_export
from training.variants import VariantSpec, build_model

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


_LIBRARIES = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy", "protobuf")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in _LIBRARIES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


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
        h = _fit_augmented(model, spec.augmentation, data, y_train, (x_val, y_val), config)
    # The wall time includes generating the augmented images: it is part of this protocol's cost.
    seconds = time.perf_counter() - started
    history = [
        EpochRecord(
            epoch=i + 1,
            loss=float(h["loss"][i]),
            accuracy=float(h["accuracy"][i]),
            val_loss=float(h["val_loss"][i]),
            val_accuracy=float(h["val_accuracy"][i]),
        )
        for i in range(config.epochs)
    ]
    return model, history, seconds


def _fit_augmented(
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


def parity_images(data: Mnist, count: int) -> np.ndarray:
    """The first `count` test images, topped up from validation and then training images when the
    test split is smaller (only the tests' small sample is): parity is about the graph, not labels."""
    pool = np.concatenate([as_model_input(split[:count]) for split in (data.test, data.validation, data.train)])
    if len(pool) < count:
        raise ValueError(f"export parity needs {count} images, the dataset has {len(pool)}")
    return pool[:count]


def export_and_card(
    spec: VariantSpec,
    model: keras.Model,
    history: list[EpochRecord],
    seconds: float,
    data: Mnist,
    config: TrainingConfig,
    directory: Path,
    version: int,
) -> ModelCard:
    """Write model.onnx and card.json into `directory` (a staging directory)."""
    onnx_path = directory / MODEL_FILE
    convert_to_onnx(model, onnx_path)
    x_test = as_model_input(data.test)
    report = verify_export(model, onnx_path, parity_images(data, config.parity_images))
    metrics = evaluate_onnx(onnx_path, x_test, data.test.labels)
    payload = onnx_path.read_bytes()
    card = ModelCard(
        name=spec.name,
        version=version,
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
        parameter_count=int(model.count_params()),
        seed=config.seed,
        history=history,
        training_seconds=round(seconds, 2),
        test_accuracy=metrics.accuracy,
        test_loss=metrics.loss,
        test_errors=metrics.errors,
        per_class=[
            ClassMetrics(
                digit=d,
                precision=metrics.precision[d],
                recall=metrics.recall[d],
                f1=metrics.f1[d],
                support=metrics.support[d],
            )
            for d in range(NUM_CLASSES)
        ],
        macro_avg=AveragedMetrics(precision=metrics.macro_precision, recall=metrics.macro_recall, f1=metrics.macro_f1),
        confusion_matrix=metrics.confusion_matrix,
        misclassified=[
            Misclassification(index=i, label=t, predicted=p, confidence=c)
            for i, t, p, c in zip(
                metrics.misclassified_indices,
                metrics.misclassified_labels,
                metrics.misclassified_predicted,
                metrics.misclassified_confidence,
                strict=True,
            )
        ],
        onnx=OnnxArtifact(
            file=MODEL_FILE,
            sha256=hashlib.sha256(payload).hexdigest(),
            size_bytes=len(payload),
            opset=report.opset,
            input_name=INPUT_NAME,
            output_name=OUTPUT_NAME,
            max_abs_diff_vs_keras=report.max_abs_diff,
        ),
        dataset=DatasetInfo(
            file_sha256=data.file_sha256,
            train_samples=len(data.train),
            validation_samples=len(data.validation),
            test_samples=len(data.test),
        ),
        library_versions=library_versions(),
        created_at=datetime.now(UTC).replace(microsecond=0),
    )
    card.write(directory / CARD_FILE)
    return card


def train_and_publish(spec: VariantSpec, data: Mnist, config: TrainingConfig, store: Path) -> ModelCard:
    """Train, export, verify, evaluate and publish one variant as the next version in `store`."""
    log.info("training %s (%s) for %d epochs, seed %d", spec.name, spec.description, config.epochs, config.seed)
    model, history, seconds = fit_variant(spec, data, config)
    written: list[ModelCard] = []

    def build(staging: Path, version: int) -> None:
        written.append(export_and_card(spec, model, history, seconds, data, config, staging, version))

    publish_version(store, spec.name, build)
    card = written[0]
    log.info(
        "%s v%d: test accuracy %.4f (%d errors), loss %.4f, %.0f s",
        spec.name,
        card.version,
        card.test_accuracy,
        card.test_errors,
        card.test_loss,
        seconds,
    )
    return card
