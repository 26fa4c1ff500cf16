"""GET /models/compare, the honest parts: significance, intervals, ties, seed spread, calibration, robustness."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from statistics import fmean
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from digit_contract.card import ModelCard
from digit_contract.comparison import SEED_CLAIMS
from digit_contract.records import ROBUSTNESS_FILE, ReplicateRun, read_replicates, replicate_path
from digit_contract.statistics import holm_adjust, mcnemar_exact, permutation_test, wilson_interval
from digit_contract.store import UPLOAD_EVALUATION_FILE, latest_cards, pack_correct, read_upload_evaluation
from service.inference.comparison import compare_models
from service.models.registry import ServedModel
from tests.factories import make_card
from tests.service.conftest import MODEL_NAMES


@pytest.fixture(scope="module")
def compared(client: TestClient) -> dict[str, Any]:
    response = client.get("/models/compare")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def cards(store: Path) -> dict[str, ModelCard]:
    """Every model of the store (seed 000's seven and whatever the zoo has gained)."""
    return latest_cards(store)


def errors_of(card: ModelCard) -> set[int]:
    return {m.index for m in card.misclassified}


def discordant(a: ModelCard, b: ModelCard) -> tuple[int, int]:
    """(images only a got right, images only b got right)."""
    return len(errors_of(b) - errors_of(a)), len(errors_of(a) - errors_of(b))


# -- from the committed store ------------------------------------------------------------------


def test_significance_is_mcnemar_on_the_cards_errors_with_holm_over_the_section(
    compared: dict[str, Any], cards: dict[str, ModelCard]
) -> None:
    tests = compared["significance"]
    # 3 architecture gaps, 5 regularisation effects (cnn_augmented's included), noise vs dropout x 2.
    assert len(tests) == 3 + 5 + 2
    p_values = []
    for test in tests:
        only_base, only_model = discordant(cards[test["baseline"]], cards[test["model"]])
        assert (test["only_baseline_right"], test["only_model_right"]) == (only_base, only_model)
        assert test["p_value"] == mcnemar_exact(only_base, only_model)
        p_values.append(test["p_value"])
    for test, adjusted in zip(tests, holm_adjust(p_values), strict=True):
        assert test["p_holm"] == pytest.approx(adjusted)
        assert test["significant"] is (adjusted < 0.05)
        if test["significant"]:
            fewer = min((test["baseline"], test["model"]), key=lambda n: cards[n].test_errors)
            assert test["better"] == fewer
        else:
            assert test["better"] is None


def test_findings_say_not_significant_where_that_is_the_truth(compared: dict[str, Any]) -> None:
    for test in compared["significance"]:
        [finding] = [f for f in compared["findings"] if f.startswith(f"{test['question']}: {test['model']} vs ")]
        assert ("not significant (p = " in finding) is (not test["significant"])
        assert f"p = {test['p_value']:.2f}" in finding or "e-" in finding or f"p = {test['p_value']:.3f}" in finding
    # The seed's finding that started this issue: 9 errors between cnn_dropout and cnn.
    [dropout] = [t for t in compared["significance"] if (t["baseline"], t["model"]) == ("cnn", "cnn_dropout")]
    assert dropout["significant"] is False


def test_ranks_are_shared_by_models_within_noise(compared: dict[str, Any], cards: dict[str, ModelCard]) -> None:
    # Ranked per test set (Holm over that set's pairs); MNIST's, the largest, first.
    groups: dict[tuple[str, int], list[str]] = {}
    for row in compared["models"]:
        groups.setdefault((row["dataset"], row["test_samples"]), []).append(row["name"])
    assert [d["models"] for d in compared["datasets"]] == list(groups.values())
    for names in groups.values():
        pairs = list(itertools.combinations(names, 2))
        adjusted = dict(zip(pairs, holm_adjust([mcnemar_exact(*discordant(cards[a], cards[b])) for a, b in pairs]),
                            strict=True))

        def significant(a: str, b: str, adjusted: dict[tuple[str, str], float] = adjusted) -> bool:
            return adjusted.get((a, b), adjusted.get((b, a), 1.0)) < 0.05

        for row in (r for r in compared["models"] if r["name"] in names):
            name = row["name"]
            better = [o for o in names if o != name and significant(o, name) and cards[o].test_errors < cards[name].test_errors]
            assert row["rank"] == 1 + len(better)
            assert row["tied_with"] == [o for o in names if o != name and not significant(o, name)]
        ranks = [row["rank"] for row in compared["models"] if row["name"] in names]
        assert ranks == sorted(ranks)
    first = next(iter(groups.values()))
    assert compared["tied_for_best"] == [row["name"] for row in compared["models"] if row["rank"] == 1 and row["name"] in first]
    assert compared["best"] in compared["tied_for_best"]


def test_every_accuracy_has_its_wilson_interval(compared: dict[str, Any], cards: dict[str, ModelCard]) -> None:
    for row in compared["models"]:
        card = cards[row["name"]]
        n = card.dataset.test_samples
        low, high = wilson_interval(n - card.test_errors, n)
        assert (row["test_accuracy_low"], row["test_accuracy_high"]) == pytest.approx((low, high))
        assert low < row["test_accuracy"] < high


def test_seed_spread_counts_the_served_run_and_the_recorded_replicates(
    compared: dict[str, Any], cards: dict[str, ModelCard], store: Path
) -> None:
    replicates = read_replicates(store)
    spreads = {s["variant"]: s for s in compared["seed_spread"]}
    assert set(spreads) == set(cards)
    for name, spread in spreads.items():
        runs = [r for r in replicates.get(name, []) if r.epochs == cards[name].hyperparameters.epochs]
        accuracies = [cards[name].test_accuracy] + [r.test_accuracy for r in runs]
        assert spread["runs"] == len(accuracies)
        assert spread["seeds"] == [cards[name].seed] + [r.seed for r in runs]
        assert spread["test_accuracy_mean"] == pytest.approx(fmean(accuracies))
        assert (spread["test_accuracy_min"], spread["test_accuracy_max"]) == (min(accuracies), max(accuracies))
        assert (spread["test_accuracy_std"] is None) is (len(accuracies) == 1)
    assert [c["claim"] for c in compared["seed_claims"]] == [claim for claim, _, _ in SEED_CLAIMS]
    for claim in compared["seed_claims"]:
        assert claim["runs"] == [spreads[claim["baseline"]]["runs"], spreads[claim["model"]]["runs"]]
        if claim["verdict"] in ("supported", "contradicted"):
            assert claim["p_holm"] < 0.05
        if claim["verdict"] in ("consistent", "against"):
            assert claim["separated"] and claim["p_holm"] >= 0.05


def test_calibration_comes_from_the_cards(compared: dict[str, Any], cards: dict[str, ModelCard]) -> None:
    rows = {row["name"]: row for row in compared["calibration"]}
    assert set(MODEL_NAMES) <= set(rows) == {name for name, card in cards.items() if card.calibration is not None}
    for name, row in rows.items():
        calibration = cards[name].calibration
        assert calibration is not None and calibration.fitted_on == "validation"
        assert (row["temperature"], row["applied"]) == (calibration.temperature, calibration.applied)
        assert (row["test_ece_before"], row["test_ece_after"]) == (calibration.test_ece_before, calibration.test_ece_after)
        # On by default only where the fit lowered the validation NLL.
        assert calibration.applied is (calibration.validation_nll_after < calibration.validation_nll_before)


def test_robustness_summarises_the_stored_curves(compared: dict[str, Any], store: Path) -> None:
    record = json.loads((store / ROBUSTNESS_FILE).read_text())
    summaries = {s["corruption"]: s for s in compared["robustness"]}
    assert list(summaries) == [c["corruption"] for c in record["curves"]]
    for curve in record["curves"]:
        summary = summaries[curve["corruption"]]
        assert summary["accuracy"] == {n: curve["accuracy"][n] for n in MODEL_NAMES}
        # The served models' curves (the record may cover more of the zoo than this store serves).
        assert set(summary["mean_corrupted_accuracy"]) == set(MODEL_NAMES)
        for name in MODEL_NAMES:
            assert summary["mean_corrupted_accuracy"][name] == pytest.approx(fmean(curve["accuracy"][name][1:]))
        assert summary["most_robust"] == max(summary["mean_corrupted_accuracy"],
                                             key=lambda n: summary["mean_corrupted_accuracy"][n])
    assert compared["methods"].startswith("Test-set comparisons: exact McNemar test")


# -- from constructed cards --------------------------------------------------------------------


def served(*cards: ModelCard) -> dict[str, ServedModel]:
    return {c.name: ServedModel(name=c.name, version=c.version, state="ready", card=c) for c in cards}


def wrong(indices: range) -> tuple[tuple[int, int, int], ...]:
    return tuple((i, 1, 7) for i in indices)


def test_three_errors_against_four_is_a_tie_not_a_win() -> None:
    a, b = make_card("cnn", errors=wrong(range(3))), make_card("cnn_noise", errors=wrong(range(10, 14)),
                                                               hyperparameters={**_hyper(), "noise_stddev": 0.2})
    result = compare_models(served(a, b))
    assert [(row.name, row.rank) for row in result.models] == [("cnn", 1), ("cnn_noise", 1)]
    assert result.tied_for_best == ["cnn", "cnn_noise"]
    assert result.significance[0].p_value == mcnemar_exact(4, 3) == 1.0
    assert "not significantly better than cnn_noise" in result.findings[0]
    assert result.findings[1].endswith("not significant (p = 1.00, Holm-adjusted 1.00)")
    # No store given: no replicates, no robustness, and the served run alone has no spread.
    assert result.robustness == [] and all(s.runs == 1 and s.test_accuracy_std is None for s in result.seed_spread)


def test_a_large_difference_is_significant_and_ranks_apart() -> None:
    a, b = make_card("cnn", errors=wrong(range(2))), make_card("mlp", errors=wrong(range(100, 140)))
    result = compare_models(served(a, b))
    assert [(row.name, row.rank) for row in result.models] == [("cnn", 1), ("mlp", 2)]
    [gap] = result.significance
    assert (gap.only_baseline_right, gap.only_model_right, gap.significant, gap.better) == (2, 40, True, "cnn")
    assert "every other model is significantly less accurate" in result.findings[0]


def _hyper(**changes: Any) -> dict[str, Any]:
    return {**make_card().hyperparameters.model_dump(), **changes}


def _replicate(variant: str, seed: int, errors: int, samples: int = 1000) -> ReplicateRun:
    return ReplicateRun(
        variant=variant, seed=seed, epochs=2, batch_size=128, test_accuracy=(samples - errors) / samples,
        test_errors=errors, test_loss=0.05, test_samples=samples, macro_f1=0.98, misclassified=list(range(errors)),
        final_val_accuracy=0.98, final_val_loss=0.05, best_val_accuracy=0.98, best_val_epoch=2,
        training_seconds=60.0, onnx_sha256="a" * 64, library_versions={}, created_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


def test_seed_claims_are_tested_over_the_replicates(tmp_path: Path) -> None:
    cnn, mlp = make_card("cnn", errors=wrong(range(10))), make_card("mlp", errors=wrong(range(30)))
    for seed, (cnn_errors, mlp_errors) in enumerate([(11, 31), (9, 29), (12, 33), (10, 28), (8, 35)], start=2):
        _replicate("cnn", seed, cnn_errors).write(replicate_path(tmp_path, "cnn", seed))
        _replicate("mlp", seed, mlp_errors).write(replicate_path(tmp_path, "mlp", seed))
    # A record of another protocol (more epochs) is not a replicate of the served one.
    other = _replicate("cnn", 9, 50).model_copy(update={"epochs": 5})
    other.write(replicate_path(tmp_path, "cnn", 9))
    (tmp_path / "replicates" / "mlp" / "seed-77.json").write_text("{not json")  # ignored, logged

    result = compare_models(served(cnn, mlp), tmp_path)
    spreads = {s.variant: s for s in result.seed_spread}
    assert (spreads["cnn"].runs, spreads["cnn"].seeds) == (6, [1, 2, 3, 4, 5, 6])
    assert (spreads["cnn"].test_errors_min, spreads["cnn"].test_errors_max) == (8, 12)
    [claim] = result.seed_claims  # only "CNN beats MLP, unregularised" has both its variants here
    cnn_acc = [0.99, 0.989, 0.991, 0.988, 0.99, 0.992]
    mlp_acc = [0.97, 0.969, 0.971, 0.967, 0.972, 0.965]
    assert claim.p_value == pytest.approx(permutation_test(cnn_acc, mlp_acc)) == pytest.approx(2 / 924)
    assert (claim.runs, claim.separated, claim.verdict) == ([6, 6], True, "supported")
    assert claim.mean_accuracy_delta == pytest.approx(fmean(cnn_acc) - fmean(mlp_acc))
    assert any(f.startswith("Over training seeds, 'CNN beats MLP, unregularised': supported: cnn ") for f in result.findings)


def test_too_few_replicates_cannot_support_a_claim_and_say_so(tmp_path: Path) -> None:
    cnn, mlp = make_card("cnn", errors=wrong(range(10))), make_card("mlp", errors=wrong(range(30)))
    _replicate("cnn", 2, 11).write(replicate_path(tmp_path, "cnn", 2))
    _replicate("mlp", 2, 31).write(replicate_path(tmp_path, "mlp", 2))
    [claim] = compare_models(served(cnn, mlp), tmp_path).seed_claims
    # 2 runs against 2, fully separated: p = 2/6, which is the smallest 2 + 2 runs can give.
    assert (claim.p_value, claim.smallest_possible_p, claim.verdict) == (pytest.approx(1 / 3), pytest.approx(1 / 3),
                                                                         "consistent")
    finding = next(f for f in compare_models(served(cnn, mlp), tmp_path).findings if f.startswith("Over training seeds"))
    assert "2 + 2 runs cannot give p below 0.33 before Holm" in finding
    # Overlapping runs are "not shown".
    _replicate("mlp", 3, 5).write(replicate_path(tmp_path, "mlp", 3))
    [claim] = compare_models(served(cnn, mlp), tmp_path).seed_claims
    assert (claim.separated, claim.verdict) == (False, "not shown")


def test_one_run_against_one_is_not_tested() -> None:
    cnn, mlp = make_card("cnn", errors=wrong(range(10))), make_card("mlp", errors=wrong(range(30)))
    result = compare_models(served(cnn, mlp))
    [claim] = result.seed_claims
    assert (claim.runs, claim.p_value, claim.p_holm, claim.verdict) == ([1, 1], None, None, "not shown")
    assert any(f.endswith("one run against one: nothing to test") for f in result.findings)


def test_upload_accuracy_comes_with_wilson_intervals(
    compared: dict[str, Any], store: Path, cards: dict[str, ModelCard]
) -> None:
    record = json.loads((store / "uploads-validation.json").read_text())
    rows = compared["uploads"]
    scored = [name for name in record["accuracy"] if name in cards]  # the record may cover more models
    assert [r["name"] for r in rows] == sorted(scored, key=lambda n: (-record["accuracy"][n], n))
    for row in rows:
        low, high = wilson_interval(round(row["accuracy"] * record["uploads"]), record["uploads"])
        assert (row["accuracy"], row["low"], row["high"], row["uploads"]) == (
            record["accuracy"][row["name"]], pytest.approx(low), pytest.approx(high), record["uploads"])
    assert compared["findings"][-1].startswith(f"User-style validation uploads ({record['uploads']:,}): {rows[0]['name']} ")


def test_every_model_is_tested_against_the_upload_leader_upload_by_upload(compared: dict[str, Any], store: Path) -> None:
    evaluation = read_upload_evaluation(store)
    assert evaluation is not None and evaluation.correct, "the committed record keeps each model's per-upload results"
    rows = compared["uploads"]
    leader = rows[0]["name"]
    assert rows[0]["against_leader"] is None
    p_values = []
    for row in rows[1:]:
        test = row["against_leader"]
        mine, theirs = evaluation.correct[row["name"]], evaluation.correct[leader]
        only_leader, only_model = int((theirs & ~mine).sum()), int((mine & ~theirs).sum())
        assert (test["baseline"], test["model"], test["only_baseline_right"], test["only_model_right"]) == (
            leader, row["name"], only_leader, only_model)
        # The bits agree with the recorded accuracy, so the test is of the figures shown.
        assert mine.mean() == pytest.approx(row["accuracy"], abs=1e-5)
        assert test["p_value"] == pytest.approx(mcnemar_exact(only_leader, only_model))
        p_values.append(test["p_value"])
    assert [r["against_leader"]["p_holm"] for r in rows[1:]] == pytest.approx(holm_adjust(p_values))


def _upload_record(store: Path, correct: dict[str, list[bool]], cards: dict[str, ModelCard], **changes: Any) -> None:
    count = len(next(iter(correct.values())))
    record = {"split": "validation", "uploads": count,
              "accuracy": {name: sum(bits) / count for name, bits in correct.items()},
              "onnx_sha256": {name: cards[name].onnx.sha256 for name in correct},
              "correct": {name: pack_correct(np.array(bits)) for name, bits in correct.items()}, **changes}
    (store / UPLOAD_EVALUATION_FILE).write_text(json.dumps(record))


def test_the_upload_leader_is_tested_on_a_hand_computed_case(tmp_path: Path) -> None:
    cnn, mlp = make_card("cnn"), make_card("mlp")
    # 20 uploads: cnn reads 0-17 right, mlp 0-7 and 18-19: 10 only cnn, 2 only mlp.
    _upload_record(tmp_path, {"cnn": [True] * 18 + [False] * 2, "mlp": [True] * 8 + [False] * 10 + [True] * 2},
                   {"cnn": cnn, "mlp": mlp})
    result = compare_models(served(cnn, mlp), tmp_path)
    first, second = result.uploads
    assert (first.name, first.accuracy, first.against_leader) == ("cnn", 0.9, None)
    test = second.against_leader
    assert test is not None
    # P[Binomial(12, 1/2) <= 2] = (1 + 12 + 66) / 4096; two-sided: twice that. One test: Holm leaves it.
    assert (test.only_baseline_right, test.only_model_right) == (10, 2)
    assert test.p_value == pytest.approx(2 * 79 / 4096) == test.p_holm
    assert (test.significant, test.better) == (True, "cnn")
    assert result.findings[-1].endswith(
        "upload by upload, 10 only cnn read right against 2 only mlp: significant (p = 0.04, Holm-adjusted 0.04 "
        "over the 1 model behind it); every other model is significantly behind it")


def test_a_close_upload_lead_is_called_unproven(tmp_path: Path) -> None:
    cnn, mlp = make_card("cnn"), make_card("mlp")
    # 3 only cnn against 1 only mlp: p = 2 * 5 / 16 = 0.625.
    _upload_record(tmp_path, {"cnn": [True] * 9 + [False], "mlp": [True] * 6 + [False] * 3 + [True]},
                   {"cnn": cnn, "mlp": mlp})
    result = compare_models(served(cnn, mlp), tmp_path)
    test = result.uploads[1].against_leader
    assert test is not None and (test.p_value, test.significant, test.better) == (0.625, False, None)
    assert "not significant, so the lead is unproven" in result.findings[-1]
    assert result.findings[-1].endswith("1 model(s) not significantly behind it: mlp")


def test_upload_figures_of_another_file_are_left_out(tmp_path: Path) -> None:
    cnn, mlp = make_card("cnn"), make_card("mlp")
    _upload_record(tmp_path, {"cnn": [True] * 9 + [False], "mlp": [True] * 5 + [False] * 5}, {"cnn": cnn, "mlp": mlp},
                   onnx_sha256={"cnn": cnn.onnx.sha256, "mlp": "f" * 64})
    assert [row.name for row in compare_models(served(cnn, mlp), tmp_path).uploads] == ["cnn"]


def test_an_older_record_without_per_upload_results_says_the_lead_is_unproven(tmp_path: Path) -> None:
    cnn, mlp = make_card("cnn"), make_card("mlp")
    record = {"split": "validation", "uploads": 1000, "accuracy": {"cnn": 0.95, "mlp": 0.94}}
    (tmp_path / UPLOAD_EVALUATION_FILE).write_text(json.dumps(record))
    result = compare_models(served(cnn, mlp), tmp_path)
    assert [row.against_leader for row in result.uploads] == [None, None]
    assert result.findings[-1].endswith("no per-upload results are stored for a paired test, so the lead is unproven")
