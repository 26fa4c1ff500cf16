"""The zoo's comparison: the majority vote of POST /models/compare, one ranking rule, per-experiment
sections and the across-zoo view grouped by dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from digit_contract.card import ModelCard
from digit_contract.ranking import best_card, rank_cards, rank_within_noise
from digit_contract.statistics import holm_adjust, mcnemar_exact
from service.inference.comparison import compare_models, majority_vote
from service.models.registry import ServedModel
from service.models.registry import rank_models as registry_rank_models
from service.schemas import Prediction, Timings
from tests.factories import make_card
from training.experiments import EXPERIMENTS, write_record


def prediction(model: str, digit: int) -> Prediction:
    probabilities = [0.0] * 10
    probabilities[digit] = 1.0
    return Prediction(model=model, version=1, digit=digit, confidence=1.0, probabilities=probabilities,
                      calibrated=False, providers=["CPUExecutionProvider"], image=None,
                      timings=Timings(preprocess_ms=0.0, inference_ms=0.0, batch_size=1))


def test_majority_vote_counts_models_per_digit() -> None:
    vote = majority_vote([prediction("a", 7), prediction("b", 7), prediction("c", 1)])
    assert vote.majority_digit == 7
    assert vote.votes == {"1": ["c"], "7": ["a", "b"]}
    assert vote.agreement == pytest.approx(2 / 3)
    assert not vote.unanimous


def test_majority_vote_breaks_a_tie_with_the_smaller_digit_whatever_the_order() -> None:
    for order in (["a", "b"], ["b", "a"]):
        digits = {"a": 9, "b": 4}
        vote = majority_vote([prediction(name, digits[name]) for name in order])
        assert vote.majority_digit == 4
        assert vote.agreement == 0.5


def test_unanimous_vote_and_no_vote() -> None:
    vote = majority_vote([prediction("a", 3), prediction("b", 3)])
    assert vote.unanimous and vote.agreement == 1.0 and vote.majority_digit == 3
    with pytest.raises(ValueError):
        majority_vote([])


# -- the one ranking rule ----------------------------------------------------------------------


def wrong(indices: range) -> tuple[tuple[int, int, int], ...]:
    return tuple((i, 1, 7) for i in indices)


def digits8(name: str, errors: range, **overrides: Any) -> ModelCard:
    """A card scored on the 360 UCI 8x8 test images."""
    base = make_card(name, errors=wrong(errors), test_samples=360, **overrides)
    dataset = base.dataset.model_copy(update={"name": "uci-digits-8x8", "file_sha256": {"load_digits": "2" * 64}})
    return base.model_copy(update={"experiment": "digits-8x8", "dataset": dataset})


def test_order_is_accuracy_then_loss_then_name_and_uploads_first() -> None:
    cards = {
        "b": make_card("b", errors=wrong(range(2)), test_loss=0.05),
        "a": make_card("a", errors=wrong(range(2)), test_loss=0.05),
        "c": make_card("c", errors=wrong(range(2)), test_loss=0.04),
        "d": make_card("d", errors=wrong(range(1)), test_loss=0.09),
    }
    assert rank_cards(cards) == ["d", "c", "a", "b"]
    assert rank_cards(cards, {"b": 0.9, "a": 0.8}) == ["b", "a", "d", "c"]
    assert best_card(cards.values()).name == "d"


def test_ranks_are_shared_within_noise_and_apart_beyond() -> None:
    cards = {
        "cnn": make_card("cnn", errors=wrong(range(2))),
        "cnn_noise": make_card("cnn_noise", errors=wrong(range(10, 13))),
        "mlp": make_card("mlp", errors=wrong(range(100, 160))),
    }
    ranking = rank_within_noise(cards)
    assert ranking.groups == [["cnn", "cnn_noise", "mlp"]]
    assert [(r.name, r.rank) for r in ranking.ranks.values()] == [("cnn", 1), ("cnn_noise", 1), ("mlp", 3)]
    assert ranking.ranks["cnn"].tied_with == ("cnn_noise",)
    assert ranking.tied_for_best() == ["cnn", "cnn_noise"] and ranking.best() == "cnn"
    # Holm over the three pairs of the group.
    raw = [mcnemar_exact(*pair) for pair in ((3, 2), (2, 60), (3, 60))]
    assert [ranking.pairs.adjusted[k] for k in (("cnn", "cnn_noise"), ("cnn", "mlp"), ("cnn_noise", "mlp"))] == \
        pytest.approx(holm_adjust(raw))


def test_models_on_different_test_sets_are_never_ranked_together() -> None:
    cards = {
        "cnn": make_card("cnn", errors=wrong(range(30))),  # 97.0% of 1,000
        "digits8_sklearn_mlp": digits8("digits8_sklearn_mlp", range(3)),  # 99.2% of 360
        "digits8_keras_mlp": digits8("digits8_keras_mlp", range(20)),
    }
    ranking = rank_within_noise(cards)
    # The largest test set first, though the 8x8 model has the higher accuracy.
    assert ranking.groups == [["cnn"], ["digits8_sklearn_mlp", "digits8_keras_mlp"]]
    assert ranking.best() == "cnn" and ranking.best(1) == "digits8_sklearn_mlp"
    assert ("cnn", "digits8_sklearn_mlp") not in ranking.pairs.tests
    assert ranking.ranks["digits8_keras_mlp"].rank == 2
    with pytest.raises(ValueError, match="not comparable"):
        best_card(cards.values())


# -- GET /models/compare on a zoo --------------------------------------------------------------


def served(*cards: ModelCard) -> dict[str, ServedModel]:
    return {c.name: ServedModel(name=c.name, version=c.version, state="ready", card=c) for c in cards}


def dense(name: str, errors: range) -> ModelCard:
    return make_card(name, errors=wrong(errors)).model_copy(update={"experiment": "universal-workflow"})


def zoo() -> dict[str, ServedModel]:
    return served(
        make_card("cnn", errors=wrong(range(10))),
        make_card("mlp", errors=wrong(range(100, 150))),
        dense("dense_baseline", range(200, 240)),
        dense("dense_tuned", range(300, 312)),
        digits8("digits8_sklearn_mlp", range(3)),
        digits8("digits8_keras_mlp", range(10, 18)),
    )


def test_compare_groups_the_zoo_by_test_set_and_says_why() -> None:
    result = compare_models(zoo())
    assert [d.dataset for d in result.datasets] == ["mnist", "uci-digits-8x8"]
    mnist, uci = result.datasets
    assert mnist.models == ["cnn", "dense_tuned", "dense_baseline", "mlp"] and mnist.test_samples == 1000
    assert [(f.family, f.model) for f in mnist.families] == [("mlp", "dense_tuned"), ("cnn", "cnn")]
    assert mnist.family_gap is not None and (mnist.family_gap.baseline, mnist.family_gap.model) == ("dense_tuned", "cnn")
    assert (mnist.family_gap.only_baseline_right, mnist.family_gap.only_model_right) == (10, 12)
    assert [(f.family, f.model) for f in uci.families] == [("mlp", "digits8_sklearn_mlp")] and uci.family_gap is None
    # 8x8's 360 images measure less precisely than 1,000.
    assert uci.interval_half_width > mnist.interval_half_width
    # The top-level best is the largest test set's; the 8x8 model's higher accuracy does not outrank it.
    assert result.best == "cnn" and "digits8_sklearn_mlp" not in result.tied_for_best
    assert "not the same measurement" in result.zoo_note and "360 uci-digits-8x8 test images" in result.zoo_note
    assert any("not the same measurement" in f for f in result.findings)
    rows = {r.name: r for r in result.models}
    assert rows["digits8_sklearn_mlp"].rank == 1 and "cnn" not in rows["digits8_sklearn_mlp"].tied_with
    assert (rows["digits8_keras_mlp"].dataset, rows["digits8_keras_mlp"].test_samples) == ("uci-digits-8x8", 360)


def test_seed_000_questions_are_asked_of_its_variants_only() -> None:
    result = compare_models(zoo())
    # dense_tuned is an unregularised dense model too, and more accurate than mlp: still not seed 000's "mlp".
    [gap] = result.cnn_vs_mlp
    assert (gap.baseline, gap.model) == ("mlp", "cnn")
    assert [t.question for t in result.significance] == ["CNN vs MLP, unregularised"]


def test_each_experiment_is_ranked_among_its_own_models(tmp_path: Path) -> None:
    write_record(EXPERIMENTS["universal-workflow"], tmp_path, notes=["tuned on validation only"])
    result = compare_models(zoo(), tmp_path)
    sections = {e.id: e for e in result.experiments}
    assert list(sections) == ["regularisation", "universal-workflow", "digits-8x8"]
    workflow = sections["universal-workflow"]
    assert (workflow.seed_document, workflow.notes) == ("001", ["tuned on validation only"])
    assert [r.name for r in workflow.models] == ["dense_tuned", "dense_baseline"]
    assert [r.rank for r in workflow.models] == [1, 2]  # 12 against 40 errors, one test: significant
    [pair] = workflow.significance
    assert (pair.question, pair.baseline, pair.model, pair.better) == (
        "within universal-workflow", "dense_baseline", "dense_tuned", "dense_tuned")
    assert pair.p_holm == pair.p_value == mcnemar_exact(40, 12)
    assert workflow.seed_claims == list(EXPERIMENTS["universal-workflow"].seed_claims)
    assert sections["digits-8x8"].title is None and sections["digits-8x8"].test_samples == 360
    assert sections["regularisation"].significance == result.significance


def test_the_default_order_keeps_the_largest_test_set_first() -> None:
    # 99.2% on 360 8x8 images is another measurement than 97.0% on 1,000 MNIST images: the default
    # model (the first of the order) is the MNIST one, whatever the accuracies.
    cards = {"cnn": make_card("cnn", errors=wrong(range(30))), "digits8_sklearn_mlp": digits8("digits8_sklearn_mlp", range(3))}
    assert rank_cards(cards) == ["cnn", "digits8_sklearn_mlp"]
    assert registry_rank_models(served(*cards.values())) == ["cnn", "digits8_sklearn_mlp"]
