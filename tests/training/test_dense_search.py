"""Seed 003's random search: its draws, its ranking on validation, early stopping, and its record."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from digit_contract.card import EpochRecord, ModelCard
from digit_contract.records import read_experiments
from digit_contract.store import CARD_FILE
from training import dense_search
from training.data import RawSplit
from training.dense import load_dense_split
from training.dense_search import SEARCH_SPACE, SearchSettings, Trial, TrialResult, draw_trials, search
from training.experiments import EXPERIMENTS, ExperimentRun
from training.export import PARITY_TOLERANCE

EXPERIMENT = EXPERIMENTS["dense-search"]


def test_draws_follow_the_seed_stay_in_the_space_and_never_repeat() -> None:
    trials = draw_trials(20, seed=7)
    assert trials == draw_trials(20, seed=7)
    assert trials != draw_trials(20, seed=8)
    assert [t.index for t in trials] == list(range(20))
    assert len({tuple(t.parameters.values()) for t in trials}) == 20
    for t in trials:
        assert set(t.parameters) == set(SEARCH_SPACE)
        assert all(t.parameters[k] in values for k, values in SEARCH_SPACE.items())
        assert t.widths == (t.parameters["neurons"],) * int(t.parameters["layers"] or 0)


@dataclass(frozen=True)
class NoTestSplit:
    """A split whose test images cannot be read: the search must never need them."""

    train: RawSplit
    validation: RawSplit

    @property
    def test(self) -> RawSplit:
        raise AssertionError("the search read the test split")


def _fake_result(trial: Trial, validation_accuracy: float) -> TrialResult:
    history = [EpochRecord(epoch=1, loss=0.5, accuracy=0.8, val_loss=0.4, val_accuracy=validation_accuracy)]
    return TrialResult(trial, model=None, history=history, best_epoch=1,
                       validation_accuracy=validation_accuracy, validation_loss=0.4, seconds=1.0)


def test_search_keeps_the_best_validation_accuracy_first_of_equals(
    monkeypatch: pytest.MonkeyPatch, sample_dir: Path
) -> None:
    scores = [0.91, 0.95, 0.93, 0.95]
    monkeypatch.setattr(dense_search, "run_trial", lambda trial, *_: _fake_result(trial, scores[trial.index]))
    split = load_dense_split(ExperimentRun(store=Path("unused"), data_dir=sample_dir, download=False))
    best, trials = search(NoTestSplit(split.train, split.validation), SearchSettings(trials=4), seed=1)  # type: ignore[arg-type]
    assert best.trial.index == 1
    assert [t.validation_accuracy for t in trials] == scores
    assert [t.trial for t in trials] == [0, 1, 2, 3]


def test_search_starts_no_trial_once_its_budget_is_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dense_search, "run_trial", lambda trial, *_: _fake_result(trial, 0.9))
    best, trials = search(Any, SearchSettings(trials=5, budget_s=0.0), seed=1)
    assert len(trials) == 1 and best.trial.index == 0


@pytest.fixture(scope="module")
def searched(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelCard, Path]:
    store = tmp_path_factory.mktemp("store")
    # min_delta far above any change in loss: no epoch after the first improves, so every trial
    # stops after 1 + patience epochs and restores epoch 1, well before max_epochs.
    run = ExperimentRun(store=store, data_dir=sample_dir, download=False,
                        options={"trials": "3", "max_epochs": "6", "patience": "1", "min_delta": "100"})
    (card,) = EXPERIMENT.load_trainer()(EXPERIMENT, run)
    return card, store


@pytest.mark.slow
def test_winner_is_published_with_a_validated_card_and_parity_checked_onnx(searched: tuple[ModelCard, Path]) -> None:
    card, store = searched
    assert ModelCard.read(store / "dense_bn_search" / "1" / CARD_FILE) == card
    assert (card.name, card.experiment, card.architecture, card.framework) == ("dense_bn_search", "dense-search", "mlp", "keras")
    assert card.onnx.max_abs_diff_vs_keras <= PARITY_TOLERANCE
    assert card.hyperparameters.settings["batch_normalization"] is True
    assert len(card.per_class) == 10 and all(0 <= c.f1 <= 1 for c in card.per_class)


@pytest.mark.slow
def test_early_stopping_cuts_the_history_and_restores_the_best_epoch(searched: tuple[ModelCard, Path]) -> None:
    card, _ = searched
    assert card.hyperparameters.early_stopping is True
    assert card.hyperparameters.epochs == 6
    assert len(card.history) == 2 < card.hyperparameters.epochs
    assert card.hyperparameters.settings["restored_epoch"] == 1


@pytest.mark.slow
def test_record_holds_every_trial_and_the_winner_ranks_first_on_validation(searched: tuple[ModelCard, Path]) -> None:
    card, store = searched
    record = read_experiments(store)["dense-search"]
    assert [t.trial for t in record.trials] == [0, 1, 2]
    for t, drawn in zip(record.trials, draw_trials(3, seed=1234), strict=True):
        assert {k: t.parameters[k] for k in SEARCH_SPACE} == drawn.parameters
        assert t.epochs_run == 2 and t.seconds > 0 and t.validation_loss is not None
    winner = max(record.trials, key=lambda t: t.validation_accuracy)
    assert card.hyperparameters.settings["search_trial"] == winner.trial
    assert card.hyperparameters.settings["hidden_layers"] == [winner.parameters["neurons"]] * int(winner.parameters["layers"])
    # The winner's score is the validation accuracy of the weights it kept (epoch 1, restored).
    assert winner.validation_accuracy == pytest.approx(card.history[0].val_accuracy, abs=1e-6)
    assert any("per class (precision/recall/F1)" in note for note in record.notes)


@pytest.mark.slow
def test_an_extended_search_runs_the_next_draws_and_keeps_the_best_published(
    searched: tuple[ModelCard, Path], sample_dir: Path, tmp_path: Path
) -> None:
    _, first_store = searched
    store = tmp_path / "store"
    shutil.copytree(first_store, store)
    run = ExperimentRun(store=store, data_dir=sample_dir, download=False,
                        options={"trials": "1", "max_epochs": "6", "patience": "1", "min_delta": "100", "extend": "1"})
    (card,) = EXPERIMENT.load_trainer()(EXPERIMENT, run)
    record = read_experiments(store)["dense-search"]
    assert [t.trial for t in record.trials] == [0, 1, 2, 3]
    assert {k: record.trials[3].parameters[k] for k in SEARCH_SPACE} == draw_trials(4, seed=1234)[3].parameters
    winner = max(record.trials, key=lambda t: t.validation_accuracy)
    assert card.hyperparameters.settings["search_trial"] == winner.trial
    # A new version only when the new trial won.
    assert card.version == (2 if winner.trial == 3 else 1)
