"""Seed 001: the universal workflow of machine learning (Deep Learning with Python, 4.5), dense only.

Three models on the 50,000 / 10,000 split (training/dense.py), Dense and Dropout layers only:

- `dense_baseline`: Dense(64, relu) -> Dense(10, softmax), RMSprop, 20 epochs, batch 128 (the seed's);
- `dense_large`: Dense(256) -> Dense(256), RMSprop, 20 epochs, batch 128: enough capacity to
  overfit, which the workflow wants to see before it regularises;
- `dense_tuned`: 2 x Dense(1024) with Dropout, trained on a fresh elastic + affine distortion of
  the 50,000 training digits every epoch (Simard, Steinkraus & Platt 2003: an MLP with elastic
  distortions reached 99.3%), Adam with an exponentially decaying learning rate. The tuning step
  trains one candidate per dropout rate (`TUNED_DROPOUTS`) and keeps the one with the highest mean
  validation accuracy over its last epochs; the candidates are the record's trials. The test set
  is only read by the publication of the chosen model's ONNX file.

The distortions are drawn with cv2 in a spawned worker process, one epoch ahead, while TensorFlow
fits the current epoch. Every image's draw follows from (seed, epoch, chunk), whatever the workers.

Options (`--option key=value`): `tuned_epochs` (default TUNED_EPOCHS), `tuned_dropouts` (comma-separated
candidate rates, default TUNED_DROPOUTS), `augment_workers` (default 1; 0 generates in this process),
`threads` (TensorFlow threads, default 1).
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np
import numpy.typing as npt

from digit_contract.card import EpochRecord, Hyperparameters, ModelCard
from digit_contract.inputs import IMAGE_SIDE
from digit_contract.records import SearchTrial
from training.data import RawSplit, as_model_input
from training.dense import (
    VALIDATION_SHARE,
    DenseSplit,
    build_dense,
    export_and_publish,
    latest_card,
    load_dense_split,
    one_hot,
    overfitting_epoch,
)
from training.experiments import Experiment, ExperimentRun, limit_tensorflow_threads, write_record
from training.publish import history_records

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

SEED_EPOCHS = 20
SEED_BATCH = 128
TUNED_EPOCHS = 70
TUNED_DROPOUTS = (0.2,)
"""One candidate by default: on the shared 2-core machine an epoch of dense_tuned takes ~35 s with
the other trainings running, so a second candidate would double the ~45 minutes. Give more rates
with `--option tuned_dropouts=0.2,0.35` where there is time; the choice among them is by validation."""
SELECTION_EPOCHS = 5
"""A tuned candidate's score: its mean validation accuracy over its last SELECTION_EPOCHS epochs
(one epoch's figure on 10,000 images moves by ~0.1% from epoch to epoch)."""
CHUNK = 2_000
"""Images per random stream: fixed, so an epoch's images do not depend on the number of workers."""


@dataclass(frozen=True)
class Distortion:
    """How each training digit is distorted (28 px scale; angles in degrees)."""

    elastic_alpha: float = 34.0
    """Simard et al.: displacement fields of uniform(-1, 1) noise smoothed by a Gaussian of
    `elastic_sigma` px and scaled by alpha (34 in the paper)."""
    elastic_sigma: float = 4.0
    rotation_deg: float = 10.0
    scale: float = 0.10
    shear: float = 0.15
    translate: float = 1.0
    clean_fraction: float = 0.1
    """Share of each epoch's digits left as MNIST drew them."""


DISTORTION = Distortion()


@dataclass(frozen=True)
class DenseVariant:
    name: str
    description: str
    widths: tuple[int, ...]
    optimizer: str
    learning_rate: float
    epochs: int
    batch_size: int = SEED_BATCH
    dropout: float = 0.0
    final_learning_rate: float | None = None
    """Exponential decay per epoch down to this rate at the last epoch; None: constant."""
    distortion: Distortion | None = None


VARIANTS: dict[str, DenseVariant] = {
    v.name: v
    for v in (
        DenseVariant(
            name="dense_baseline",
            description="Seed 001 baseline: Dense(64, relu) -> Dense(10, softmax), RMSprop, 20 epochs",
            widths=(64,),
            optimizer="rmsprop",
            learning_rate=0.001,
            epochs=SEED_EPOCHS,
        ),
        DenseVariant(
            name="dense_large",
            description="Seed 001 larger model, overfits on purpose: Dense(256) -> Dense(256), RMSprop, 20 epochs",
            widths=(256, 256),
            optimizer="rmsprop",
            learning_rate=0.001,
            epochs=SEED_EPOCHS,
        ),
        DenseVariant(
            name="dense_tuned",
            description="Seed 001 regularised model: 2 x Dense(1024, relu) + Dropout, elastic and affine "
            "distortions of the training digits every epoch, Adam with a decaying learning rate",
            widths=(1024, 1024),
            optimizer="adam",
            learning_rate=0.001,
            final_learning_rate=0.00003,
            epochs=TUNED_EPOCHS,
            dropout=TUNED_DROPOUTS[0],
            distortion=DISTORTION,
        ),
    )
}


# -- distortions -----------------------------------------------------------------------------


def distort_digit(rng: np.random.Generator, image: npt.NDArray[np.uint8], d: Distortion) -> npt.NDArray[np.uint8]:
    """One 28x28 digit under a random affine map composed with a smooth random displacement field."""
    side = IMAGE_SIDE
    centre = (side - 1) / 2.0
    angle = math.radians(rng.uniform(-d.rotation_deg, d.rotation_deg))
    scale = 1.0 + rng.uniform(-d.scale, d.scale)
    shear = rng.uniform(-d.shear, d.shear)
    tx, ty = rng.uniform(-d.translate, d.translate, 2)
    # Inverse map (output pixel -> source pixel): rotate, shear and scale about the centre.
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32)
    u, v = xs - centre - tx, ys - centre - ty
    map_x = cos * u - sin * v + shear * v + centre
    map_y = sin * u + cos * v + centre
    for target in (map_x, map_y):
        field = rng.uniform(-1.0, 1.0, (side, side)).astype(np.float32)
        target += cv2.GaussianBlur(field, (0, 0), d.elastic_sigma) * np.float32(d.elastic_alpha)
    out = cv2.remap(image.astype(np.float32), map_x.astype(np.float32), map_y.astype(np.float32),
                    cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return np.asarray(np.clip(np.rint(out), 0, 255), dtype=np.uint8)


def distort_chunk(images: npt.NDArray[np.uint8], d: Distortion, entropy: tuple[int, ...]) -> npt.NDArray[np.uint8]:
    """Distort one chunk of digits from its own random stream."""
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    clean = rng.random(len(images)) < d.clean_fraction
    return np.stack([image if keep else distort_digit(rng, image, d) for image, keep in zip(images, clean, strict=True)])


def _chunk_task(args: tuple[npt.NDArray[np.uint8], Distortion, tuple[int, ...]]) -> npt.NDArray[np.uint8]:
    return distort_chunk(*args)


class Distorter:
    """Each epoch's distorted copy of the training digits, generated one epoch ahead in workers."""

    def __init__(self, d: Distortion, seed: int, workers: int) -> None:
        self.d, self.seed = d, seed
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) if workers > 0 else None

    def __enter__(self) -> Distorter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def start_epoch(self, images: npt.NDArray[np.uint8], epoch: int) -> Callable[[], npt.NDArray[np.uint8]]:
        """Begin an epoch's distortions; the returned function waits for them."""
        tasks = [(images[i : i + CHUNK], self.d, (self.seed, epoch, i // CHUNK)) for i in range(0, len(images), CHUNK)]
        if self._pool is None:
            done = np.concatenate([_chunk_task(task) for task in tasks])
            return lambda: done
        futures = [self._pool.submit(_chunk_task, task) for task in tasks]
        return lambda: np.concatenate([f.result() for f in futures])


# -- training --------------------------------------------------------------------------------


def _optimizer(variant: DenseVariant) -> keras.optimizers.Optimizer:
    import keras

    if variant.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=variant.learning_rate)
    return keras.optimizers.Adam(learning_rate=variant.learning_rate)


def learning_rate_at(variant: DenseVariant, epoch: int, epochs: int) -> float:
    """The rate of epoch `epoch` (0-based) of `epochs`: geometric from the initial to the final rate."""
    if variant.final_learning_rate is None or epochs <= 1:
        return variant.learning_rate
    ratio = variant.final_learning_rate / variant.learning_rate
    return float(variant.learning_rate * ratio ** (epoch / (epochs - 1)))


def fit_dense(
    variant: DenseVariant, split: DenseSplit, epochs: int, seed: int, workers: int
) -> tuple[keras.Model, list[EpochRecord], float]:
    """Train one variant; returns the model, its per-epoch history and the wall time (augmentation included)."""
    import keras

    keras.utils.set_random_seed(seed)
    model = build_dense(variant.widths, dropout=variant.dropout, name=variant.name)
    model.compile(optimizer=_optimizer(variant), loss="categorical_crossentropy", metrics=["accuracy"])
    x_val, y_val = as_model_input(split.validation), one_hot(split.validation.labels)
    y_train = one_hot(split.train.labels)
    history: dict[str, list[float]] = {}
    started = time.perf_counter()
    if variant.distortion is None:
        fitted = model.fit(as_model_input(split.train), y_train, batch_size=variant.batch_size, epochs=epochs,
                           validation_data=(x_val, y_val), shuffle=True, verbose=2)
        history = fitted.history
    else:
        with Distorter(variant.distortion, seed, workers) as distorter:
            upcoming = distorter.start_epoch(split.train.images, 0)
            for epoch in range(epochs):
                waited = time.perf_counter()
                images = upcoming()
                wait = time.perf_counter() - waited
                if epoch + 1 < epochs:
                    upcoming = distorter.start_epoch(split.train.images, epoch + 1)
                rate = learning_rate_at(variant, epoch, epochs)
                model.optimizer.learning_rate.assign(rate)
                order = np.random.default_rng((seed, epoch)).permutation(len(images))
                fitted = model.fit(as_model_input(RawSplit(images[order], split.train.labels[order])), y_train[order],
                                   batch_size=variant.batch_size, initial_epoch=epoch, epochs=epoch + 1,
                                   validation_data=(x_val, y_val), shuffle=False, verbose=0)
                for key, values in fitted.history.items():
                    history.setdefault(key, []).extend(values)
                log.info("%s epoch %d/%d: lr %.2e, loss %.4f acc %.4f, val_loss %.4f val_acc %.4f "
                         "(waited %.1f s for distortions, %.0f s so far)", variant.name, epoch + 1, epochs, rate,
                         history["loss"][-1], history["accuracy"][-1], history["val_loss"][-1],
                         history["val_accuracy"][-1], wait, time.perf_counter() - started)
    return model, history_records(history), time.perf_counter() - started


def hyperparameters(variant: DenseVariant, epochs: int) -> Hyperparameters:
    settings: dict[str, object] = {
        "hidden_layers": list(variant.widths),
        "activation": "relu",
        "batch_normalization": False,
        "train_images": 50_000,
        "validation_images": 10_000,
    }
    if variant.final_learning_rate is not None:
        settings["learning_rate_schedule"] = "exponential per epoch"
        settings["final_learning_rate"] = variant.final_learning_rate
    if variant.distortion is not None:
        settings.update({f"distortion_{k}": v for k, v in asdict(variant.distortion).items()})
    return Hyperparameters.model_validate({
        "hidden_units": variant.widths[0],
        "dropout_rate": variant.dropout,
        "noise_stddev": 0.0,
        "optimizer": variant.optimizer,
        "learning_rate": variant.learning_rate,
        "loss": "categorical_crossentropy",
        "batch_size": variant.batch_size,
        "epochs": epochs,
        "validation_fraction": round(VALIDATION_SHARE, 6),
        "augmentation": "elastic-affine" if variant.distortion is not None else None,
        "early_stopping": False,
        "settings": settings,
    })


def train(experiment: Experiment, run: ExperimentRun) -> list[ModelCard]:
    """Train the universal-workflow models, publish them, and write the experiment's record."""
    limit_tensorflow_threads(run.threads())
    split = load_dense_split(run)
    workers = int(run.options.get("augment_workers", "1"))
    cards = []
    trials: list[SearchTrial] = []
    for name in run.variants or experiment.variants:
        variant = VARIANTS[name]
        if variant.distortion is None:
            epochs = run.epochs or variant.epochs
            log.info("training %s for %d epochs on %d images (validation %d)", name, epochs, len(split.train),
                     len(split.validation))
            model, history, seconds = fit_dense(variant, split, epochs, run.seed, workers)
        else:
            epochs = run.epochs or int(run.options.get("tuned_epochs", TUNED_EPOCHS))
            dropouts = [float(r) for r in run.options.get("tuned_dropouts", ",".join(map(str, TUNED_DROPOUTS))).split(",")]
            variant, model, history, seconds, trials = tune(variant, dropouts, split, epochs, run.seed, workers)
        cards.append(export_and_publish(
            model, name=name, experiment=experiment, description=variant.description,
            hyperparameters=hyperparameters(variant, epochs), history=history, seconds=seconds,
            seed=run.seed, split=split, store=run.store,
        ))
    write_record(experiment, run.store, trials=trials,
                 notes=[*experiment.notes, *workflow_notes(experiment, run), *tuning_notes(trials)])
    return cards


def selection_score(history: list[EpochRecord]) -> float:
    """Mean validation accuracy over the last SELECTION_EPOCHS epochs (fewer if it ran fewer)."""
    tail = [e.val_accuracy or 0.0 for e in history[-SELECTION_EPOCHS:]]
    return sum(tail) / len(tail)


def tune(
    variant: DenseVariant, dropouts: list[float], split: DenseSplit, epochs: int, seed: int, workers: int
) -> tuple[DenseVariant, keras.Model, list[EpochRecord], float, list[SearchTrial]]:
    """Train one candidate per dropout rate; keep the best by validation (`selection_score`).

    Returns the chosen variant, its model, history and wall time, and every candidate as a trial.
    """
    best: tuple[float, DenseVariant, keras.Model, list[EpochRecord], float] | None = None
    trials = []
    for index, rate in enumerate(dropouts):
        candidate = replace(variant, dropout=rate, description=variant.description.replace(
            "Dropout,", f"Dropout {rate:g},"))
        log.info("tuning %s: candidate %d, dropout %g, %d epochs", variant.name, index, rate, epochs)
        model, history, seconds = fit_dense(candidate, split, epochs, seed, workers)
        score = selection_score(history)
        trials.append(SearchTrial(
            trial=index,
            parameters={"dropout": rate, "hidden_layers": list(candidate.widths), "epochs": epochs,
                        "score": f"mean validation accuracy of the last {SELECTION_EPOCHS} epochs"},
            validation_accuracy=score,
            validation_loss=history[-1].val_loss,
            epochs_run=len(history),
            seconds=round(seconds, 1),
        ))
        log.info("candidate %d (dropout %g): score %.4f in %.0f s", index, rate, score, seconds)
        if best is None or score > best[0]:
            best = (score, candidate, model, history, seconds)
        else:
            del model
    assert best is not None, "at least one candidate dropout rate"
    _, chosen, model, history, seconds = best
    return chosen, model, history, seconds, trials


def tuning_notes(trials: list[SearchTrial]) -> list[str]:
    if not trials:
        return []
    best = max(trials, key=lambda t: t.validation_accuracy)
    listed = "; ".join(f"dropout {t.parameters['dropout']}: {t.validation_accuracy:.4f} ({t.seconds:.0f} s)" for t in trials)
    return [f"dense_tuned: candidates scored by mean validation accuracy of their last {SELECTION_EPOCHS} epochs: "
            f"{listed}; kept dropout {best.parameters['dropout']} (the test set played no part in the choice)"]


def workflow_notes(experiment: Experiment, run: ExperimentRun) -> list[str]:
    """Where each published model starts to overfit, from its card (validation figures only)."""
    notes = []
    for name in experiment.variants:
        card = latest_card(run.store, name)
        if card is None or not card.history:
            continue
        turn = overfitting_epoch(card.history)
        last = card.history[-1]
        peak = card.peak_validation()
        gap = (last.accuracy or 0.0) - (last.val_accuracy or 0.0)
        notes.append(
            f"{name} v{card.version}: validation loss lowest at epoch {turn.epoch} of {len(card.history)} "
            f"({turn.val_loss:.4f}, validation accuracy {turn.val_accuracy:.4f}); at the last epoch validation loss "
            f"{last.val_loss:.4f}, training accuracy {last.accuracy:.4f} against validation {last.val_accuracy:.4f} "
            f"(gap {gap:+.4f}); best validation accuracy {peak.val_accuracy if peak else float('nan'):.4f} "
            f"at epoch {peak.epoch if peak else 0}"
        )
    return notes
