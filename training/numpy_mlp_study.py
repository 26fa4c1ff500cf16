"""Seed 004: an MLP written from scratch in NumPy against a Keras CNN, with sensitivity studies.

The seed trained on Kuzushiji-MNIST; these machines cannot download it, so the experiment trains
on MNIST (same format, same sizes) unless KMNIST is asked for and present: `--option
dataset=kmnist` (files from `--data-dir`, `KMNIST_DIR`, the cache or the authors' site; see
training/kmnist.py), or `KMNIST_DIR` set in the environment. Split as seed 000's: the first
54,000 training images train, the last 6,000 validate; the 10,000 test images score the
published ONNX files only. Every study is scored on the validation images.

- `numpy_mlp`: training/numpy_mlp.py (one hidden layer of 256 ReLU units, mini-batch gradient
  descent with momentum, standardised inputs), exported by training/onnx_graph.py.
- `cnn3`: the seed's Keras CNN: 3 x (Conv 3x3 + ReLU + MaxPool 2x2), Flatten, Dense(256) + ReLU,
  Dropout(0.5), Dense(10) + softmax (two fully connected layers); Adam.
- Studies, each varying one knob of the MLP with the others held at the study baseline: depth
  (0, 1, 2 hidden layers), width, activation, L2 strength, batch size, training-set size; and of
  the CNN: training-set size (sample efficiency against the MLP) and number of filters.

Options (`--option key=value`): `dataset=mnist|kmnist`; `studies=all|none|<names>` (comma-separated
study names, e.g. mlp-depth,cnn-filters); `grids=seed|smoke` (smoke: two values per study and
small sizes, for tests); `study_epochs=N` (the MLP studies' epochs, default 10) and
`cnn_study_epochs=N` (default 2); `threads=N` (default 1 or TF_NUM_INTRAOP_THREADS).
`--epochs N` sets both published models' epochs. `--variants numpy_mlp` (or cnn3) trains one
family and its studies and keeps the other family's studies already in the record.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from digit_contract.card import EpochRecord, Hyperparameters, ModelCard
from digit_contract.inputs import MNIST_INPUT, NUM_CLASSES
from digit_contract.records import SensitivityStudy, StudyPoint, read_experiments
from training.data import VALIDATION_FRACTION, Mnist, RawSplit, as_model_input
from training.experiments import Experiment, ExperimentRun, limit_tensorflow_threads, write_record
from training.export import verify_onnx
from training.numpy_mlp import EpochStats, MlpConfig, MlpParameters, train_mlp
from training.onnx_graph import write_mlp_onnx
from training.publish import TrainedModel, history_records, publish, publish_keras
from training.trainer import mnist_test_split, parity_images

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

MLP_NAME = "numpy_mlp"
CNN_NAME = "cnn3"

PUBLISHED_MLP = MlpConfig(hidden=(256,), activation="relu", l2=0.0, learning_rate=0.01, momentum=0.9,
                          batch_size=64, epochs=20)
"""The served NumPy MLP: the seed's best architecture (one hidden layer of 256 units)."""


@dataclass(frozen=True)
class CnnConfig:
    filters: int = 32
    dense_units: int = 256
    dropout: float = 0.5
    learning_rate: float = 0.001
    batch_size: int = 128
    epochs: int = 5
    seed: int = 1234


PUBLISHED_CNN = CnnConfig()

MLP_STUDY_EPOCHS = 10
CNN_STUDY_EPOCHS = 2
FILTER_STUDY_IMAGES = 10_000
"""The filter study trains on the first 10,000 training images (a 64-filter CNN is slow on one core)."""
SIZE_FLOOR_IMAGES = 10_000
"""In the training-size studies every size sees at least the study's epochs x 10,000 images, so
the smallest sets are not judged after a handful of updates."""


# --- Data -----------------------------------------------------------------------------------------


def dataset_choice(run: ExperimentRun) -> str:
    from training.kmnist import KMNIST_DIR_ENV

    choice = run.options.get("dataset") or ("kmnist" if os.environ.get(KMNIST_DIR_ENV) else "mnist")
    if choice not in ("mnist", "kmnist"):
        raise ValueError(f"dataset must be mnist or kmnist, got {choice!r}")
    return choice


def load_data(run: ExperimentRun, dataset: str) -> Mnist:
    if dataset == "kmnist":
        from training.kmnist import load_kmnist

        return load_kmnist(run.data_dir, download=run.download)
    from training.data import load_mnist

    return load_mnist(run.data_dir, download=run.download)


def split_text(experiment: Experiment, dataset: str) -> str:
    if dataset == "kmnist":
        return ("Kuzushiji-MNIST, as the seed: train: the first 54,000 of its 60,000 training images; validation: "
                "the last 6,000; test: the 10,000 test images, for the final evaluation only")
    return experiment.split


# --- The CNN --------------------------------------------------------------------------------------


def build_cnn3(config: CnnConfig) -> keras.Model:
    """3 x (Conv2D(filters, 3x3, same, ReLU) -> MaxPool 2x2) -> Flatten -> Dense(units, ReLU) -> Dropout
    -> Dense(10, softmax), on MNIST's [N, 28, 28, 1] (28 -> 14 -> 7 -> 3)."""
    import keras

    layers: list[Any] = [keras.Input(MNIST_INPUT.sample_shape)]
    for _ in range(3):
        layers += [keras.layers.Conv2D(config.filters, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(2)]
    layers += [keras.layers.Flatten(), keras.layers.Dense(config.dense_units, activation="relu")]
    if config.dropout > 0:
        layers.append(keras.layers.Dropout(config.dropout))
    layers.append(keras.layers.Dense(NUM_CLASSES, activation="softmax"))
    return keras.Sequential(layers, name=CNN_NAME)


@dataclass(frozen=True)
class CnnRun:
    model: keras.Model
    history: list[EpochRecord]
    seconds: float


def fit_cnn(train: RawSplit, validation: RawSplit, config: CnnConfig) -> CnnRun:
    import keras

    keras.backend.clear_session()  # a study builds many models in one process
    keras.utils.set_random_seed(config.seed)
    model = build_cnn3(config)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    started = time.perf_counter()
    fitted = model.fit(
        as_model_input(train),
        train.labels.astype(np.int64),
        validation_data=(as_model_input(validation), validation.labels.astype(np.int64)),
        batch_size=config.batch_size,
        epochs=config.epochs,
        shuffle=True,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    history = history_records(fitted.history)
    log.info("cnn3 %d filters, %d images, %d epochs: val accuracy %.4f in %.0f s", config.filters, len(train),
             config.epochs, history[-1].val_accuracy, seconds)
    return CnnRun(model, history, seconds)


# --- The NumPy MLP --------------------------------------------------------------------------------


def fit_mlp(train: RawSplit, validation: RawSplit, config: MlpConfig, *, every_epoch: bool = True) -> tuple[MlpParameters, list[EpochRecord], float]:
    def progress(stats: EpochStats) -> None:
        log.info("numpy mlp %s epoch %d: loss %.4f, val accuracy %.4f (%.1f s)", config.hidden, stats.epoch,
                 stats.loss, stats.val_accuracy or 0.0, stats.seconds)

    result = train_mlp(
        as_model_input(train),
        train.labels,
        config,
        validation=(as_model_input(validation), validation.labels),
        on_epoch=progress,
        train_accuracy_every_epoch=every_epoch,
    )
    history = [
        EpochRecord(epoch=s.epoch, loss=float(s.loss) if np.isfinite(s.loss) else 1e30, accuracy=s.accuracy,
                    val_loss=s.val_loss if s.val_loss is not None and np.isfinite(s.val_loss) else None,
                    val_accuracy=s.val_accuracy)
        for s in result.history
    ]
    return result.parameters, history, result.seconds


# --- Studies --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Study:
    """One knob, the values it takes, and how a value changes the study's baseline configuration."""

    name: str
    title: str
    parameter: str
    model: str
    values: tuple[Any, ...]
    smoke_values: tuple[Any, ...]


MLP_STUDIES = (
    Study("mlp-depth", "NumPy MLP: number of hidden layers (256 units each; 0 is softmax regression)",
          "hidden_layers", MLP_NAME, (0, 1, 2), (0, 1)),
    Study("mlp-width", "NumPy MLP: units of the one hidden layer", "hidden_units", MLP_NAME,
          (32, 64, 128, 256, 512), (16, 32)),
    Study("mlp-activation", "NumPy MLP: activation of the hidden layer", "activation", MLP_NAME,
          ("relu", "leaky_relu", "sigmoid"), ("relu", "sigmoid")),
    Study("mlp-l2", "NumPy MLP: L2 strength (loss + l2/2 * sum of squared weights)", "l2", MLP_NAME,
          (0.0, 0.0001, 0.001, 0.01, 0.1), (0.0, 0.1)),
    Study("mlp-batch-size", "NumPy MLP: mini-batch size (same epochs and learning rate)", "batch_size", MLP_NAME,
          (16, 32, 64, 128, 256), (32, 128)),
    Study("mlp-train-size", "NumPy MLP: training images (sample efficiency)", "train_samples", MLP_NAME,
          (1_000, 3_000, 10_000, 30_000, 54_000), (500, 1_000)),
)
CNN_STUDIES = (
    Study("cnn-train-size", "CNN: training images (sample efficiency, against the MLP's)", "train_samples", CNN_NAME,
          (1_000, 3_000, 10_000, 30_000, 54_000), (500, 1_000)),
    Study("cnn-filters", f"CNN: filters of each convolution (on the first {FILTER_STUDY_IMAGES:,} training images)",
          "filters", CNN_NAME, (8, 16, 32, 64), (4, 8)),
)
STUDIES = {s.name: s for s in (*MLP_STUDIES, *CNN_STUDIES)}


def study_mlp_config(study: Study, value: Any, base: MlpConfig) -> MlpConfig:
    if study.parameter == "hidden_layers":
        return replace(base, hidden=(256,) * int(value))
    if study.parameter == "hidden_units":
        return replace(base, hidden=(int(value),))
    if study.parameter == "activation":
        return replace(base, activation=value)
    if study.parameter == "l2":
        return replace(base, l2=float(value))
    if study.parameter == "batch_size":
        return replace(base, batch_size=int(value))
    if study.parameter == "train_samples":
        return base
    raise ValueError(f"{study.name}: no MLP knob {study.parameter}")


def size_epochs(samples: int, base_epochs: int, available: int) -> int:
    """Epochs for a training subset: the study's epochs, or more so it sees SIZE_FLOOR_IMAGES x epochs
    images (or as many as the whole training split in that many epochs, on a small dataset)."""
    return max(base_epochs, math.ceil(base_epochs * min(SIZE_FLOOR_IMAGES, available) / samples))


def _fixed(config: MlpConfig | CnnConfig) -> dict[str, Any]:
    fixed: dict[str, Any] = {}
    for key, value in vars(config).items():
        fixed[key] = list(value) if isinstance(value, tuple) else value
    return fixed


def run_mlp_study(study: Study, data: Mnist, base: MlpConfig, values: Sequence[Any]) -> SensitivityStudy:
    started = time.perf_counter()
    points = []
    epochs_used = []
    for value in values:
        config = study_mlp_config(study, value, base)
        train = data.train
        if study.parameter == "train_samples":
            value = min(int(value), len(data.train))
            train = data.train[:value]
            config = replace(config, epochs=size_epochs(value, base.epochs, len(data.train)))
        epochs_used.append(config.epochs)
        _, history, seconds = fit_mlp(train, data.validation, config, every_epoch=False)
        points.append(StudyPoint(value=value, validation_accuracy=history[-1].val_accuracy,
                                 train_accuracy=history[-1].accuracy, seconds=round(seconds, 2)))
        log.info("%s %s=%s: val accuracy %s (%.0f s)", study.name, study.parameter, value, history[-1].val_accuracy, seconds)
    fixed = {k: v for k, v in _fixed(base).items() if k != study.parameter}
    if study.parameter == "train_samples":
        fixed["epochs"] = epochs_used
    return SensitivityStudy(name=study.name, title=study.title, parameter=study.parameter, model=study.model,
                            fixed=fixed, points=points, seconds=round(time.perf_counter() - started, 2))


def run_cnn_study(study: Study, data: Mnist, base: CnnConfig, values: Sequence[Any]) -> SensitivityStudy:
    started = time.perf_counter()
    points = []
    epochs_used = []
    for value in values:
        if study.parameter == "train_samples":
            value = min(int(value), len(data.train))
            train, config = data.train[:value], replace(base, epochs=size_epochs(value, base.epochs, len(data.train)))
        elif study.parameter == "filters":
            train, config = data.train[:FILTER_STUDY_IMAGES], replace(base, filters=int(value))
        else:
            raise ValueError(f"{study.name}: no CNN knob {study.parameter}")
        epochs_used.append(config.epochs)
        run = fit_cnn(train, data.validation, config)
        # Keras's training accuracy is of the epoch's batches with Dropout active: not recorded as one.
        points.append(StudyPoint(value=value, validation_accuracy=run.history[-1].val_accuracy, seconds=round(run.seconds, 2)))
    fixed = {k: v for k, v in _fixed(base).items() if k != study.parameter}
    if study.parameter == "train_samples":
        fixed["epochs"] = epochs_used
    else:
        fixed["train_samples"] = min(FILTER_STUDY_IMAGES, len(data.train))
    return SensitivityStudy(name=study.name, title=study.title, parameter=study.parameter, model=study.model,
                            fixed=fixed, points=points, seconds=round(time.perf_counter() - started, 2))


# --- Publication ----------------------------------------------------------------------------------


def _data_phrase(dataset: str) -> str:
    return "Kuzushiji-MNIST, as the seed" if dataset == "kmnist" else "MNIST (the seed used Kuzushiji-MNIST, not reachable here)"


def publish_mlp(experiment: Experiment, data: Mnist, dataset: str, split: str, config: MlpConfig, store: Path,
                workdir: Path) -> ModelCard:
    parameters, history, seconds = fit_mlp(data.train, data.validation, config)
    onnx_path = workdir / f"{MLP_NAME}.onnx"
    write_mlp_onnx(parameters, onnx_path, MNIST_INPUT, MLP_NAME)
    report = verify_onnx(onnx_path, parameters.probabilities, parity_images(data), MNIST_INPUT)
    widths = "-".join(map(str, config.hidden)) or "no hidden layer"
    trained = TrainedModel(
        name=MLP_NAME,
        experiment=experiment.id,
        architecture="mlp",
        framework="numpy",
        input=MNIST_INPUT,
        description=f"MLP written in NumPy ({widths}, {config.activation}), mini-batch gradient descent with momentum "
        f"{config.momentum:g}, standardised inputs, trained on {_data_phrase(dataset)}; ONNX built with onnx.helper",
        hyperparameters=Hyperparameters(
            hidden_units=config.hidden[0] if config.hidden else None,
            dropout_rate=0.0,
            noise_stddev=0.0,
            optimizer="sgd-momentum",
            learning_rate=config.learning_rate,
            loss="softmax_cross_entropy",
            batch_size=config.batch_size,
            epochs=config.epochs,
            validation_fraction=VALIDATION_FRACTION,
            settings={
                "hidden_layers": list(config.hidden),
                "activation": config.activation,
                "l2": config.l2,
                "momentum": config.momentum,
                "initialisation": "He normal (ReLU layers), Glorot normal (sigmoid and output layers)",
                "standardisation": "per-pixel mean and standard deviation of the training images (1 where constant)",
                "dataset": dataset,
            },
        ),
        parameter_count=parameters.parameter_count,
        seed=config.seed,
        history=history,
        training_seconds=seconds,
        onnx_file=onnx_path,
        export=report,
    )
    return publish(trained, mnist_test_split(data, split, dataset), store)


def publish_cnn(experiment: Experiment, data: Mnist, dataset: str, split: str, config: CnnConfig, store: Path) -> ModelCard:
    run = fit_cnn(data.train, data.validation, config)
    return publish_keras(
        run.model,
        name=CNN_NAME,
        experiment=experiment.id,
        architecture="cnn",
        description=f"The seed's Keras CNN: 3 x (Conv 3x3, {config.filters} filters + MaxPool), Dense({config.dense_units}), "
        f"Dropout {config.dropout:g}, softmax; trained on {_data_phrase(dataset)}",
        hyperparameters=Hyperparameters(
            hidden_units=None,
            dropout_rate=config.dropout,
            noise_stddev=0.0,
            optimizer="adam",
            learning_rate=config.learning_rate,
            loss="sparse_categorical_crossentropy",
            batch_size=config.batch_size,
            epochs=config.epochs,
            validation_fraction=VALIDATION_FRACTION,
            settings={"conv_blocks": 3, "filters": config.filters, "kernel": 3, "padding": "same", "pool": 2,
                      "dense_units": config.dense_units, "dataset": dataset},
        ),
        history=run.history,
        seconds=run.seconds,
        seed=config.seed,
        parity_inputs=parity_images(data),
        test=mnist_test_split(data, split, dataset),
        store=store,
    )


# --- The experiment -------------------------------------------------------------------------------






def _chosen_studies(run: ExperimentRun, variants: Sequence[str]) -> list[Study]:
    choice = run.options.get("studies", "all")
    if choice == "none":
        return []
    names = list(STUDIES) if choice == "all" else [n.strip() for n in choice.split(",") if n.strip()]
    unknown = [n for n in names if n not in STUDIES]
    if unknown:
        raise ValueError(f"unknown studies {unknown}; choose from {', '.join(STUDIES)}")
    return [STUDIES[n] for n in names if STUDIES[n].model in variants]


def train(experiment: Experiment, run: ExperimentRun) -> list[ModelCard]:
    """Train the variants asked for and their families' studies; publish; write the record."""
    from threadpoolctl import threadpool_limits

    dataset = dataset_choice(run)
    data = load_data(run, dataset)
    split = split_text(experiment, dataset)
    variants = list(run.variants or experiment.variants)
    smoke = run.options.get("grids", "seed") == "smoke"
    mlp_base = replace(PUBLISHED_MLP, seed=run.seed, epochs=int(run.options.get("study_epochs", MLP_STUDY_EPOCHS)))
    cnn_base = replace(PUBLISHED_CNN, seed=run.seed, epochs=int(run.options.get("cnn_study_epochs", CNN_STUDY_EPOCHS)))
    threads = run.threads()
    log.info("numpy-mlp on %s (%d train, %d validation, %d test), %d thread(s)", dataset, len(data.train),
             len(data.validation), len(data.test), threads)
    cards: list[ModelCard] = []
    studies: list[SensitivityStudy] = []
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="seed004-") as tmp, threadpool_limits(limits=threads):
        workdir = Path(tmp)
        for study in _chosen_studies(run, variants):
            values = study.smoke_values if smoke else study.values
            if study.model == MLP_NAME:
                studies.append(run_mlp_study(study, data, mlp_base, values))
            else:
                limit_tensorflow_threads(threads)
                studies.append(run_cnn_study(study, data, cnn_base, values))
        if MLP_NAME in variants:
            config = replace(PUBLISHED_MLP, seed=run.seed, epochs=run.epochs or PUBLISHED_MLP.epochs)
            cards.append(publish_mlp(experiment, data, dataset, split, config, run.store, workdir))
        if CNN_NAME in variants:
            limit_tensorflow_threads(threads)
            cnn_config = replace(PUBLISHED_CNN, seed=run.seed, epochs=run.epochs or PUBLISHED_CNN.epochs)
            cards.append(publish_cnn(experiment, data, dataset, split, cnn_config, run.store))
    for family in {s.model for s in studies}:
        spent = sum(s.seconds for s in studies if s.model == family)
        notes[family] = (f"{family}: its studies took {spent:.0f} s together on {threads} thread(s) of a 2-core machine "
                         "shared with other trainings (wall time)")
    write_record(
        replace(experiment, dataset=dataset, split=split),
        run.store,
        studies=_merged_studies(run.store, experiment.id, studies, variants),
        notes=[*experiment.notes, *_merged_notes(run.store, experiment.id, notes, variants)],
    )
    return cards


def _merged_studies(store: Path, experiment_id: str, studies: list[SensitivityStudy], variants: Sequence[str]) -> list[SensitivityStudy]:
    """This run's studies, plus the recorded ones of the families it did not train (a --variants run)."""
    previous = read_experiments(store).get(experiment_id)
    kept = [s for s in previous.studies if s.model not in variants] if previous else []
    order = list(STUDIES)
    return sorted([*kept, *studies], key=lambda s: order.index(s.name) if s.name in order else len(order))


def _merged_notes(store: Path, experiment_id: str, notes: dict[str, str], variants: Sequence[str]) -> list[str]:
    previous = read_experiments(store).get(experiment_id)
    others: dict[str, str] = {}
    if previous:
        for note in previous.notes:
            family = note.partition(":")[0]
            if family in (MLP_NAME, CNN_NAME) and family not in variants:
                others[family] = note
    merged = {**others, **notes}
    return [merged[f] for f in (MLP_NAME, CNN_NAME) if f in merged]

