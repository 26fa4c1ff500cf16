"""Seed 002 on the UCI 8x8 digits: data, the scikit-learn export, and a small end-to-end training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from digit_contract.card import ModelCard
from digit_contract.inputs import INPUT_NAME, OUTPUT_NAME
from digit_contract.records import read_experiments
from digit_contract.store import CARD_FILE, MODEL_FILE
from training.digits_8x8 import (
    SEED_GRID,
    SMOKE_GRID,
    UCI_INPUT,
    SearchResult,
    cached_search,
    convert_sklearn_to_onnx,
    load_uci_digits,
    publish_sklearn,
    search_sklearn,
    train,
)
from training.experiments import DIGITS_8X8, ExperimentRun
from training.export import verify_onnx


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_uci_digits()


def test_the_seeds_split_and_scaling(digits) -> None:  # type: ignore[no-untyped-def]
    assert digits.x_train.shape == (1437, 64) and digits.x_test.shape == (360, 64)
    assert digits.x_train.dtype == np.float32
    values = np.unique(digits.x_all)
    assert values.min() == 0.0 and values.max() == 1.0 and len(values) == UCI_INPUT.levels
    np.testing.assert_array_equal(values * 16, np.arange(17))
    # train_test_split(test_size=0.2, random_state=42) without stratification, as the seed.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    y = load_digits().target
    _, y_test = train_test_split(y, test_size=0.2, random_state=42)
    np.testing.assert_array_equal(digits.y_test, y_test)


def test_the_seed_grid_has_576_candidates() -> None:
    from sklearn.model_selection import ParameterGrid

    assert len(ParameterGrid(SEED_GRID)) == 576


def test_sklearn_export_has_only_the_probabilities_output(tmp_path: Path, digits) -> None:  # type: ignore[no-untyped-def]
    result = search_sklearn(digits, SMOKE_GRID, max_iter=20)
    path = tmp_path / "m.onnx"
    convert_sklearn_to_onnx(result.best, path)
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == [INPUT_NAME] and [o.name for o in graph.output] == [OUTPUT_NAME]
    assert not {n.op_type for n in graph.node} & {"ZipMap", "ArgMax", "ArrayFeatureExtractor"}
    report = verify_onnx(path, result.best.predict_proba, digits.x_all, UCI_INPUT)
    assert report.max_abs_diff <= 1e-5 and report.opset == 17
    assert len(result.trials) == 2 and all(0 <= t.validation_accuracy <= 1 for t in result.trials)
    assert {tuple(t.parameters["hidden_layer_sizes"]) for t in result.trials} == {(16,)}  # type: ignore[arg-type]


def test_a_model_that_stopped_before_max_iter_is_published_with_the_epochs_it_ran(tmp_path: Path, digits) -> None:  # type: ignore[no-untyped-def]
    from sklearn.neural_network import MLPClassifier

    # A large tol makes scikit-learn stop once the training loss improves by less than it.
    model = MLPClassifier(hidden_layer_sizes=(8,), tol=0.05, n_iter_no_change=2, max_iter=200, random_state=42)
    model.fit(digits.x_train, digits.y_train)
    assert model.n_iter_ < 200
    result = SearchResult(model, {}, 0.5, [], 1.0, 0.1, "grid")
    card = publish_sklearn(DIGITS_8X8, result, digits, tmp_path / "store", 1, 200, tmp_path)
    assert card.hyperparameters.epochs == len(card.history) == model.n_iter_
    assert card.hyperparameters.settings["max_iter"] == 200
    assert card.hyperparameters.settings["stopped"] == "training loss stopped improving (tol)"


def test_a_saved_search_is_reused(tmp_path: Path, digits) -> None:  # type: ignore[no-untyped-def]
    calls = []

    def search() -> SearchResult:
        calls.append(1)
        return search_sklearn(digits, SMOKE_GRID, max_iter=5)

    first = cached_search(tmp_path / "search.pkl", search)
    second = cached_search(tmp_path / "search.pkl", search)
    assert len(calls) == 1 and second.trials == first.trials and second.best_parameters == first.best_parameters


@pytest.mark.slow
def test_training_publishes_both_models_and_the_record(tmp_path: Path) -> None:
    run = ExperimentRun(store=tmp_path, epochs=3, options={"grid": "smoke", "keras": "1,2"})
    cards = train(DIGITS_8X8, run)
    assert [c.name for c in cards] == ["digits8_sklearn_mlp", "digits8_keras_mlp"]
    for card in cards:
        stored = ModelCard.read(tmp_path / card.name / "1" / CARD_FILE)
        assert stored.input == UCI_INPUT and stored.experiment == "digits-8x8"
        assert stored.dataset.name == "uci-digits-8x8" and stored.dataset.test_samples == 360
        assert stored.onnx.max_abs_diff_vs_keras <= 1e-5
        assert (tmp_path / card.name / "1" / MODEL_FILE).is_file()
    sklearn_card, keras_card = cards
    assert sklearn_card.framework == "scikit-learn" and keras_card.framework == "keras"
    assert len(sklearn_card.history) == 3 and sklearn_card.history[0].accuracy is None
    assert keras_card.history[-1].val_accuracy is not None and keras_card.hyperparameters.epochs == 3
    record = read_experiments(tmp_path)["digits-8x8"]
    assert len(record.trials) == 2
    (study,) = record.studies
    assert study.name == "keras-configurations" and len(study.points) == 2
    # The published Keras configuration is the one with the best validation accuracy.
    best = max(study.points, key=lambda p: p.validation_accuracy or 0.0)
    assert f"val {keras_card.hyperparameters.validation_fraction:g}," in str(best.value)
