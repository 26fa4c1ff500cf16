"""Seed 003: a Dense + BatchNormalization + Dropout network found by a random search.

The seed ran scikit-learn's RandomizedSearchCV over a scikeras wrapper; here the search is our
own, seeded, over the same knobs (number of hidden layers, neurons per layer, optimizer adam or
sgd, dropout rate, batch size), on the 50,000 / 10,000 split of training/dense.py. Every trial
trains with EarlyStopping on the validation loss, restoring its best weights, and is scored by
the validation accuracy of the weights it kept. The best trial's model (kept, not retrained) is
published as `dense_bn_search`; the test set is read only by that publication. Every trial is
written to the experiment's record.

The optimizers are the seed's Keras strings: Adam at lr 0.001 and plain SGD at lr 0.01.

Options (`--option key=value`): `trials` (default TRIALS), `max_epochs` (per trial, default
MAX_EPOCHS; `--epochs` overrides it too), `patience` (default PATIENCE), `min_delta` (default 0),
`budget_s` (no new trial starts once the search has run this long; default BUDGET_S), `extend`
(1: continue the search recorded in the store, see `train`), `threads`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from digit_contract.card import EpochRecord, Hyperparameters, ModelCard
from digit_contract.records import JsonScalar, SearchTrial, read_experiments
from training.data import as_model_input
from training.dense import (
    VALIDATION_SHARE,
    DenseSplit,
    build_dense,
    export_and_publish,
    latest_card,
    load_dense_split,
    one_hot,
)
from training.experiments import Experiment, ExperimentRun, limit_tensorflow_threads, write_record
from training.publish import history_records

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

TRIALS = 16
MAX_EPOCHS = 30
PATIENCE = 4
BUDGET_S = 1500.0
NAME = "dense_bn_search"

SEARCH_SPACE: dict[str, tuple[JsonScalar, ...]] = {
    "layers": (1, 2, 3),
    "neurons": (64, 128, 256, 512),
    "optimizer": ("adam", "sgd"),
    "dropout": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5),
    "batch_size": (64, 128, 256),
}
"""Each trial draws every knob uniformly from its values (neurons: the same width in every layer)."""

LEARNING_RATES = {"adam": 0.001, "sgd": 0.01}
"""Keras's defaults for the seed's optimizer strings."""


@dataclass(frozen=True)
class Trial:
    index: int
    parameters: dict[str, JsonScalar]

    @property
    def widths(self) -> tuple[int, ...]:
        return (int(self.parameters["neurons"] or 0),) * int(self.parameters["layers"] or 0)


@dataclass(frozen=True)
class SearchSettings:
    trials: int = TRIALS
    max_epochs: int = MAX_EPOCHS
    patience: int = PATIENCE
    min_delta: float = 0.0
    budget_s: float = BUDGET_S

    @classmethod
    def of(cls, run: ExperimentRun) -> SearchSettings:
        o = run.options
        return cls(
            trials=int(o.get("trials", TRIALS)),
            max_epochs=run.epochs or int(o.get("max_epochs", MAX_EPOCHS)),
            patience=int(o.get("patience", PATIENCE)),
            min_delta=float(o.get("min_delta", 0.0)),
            budget_s=float(o.get("budget_s", BUDGET_S)),
        )


def draw_trials(count: int, seed: int) -> list[Trial]:
    """`count` configurations drawn from SEARCH_SPACE by a generator seeded with `seed` (no repeats)."""
    rng = np.random.default_rng(seed)
    drawn: list[Trial] = []
    seen: set[tuple[JsonScalar, ...]] = set()
    while len(drawn) < count and len(seen) < np.prod([len(v) for v in SEARCH_SPACE.values()]):
        parameters = {k: values[int(rng.integers(len(values)))] for k, values in SEARCH_SPACE.items()}
        key = tuple(parameters.values())
        if key not in seen:
            seen.add(key)
            drawn.append(Trial(len(drawn), parameters))
    return drawn


def _optimizer(name: str) -> keras.optimizers.Optimizer:
    import keras

    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=LEARNING_RATES["sgd"])
    return keras.optimizers.Adam(learning_rate=LEARNING_RATES["adam"])


@dataclass
class TrialResult:
    trial: Trial
    model: keras.Model
    history: list[EpochRecord]
    best_epoch: int
    """1-based epoch whose weights EarlyStopping restored."""
    validation_accuracy: float
    validation_loss: float
    seconds: float


def run_trial(trial: Trial, split: DenseSplit, settings: SearchSettings, seed: int) -> TrialResult:
    """Train one configuration with early stopping; score the restored weights on validation."""
    import keras

    keras.utils.set_random_seed(seed + trial.index)
    p = trial.parameters
    model = build_dense(trial.widths, dropout=float(p["dropout"] or 0.0), batch_norm=True, name=NAME)
    model.compile(optimizer=_optimizer(str(p["optimizer"])), loss="categorical_crossentropy", metrics=["accuracy"])
    x_val, y_val = as_model_input(split.validation), one_hot(split.validation.labels)
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=settings.patience,
                                            min_delta=settings.min_delta, restore_best_weights=True)
    started = time.perf_counter()
    fitted = model.fit(as_model_input(split.train), one_hot(split.train.labels), batch_size=int(p["batch_size"] or 1),
                       epochs=settings.max_epochs, validation_data=(x_val, y_val), shuffle=True,
                       callbacks=[stopper], verbose=0)
    seconds = time.perf_counter() - started
    loss, accuracy = model.evaluate(x_val, y_val, batch_size=1000, verbose=0)
    history = history_records(fitted.history)
    return TrialResult(trial, model, history, stopper.best_epoch + 1, float(accuracy), float(loss), seconds)


def search(
    split: DenseSplit, settings: SearchSettings, seed: int, skip: int = 0
) -> tuple[TrialResult, list[SearchTrial]]:
    """Run the trials (until the budget is spent); the best by validation accuracy and all trials.

    `skip` continues a search: the first `skip` draws of the seeded sequence ran before. Only the
    best trial's model is kept in memory. Ties go to the earlier trial.
    """
    best: TrialResult | None = None
    trials: list[SearchTrial] = []
    started = time.perf_counter()
    for trial in draw_trials(skip + settings.trials, seed)[skip:]:
        if trials and time.perf_counter() - started > settings.budget_s:
            log.info("search budget of %.0f s spent after %d trials", settings.budget_s, len(trials))
            break
        result = run_trial(trial, split, settings, seed)
        trials.append(SearchTrial(
            trial=trial.index,
            parameters={**trial.parameters, "learning_rate": LEARNING_RATES[str(trial.parameters["optimizer"])],
                        "best_epoch": result.best_epoch},
            validation_accuracy=result.validation_accuracy,
            validation_loss=result.validation_loss,
            epochs_run=len(result.history),
            seconds=round(result.seconds, 1),
        ))
        log.info("trial %d %s: validation accuracy %.4f (loss %.4f), best epoch %d of %d run, %.0f s "
                 "(search %.0f s)", trial.index, trial.parameters, result.validation_accuracy,
                 result.validation_loss, result.best_epoch, len(result.history), result.seconds,
                 time.perf_counter() - started)
        if best is None or result.validation_accuracy > best.validation_accuracy:
            best = result
    assert best is not None, "the search ran no trial"
    return best, trials


def hyperparameters(best: TrialResult, settings: SearchSettings, trials: list[SearchTrial]) -> Hyperparameters:
    p = best.trial.parameters
    return Hyperparameters.model_validate({
        "hidden_units": int(p["neurons"] or 0),
        "dropout_rate": float(p["dropout"] or 0.0),
        "noise_stddev": 0.0,
        "optimizer": str(p["optimizer"]),
        "learning_rate": LEARNING_RATES[str(p["optimizer"])],
        "loss": "categorical_crossentropy",
        "batch_size": int(p["batch_size"] or 1),
        "epochs": settings.max_epochs,
        "validation_fraction": round(VALIDATION_SHARE, 6),
        "augmentation": None,
        "early_stopping": True,
        "settings": {
            "hidden_layers": list(best.trial.widths),
            "activation": "relu",
            "batch_normalization": True,
            "early_stopping_monitor": "val_loss",
            "patience": settings.patience,
            "min_delta": settings.min_delta,
            "restored_epoch": best.best_epoch,
            "search_trial": best.trial.index,
            "search_trials_run": len(trials),
            "search_seconds": round(sum(t.seconds for t in trials), 1),
            "train_images": 50_000,
            "validation_images": 10_000,
        },
    })


def train(experiment: Experiment, run: ExperimentRun) -> list[ModelCard]:
    """Run the random search, publish its winner, write the record with every trial.

    With option `extend=1` the search continues the one recorded in the store: its next `trials`
    draws run, the record keeps the earlier trials, and a new version is published only when a new
    trial beats the recorded winner on validation (else the published winner stays).
    """
    limit_tensorflow_threads(run.threads())
    settings = SearchSettings.of(run)
    split = load_dense_split(run)
    earlier: list[SearchTrial] = []
    if run.options.get("extend", "0") not in ("0", ""):
        recorded = read_experiments(run.store).get(experiment.id)
        earlier = list(recorded.trials) if recorded else []
    log.info("random search: %d trials after %d recorded, at most %d epochs each (patience %d), budget %.0f s",
             settings.trials, len(earlier), settings.max_epochs, settings.patience, settings.budget_s)
    best, new = search(split, settings, run.seed, skip=len(earlier))
    trials = [*earlier, *new]
    champion = max(earlier, key=lambda t: t.validation_accuracy) if earlier else None
    if champion is not None and champion.validation_accuracy >= best.validation_accuracy:
        card = latest_card(run.store, NAME)
        if (card is None or card.hyperparameters is None
                or card.hyperparameters.settings.get("search_trial") != champion.trial):
            raise RuntimeError(f"the recorded winner, trial {champion.trial}, is not the published {NAME}")
        log.info("no new trial beats trial %d (%.4f): %s v%d stays", champion.trial, champion.validation_accuracy,
                 NAME, card.version)
        winner, winner_accuracy = champion.trial, champion.validation_accuracy
    else:
        p = best.trial.parameters
        card = export_and_publish(
            best.model, name=NAME, experiment=experiment,
            description=f"Seed 003 random search winner (trial {best.trial.index} of {len(trials)}): "
            f"{p['layers']} x Dense({p['neurons']}) + BatchNormalization + ReLU + Dropout {p['dropout']}, "
            f"{p['optimizer']}, batch {p['batch_size']}, early stopping at validation loss (best epoch {best.best_epoch})",
            hyperparameters=hyperparameters(best, settings, trials), history=best.history,
            seconds=best.seconds, seed=run.seed + best.trial.index, split=split, store=run.store,
        )
        winner, winner_accuracy = best.trial.index, best.validation_accuracy
    per_class = ", ".join(f"{c.digit}: {c.precision:.3f}/{c.recall:.3f}/{c.f1:.3f}" for c in card.per_class)
    notes = [
        *experiment.notes,
        f"search: {len(trials)} trials drawn by numpy's default_rng({run.seed}) from {dict(SEARCH_SPACE)}; "
        f"each at most {settings.max_epochs} epochs, EarlyStopping(val_loss, patience {settings.patience}, "
        f"restore_best_weights); ranked by the restored weights' validation accuracy, the test set unseen; "
        f"{sum(t.seconds for t in trials):.0f} s of training in all",
        f"winner: trial {winner}, validation accuracy {winner_accuracy:.4f}; published as "
        f"{NAME} v{card.version} (its card's training_seconds are the winning trial's)",
        f"{NAME} v{card.version} test per class (precision/recall/F1): {per_class}; macro F1 {card.macro_avg.f1:.4f}",
    ]
    write_record(experiment, run.store, trials=trials, notes=notes)
    return [card]
