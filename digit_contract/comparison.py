"""The variants compared, honestly: ranks within noise, deltas with their significance, the spread
over training seeds, calibration and robustness.

The seed asked which helps more on MNIST, a CNN over an MLP, or Dropout / Gaussian noise over no
regularisation. One training run per variant and one test set cannot answer that by a difference
of a few errors, so every delta here comes with a test:

- on the test set, two served models are compared image by image (exact McNemar on the images
  only one of them got right, from the `misclassified` lists of their cards), Holm-adjusted over
  the family of comparisons made; each accuracy has a 95% Wilson interval;
- over training seeds, each seed variant's replicate runs (model_store/replicates/) give a mean,
  a spread and an exact permutation test of the seed's claims, Holm-adjusted over the claims.

Everything is computed from the cards and the records beside them, so it lives in the contract:
the service (`GET /models/compare`, over the cards of its ready models, adding the latency it
measures) and the training report (over the store's cards) both call `compare_cards`; neither needs
the dataset nor SciPy. Variants are recognised from their card (architecture, dropout rate, noise
stddev), not their names.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from statistics import fmean
from typing import Any

import numpy as np

from digit_contract.card import ModelCard
from digit_contract.comparison_schemas import (
    ArchitectureGap,
    CalibrationRow,
    ComparisonRow,
    DatasetComparison,
    ExperimentComparison,
    FamilyBest,
    ModelComparison,
    PairedTest,
    RegularisationEffect,
    RobustnessSummary,
    SeedClaim,
    SeedSpread,
    Unavailable,
    UploadAccuracy,
    Verdict,
)
from digit_contract.ranking import Ranking, paired_tests, rank_within_noise, same_test_set
from digit_contract.records import (
    ExperimentRecord,
    ReplicateRun,
    RobustnessRecord,
    read_experiments,
    read_replicates,
    read_robustness,
)
from digit_contract.statistics import (
    ALPHA,
    compare_paired,
    holm_adjust,
    permutation_test,
    spread_of,
    wilson_interval,
)
from digit_contract.store import read_upload_evaluation

METHODS = (
    "Test-set comparisons: exact McNemar test (two-sided binomial test on the test images exactly one of the "
    "two models got right), Holm-adjusted within its family: the ranking compares every pair of models of a test "
    "set (an experiment's ranking, every pair of that experiment), the significance section the deltas of seed "
    "000's variants (CNN vs MLP, each regularisation vs none, noise vs dropout); the best CNN vs the best MLP per "
    "dataset is one unadjusted test of two models chosen on that test set, so descriptive; "
    "significant means adjusted p < 0.05. Accuracy intervals: 95% Wilson score intervals. Seed spread: the "
    "served run plus the replicate runs of the same protocol with other seeds (n per variant given); mean, "
    "sample standard deviation, range. Seed claims: exact two-sided permutation test on the mean test accuracy "
    "over runs, Holm-adjusted over the claims; with few runs the smallest attainable p is given. Calibration: "
    "expected calibration error over 15 equal-width confidence bins on the test set; temperature fitted on the "
    "validation split by minimising the NLL. Robustness: accuracy on the 10,000 test images corrupted at each "
    "strength (seeded). Uploads: accuracy on the user-style uploads rendered from the validation split; each "
    "model against the most accurate one by exact McNemar on the same uploads, Holm-adjusted over those tests. "
    "The zoo: models are compared only with models scored on the same test images (dataset, file hashes, "
    "count); it is grouped by test set, and no test or rank spans two of them."
)


def regularisation_of(card: ModelCard) -> str:
    """`none`, `dropout`, `noise` or `dropout+noise`, from the card's hyperparameters, with
    `+augmented` (or `augmented` alone) when the training images were augmented."""
    parts = []
    hp = card.hyperparameters
    if hp is None:  # an imported model: how it was trained is not known
        return "unknown"
    if hp.dropout_rate > 0:
        parts.append("dropout")
    if hp.noise_stddev > 0:
        parts.append("noise")
    # Augmented training is another protocol: as part of the key, such a model gets its own row
    # and never stands in for the seed's `dropout` or `noise` variant in the deltas.
    if hp.augmentation:
        parts.append("augmented")
    return "+".join(parts) or "none"


SEED_000_EXPERIMENTS = ("regularisation", "uploads")
"""The experiments the seed-000 questions (CNN vs MLP, each regularisation vs none) are asked of:
the variants are recognised from their cards, and a dense model of another seed is no "MLP" of
seed 000's protocol."""


def compare_cards(cards: Mapping[str, ModelCard], store: Path | None = None, *,
                  unavailable: Sequence[Unavailable] = ()) -> ModelComparison:
    """Rank the models within noise per test set, compare each experiment's models among
    themselves and the zoo per dataset, and compute, test and explain the deltas of seed 000's question.

    Args:
        cards: the models to compare, by name.
        store: the model store whose experiment, replicate, robustness and upload records to
            include (none when None).
        unavailable: models left out, and why (the service's models that are not ready).
    Returns:
        The comparison, its latency fields null: only a server measures latency.
    """
    ranking = rank_within_noise(cards)
    ranked = [name for group in ranking.groups for name in group]
    rows = [_row(cards[name], ranking) for name in ranked]

    # Seed 000's question, asked of its experiments' variants only.
    # (architecture, regularisation) -> model name; the first (best-ranked) wins if two match.
    variants: dict[tuple[str, str], str] = {}
    for name in ranked:
        if cards[name].experiment in SEED_000_EXPERIMENTS:
            variants.setdefault((cards[name].architecture, regularisation_of(cards[name])), name)

    gaps = [
        ArchitectureGap(regularisation=reg, **_delta(cards, variants[("mlp", reg)], variants[("cnn", reg)]))
        for reg in _ordered({reg for _, reg in variants})
        if ("mlp", reg) in variants and ("cnn", reg) in variants
    ]
    effects = [
        RegularisationEffect(architecture=arch, regularisation=reg, **_delta(cards, variants[(arch, "none")], name))
        for (arch, reg), name in sorted(variants.items(), key=lambda item: (item[0][0], _rank_of_reg(item[0][1])))
        if reg != "none" and (arch, "none") in variants
    ]
    questions = [(_gap_question(g.regularisation), g.baseline, g.model) for g in gaps]
    questions += [(_effect_question(e.architecture, e.regularisation), e.baseline, e.model) for e in effects]
    questions += [
        (f"noise vs dropout on the {arch.upper()}", variants[(arch, "dropout")], variants[(arch, "noise")])
        for arch in ("mlp", "cnn")
        if (arch, "dropout") in variants and (arch, "noise") in variants
    ]
    significance = _significance(cards, questions)

    findings = [_say_best(ranking, group, cards) for group in range(len(ranking.groups))]
    if len(ranking.groups) > 1:
        findings.append(_zoo_note(ranking, cards))
    findings += [_say_test(cards, test) for test in significance]

    replicates = read_replicates(store) if store is not None else {}
    spreads = _seed_spreads(cards, replicates)
    claims = _seed_claims(variants, cards, replicates)
    findings += [_say_claim(claim, spreads) for claim in claims]
    calibration = [_calibration_row(name, cards[name]) for name in ranked if cards[name].calibration is not None]
    if calibration:
        findings.append(_say_calibration(calibration))
    robustness_record = read_robustness(store) if store is not None else None
    robustness = _robustness(robustness_record, cards) if robustness_record is not None else []
    findings += _say_robustness(robustness, cards)
    uploads = _uploads(store, cards) if store is not None else []
    if len(uploads) > 1:
        findings.append(_say_uploads(uploads))

    records = read_experiments(store) if store is not None else {}
    experiments = _experiments(cards, records, significance)

    return ModelComparison(
        best=ranking.best(),
        models=rows,
        cnn_vs_mlp=gaps,
        regularisation_effects=effects,
        per_class_f1={name: [c.f1 for c in cards[name].per_class] for name in ranked},
        findings=findings,
        unavailable=list(unavailable),
        tied_for_best=ranking.tied_for_best(),
        significance=significance,
        seed_spread=list(spreads.values()),
        seed_claims=claims,
        calibration=calibration,
        robustness=robustness,
        uploads=uploads,
        methods=METHODS,
        experiments=experiments,
        datasets=[_dataset(cards, ranking, group) for group in range(len(ranking.groups))],
        zoo_note=_zoo_note(ranking, cards),
    )


def _row(card: ModelCard, ranking: Ranking) -> ComparisonRow:
    samples = card.dataset.test_samples
    low, high = wilson_interval(samples - card.test_errors, samples)
    rank = ranking.ranks[card.name]
    hp = card.hyperparameters  # None for an imported model: its training fields are null
    return ComparisonRow(
        rank=rank.rank,
        name=card.name,
        version=card.version,
        experiment=card.experiment,
        dataset=card.dataset.name,
        test_samples=samples,
        architecture=card.architecture,
        framework=card.framework,
        regularisation=regularisation_of(card),
        dropout_rate=hp.dropout_rate if hp else None,
        noise_stddev=hp.noise_stddev if hp else None,
        test_accuracy=card.test_accuracy,
        test_accuracy_low=low,
        test_accuracy_high=high,
        tied_with=list(rank.tied_with),
        test_errors=card.test_errors,
        test_loss=card.test_loss,
        macro_f1=card.macro_avg.f1,
        parameter_count=card.parameter_count,
        onnx_size_bytes=card.onnx.size_bytes,
        training_seconds=card.training_seconds,
        epochs=hp.epochs if hp else None,
        latency_p50_ms=None,
        latency_p95_ms=None,
        warmup_latency_p50_ms=None,
    )


# -- per experiment and per dataset ----------------------------------------------------------


def _experiment_order(experiment: str, records: Mapping[str, ExperimentRecord]) -> tuple[str, str]:
    record = records.get(experiment)
    # Seed 000's first (in SEED_000_EXPERIMENTS order), then by seed document, then id.
    if experiment in SEED_000_EXPERIMENTS:
        return "000", str(SEED_000_EXPERIMENTS.index(experiment))
    return (record.seed_document if record is not None else "999"), experiment


def _experiments(
    cards: Mapping[str, ModelCard],
    records: Mapping[str, ExperimentRecord],
    seed_000_tests: Sequence[PairedTest],
) -> list[ExperimentComparison]:
    members: dict[str, dict[str, ModelCard]] = {}
    for name, card in cards.items():
        members.setdefault(card.experiment, {})[name] = card
    sections = []
    for experiment in sorted(members, key=lambda e: _experiment_order(e, records)):
        own = members[experiment]
        ranking = rank_within_noise(own)
        ranked = [name for group in ranking.groups for name in group]
        if experiment in SEED_000_EXPERIMENTS:
            tests = [t for t in seed_000_tests if t.model in own]
        else:
            tests = _every_pair(own, ranked, experiment)
        record = records.get(experiment)
        first = own[ranked[0]]
        findings = [_say_best(ranking, group, own, scope="of the experiment") for group in range(len(ranking.groups))]
        findings += [_say_test(cards, t) for t in tests]
        if record is not None and record.trials:
            top = max(record.trials, key=lambda t: (t.validation_accuracy, -t.trial))
            findings.append(f"Search: {_count(len(record.trials), 'trial')}; the best by validation accuracy, trial {top.trial}, "
                            f"reached {top.validation_accuracy:.2%} ({_parameters_text(top.parameters)})")
        sections.append(
            ExperimentComparison(
                id=experiment,
                title=record.title if record is not None else None,
                seed_document=record.seed_document if record is not None else None,
                question=record.question if record is not None else None,
                protocol=record.protocol if record is not None else None,
                split=record.split if record is not None else None,
                dataset=first.dataset.name,
                test_samples=first.dataset.test_samples,
                models=[_row(own[name], ranking) for name in ranked],
                best=ranking.best(),
                tied_for_best=ranking.tied_for_best(),
                significance=tests,
                seed_claims=list(record.seed_claims) if record is not None else [],
                trials=len(record.trials) if record is not None else 0,
                studies=[s.title for s in record.studies] if record is not None else [],
                notes=list(record.notes) if record is not None else [],
                findings=findings,
            )
        )
    return sections


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _parameters_text(parameters: Mapping[str, object]) -> str:
    return ", ".join(f"{key} {value}" for key, value in parameters.items())


def _every_pair(cards: Mapping[str, ModelCard], ranked: Sequence[str], experiment: str) -> list[PairedTest]:
    """Every pair of an experiment's models on the same test set (the better-ranked one as the model), Holm over them."""
    questions = [(f"within {experiment}", a, b) for b, a in itertools.combinations(ranked, 2)]
    return _significance(cards, questions)


def _dataset(cards: Mapping[str, ModelCard], ranking: Ranking, group: int) -> DatasetComparison:
    names = ranking.groups[group]
    best = cards[names[0]]
    low, high = wilson_interval(best.dataset.test_samples - best.test_errors, best.dataset.test_samples)
    families = []
    for family in ("mlp", "cnn"):
        members = [n for n in names if cards[n].architecture == family]
        if not members:
            continue
        top, card = members[0], cards[members[0]]
        f_low, f_high = wilson_interval(card.dataset.test_samples - card.test_errors, card.dataset.test_samples)
        families.append(
            FamilyBest(
                family=family,
                model=top,
                experiment=card.experiment,
                framework=card.framework,
                test_accuracy=card.test_accuracy,
                test_accuracy_low=f_low,
                test_accuracy_high=f_high,
                test_errors=card.test_errors,
                parameter_count=card.parameter_count,
                latency_p50_ms=None,
                warmup_latency_p50_ms=None,
                tied_in_family=[n for n in members if n == top or n in ranking.ranks[top].tied_with],
            )
        )
    gap = None
    if len(families) == 2:
        mlp, cnn = families[0].model, families[1].model
        test = paired_tests(cards, [(mlp, cnn)]).tests[(mlp, cnn)]
        significant = test.p_value < ALPHA
        gap = PairedTest(
            question=f"best CNN vs best MLP on {_dataset_name(best)}",
            baseline=mlp,
            model=cnn,
            only_baseline_right=test.only_a,
            only_model_right=test.only_b,
            p_value=test.p_value,
            p_holm=test.p_value,
            significant=significant,
            better=(mlp if test.only_a > test.only_b else cnn) if significant else None,
        )
    return DatasetComparison(
        dataset=best.dataset.name,
        test_samples=best.dataset.test_samples,
        interval_half_width=(high - low) / 2,
        models=list(names),
        best=names[0],
        tied_for_best=ranking.tied_for_best(group),
        families=families,
        family_gap=gap,
    )


def _dataset_name(card: ModelCard) -> str:
    return "MNIST" if card.dataset.name == "mnist" else card.dataset.name


def _zoo_note(ranking: Ranking, cards: Mapping[str, ModelCard]) -> str:
    sets = []
    for group in ranking.groups:
        card = cards[group[0]]
        low, high = wilson_interval(card.dataset.test_samples - card.test_errors, card.dataset.test_samples)
        sets.append(f"{card.dataset.test_samples:,} {_dataset_name(card)} test images ({len(group)} "
                    f"model{'s' if len(group) > 1 else ''}; the best one's 95% CI ±{50 * (high - low):.2f} points)")
    text = ("Models are ranked and tested (McNemar) only against models scored on the same test images: "
            + "; ".join(sets) + ".")
    if len(sets) > 1:
        text += (" An accuracy on one test set and an accuracy on another are not the same measurement (other "
                 "images, other sizes, other difficulty): no test compares them, and no rank spans them.")
    return text


def _delta(cards: Mapping[str, ModelCard], baseline: str, model: str) -> dict[str, Any]:
    base, other = cards[baseline], cards[model]
    return {
        "baseline": baseline,
        "model": model,
        "test_accuracy_delta": other.test_accuracy - base.test_accuracy,
        "test_errors_delta": other.test_errors - base.test_errors,
        "test_loss_delta": other.test_loss - base.test_loss,
        "macro_f1_delta": other.macro_avg.f1 - base.macro_avg.f1,
    }


_REG_ORDER = ("none", "dropout", "noise", "dropout+noise")


def _rank_of_reg(reg: str) -> int:
    return _REG_ORDER.index(reg) if reg in _REG_ORDER else len(_REG_ORDER)


def _ordered(regs: Iterable[str]) -> list[str]:
    return sorted(regs, key=_rank_of_reg)


def _gap_question(regularisation: str) -> str:
    return "CNN vs MLP, " + ("unregularised" if regularisation == "none" else f"with {regularisation}")


def _effect_question(architecture: str, regularisation: str) -> str:
    return f"{regularisation} on the {architecture.upper()}"


def _significance(cards: Mapping[str, ModelCard], questions: list[tuple[str, str, str]]) -> list[PairedTest]:
    """McNemar on each (question, baseline, model), Holm-adjusted over these questions only."""
    asked = [(q, b, m) for q, b, m in questions if same_test_set(cards[b], cards[m])]
    tests = paired_tests(cards, [(b, m) for _, b, m in asked])
    results = []
    for question, baseline, model in asked:
        test, adjusted = tests.tests[(baseline, model)], tests.adjusted[(baseline, model)]
        significant = adjusted < ALPHA
        better = None
        if significant:
            better = baseline if test.only_a > test.only_b else model
        results.append(
            PairedTest(
                question=question,
                baseline=baseline,
                model=model,
                only_baseline_right=test.only_a,
                only_model_right=test.only_b,
                p_value=test.p_value,
                p_holm=adjusted,
                significant=significant,
                better=better,
            )
        )
    return results


# -- seed spread -----------------------------------------------------------------------------


def _runs_of(name: str, card: ModelCard, replicates: Mapping[str, list[ReplicateRun]]) -> list[tuple[int, float, int, float]]:
    """(seed, accuracy, errors, loss) of the served run and every replicate of the same protocol."""
    hp, seed = card.hyperparameters, card.seed
    if hp is None or seed is None:  # an imported model: no seed, no protocol to repeat
        return []
    runs = [(seed, card.test_accuracy, card.test_errors, card.test_loss)]
    for run in replicates.get(name, []):
        same_protocol = (run.epochs, run.batch_size, run.test_samples) == (hp.epochs, hp.batch_size, card.dataset.test_samples)
        if same_protocol and run.seed != seed:
            runs.append((run.seed, run.test_accuracy, run.test_errors, run.test_loss))
    return runs


def _seed_spreads(cards: Mapping[str, ModelCard], replicates: Mapping[str, list[ReplicateRun]]) -> dict[str, SeedSpread]:
    spreads = {}
    for name in sorted(cards, key=lambda n: (cards[n].architecture != "mlp", _rank_of_reg(regularisation_of(cards[n])), n)):
        runs = _runs_of(name, cards[name], replicates)
        if not runs:
            continue
        accuracy = spread_of([r[1] for r in runs])
        loss = spread_of([r[3] for r in runs])
        spreads[name] = SeedSpread(
            variant=name,
            runs=accuracy.n,
            seeds=[r[0] for r in runs],
            test_accuracy_mean=accuracy.mean,
            test_accuracy_std=accuracy.std,
            test_accuracy_min=accuracy.low,
            test_accuracy_max=accuracy.high,
            test_errors_min=min(r[2] for r in runs),
            test_errors_max=max(r[2] for r in runs),
            test_loss_mean=loss.mean,
            test_loss_std=loss.std,
            served_seed=runs[0][0],
        )
    return spreads


SEED_CLAIMS = (
    # (claim, (architecture, regularisation) of the baseline, of the model claimed better)
    ("CNN beats MLP, unregularised", ("mlp", "none"), ("cnn", "none")),
    ("CNN beats MLP, with dropout", ("mlp", "dropout"), ("cnn", "dropout")),
    ("CNN beats MLP, with noise", ("mlp", "noise"), ("cnn", "noise")),
    ("dropout helps the MLP", ("mlp", "none"), ("mlp", "dropout")),
    ("noise helps the MLP", ("mlp", "none"), ("mlp", "noise")),
    ("dropout helps the CNN", ("cnn", "none"), ("cnn", "dropout")),
    ("noise helps the CNN", ("cnn", "none"), ("cnn", "noise")),
    ("noise beats dropout on the CNN", ("cnn", "dropout"), ("cnn", "noise")),
)


def _seed_claims(
    variants: Mapping[tuple[str, str], str],
    cards: Mapping[str, ModelCard],
    replicates: Mapping[str, list[ReplicateRun]],
) -> list[SeedClaim]:
    """The seed's claims over training runs: exact permutation tests, Holm-adjusted over the claims."""
    rows: list[tuple[str, str, str, list[float], list[float], float | None]] = []
    for claim, base_key, model_key in SEED_CLAIMS:
        if base_key not in variants or model_key not in variants:
            continue
        baseline, model = variants[base_key], variants[model_key]
        a = [r[1] for r in _runs_of(baseline, cards[baseline], replicates)]
        b = [r[1] for r in _runs_of(model, cards[model], replicates)]
        # One run against one has a single relabelling pair: nothing to test.
        p = permutation_test(b, a) if len(a) + len(b) >= 3 else None
        rows.append((claim, baseline, model, a, b, p))
    tested = [i for i, row in enumerate(rows) if row[5] is not None]
    adjusted = dict(zip(tested, holm_adjust([rows[i][5] or 0.0 for i in tested]), strict=True))
    claims = []
    for i, (claim, baseline, model, a, b, p) in enumerate(rows):
        delta = fmean(b) - fmean(a)
        p_holm = adjusted.get(i)
        separated = min(b) > max(a) if delta > 0 else max(b) < min(a)
        verdict: Verdict = "not shown"
        if p_holm is not None and p_holm < ALPHA:
            verdict = "supported" if delta > 0 else "contradicted"
        elif p is not None and separated:
            # Not significant, yet no run contradicts the direction: say so rather than "nothing".
            verdict = "consistent" if delta > 0 else "against"
        claims.append(
            SeedClaim(
                claim=claim,
                baseline=baseline,
                model=model,
                runs=[len(a), len(b)],
                mean_accuracy_delta=delta,
                separated=separated,
                p_value=p,
                smallest_possible_p=_smallest_p(len(a), len(b)) if p is not None else None,
                p_holm=p_holm,
                verdict=verdict,
            )
        )
    return claims


def _smallest_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided permutation p-value n_a and n_b distinct values can give: the most
    extreme split (and, with equal sizes, its mirror) out of all C(n_a + n_b, n_a)."""
    return (2 if n_a == n_b else 1) / math.comb(n_a + n_b, n_a)


# -- calibration and robustness --------------------------------------------------------------


def _calibration_row(name: str, card: ModelCard) -> CalibrationRow:
    c = card.calibration
    assert c is not None
    return CalibrationRow(
        name=name,
        temperature=c.temperature,
        applied=c.applied,
        test_ece_before=c.test_ece_before,
        test_ece_after=c.test_ece_after,
        test_nll_before=c.test_nll_before,
        test_nll_after=c.test_nll_after,
    )


def _robustness(record: RobustnessRecord, cards: Mapping[str, ModelCard]) -> list[RobustnessSummary]:
    # Only the models that were evaluated as the files now served (same ONNX hash).
    served = [name for name in cards if record.models.get(name) == cards[name].onnx.sha256]
    summaries = []
    for curve in record.curves:
        clean = 0  # the first strength of every curve leaves the images as they are
        names = [n for n in served if n in curve.accuracy]
        if not names:
            continue
        means = {n: fmean(a for i, a in enumerate(curve.accuracy[n]) if i != clean) for n in names}
        summaries.append(
            RobustnessSummary(
                corruption=curve.corruption,
                description=curve.description,
                unit=curve.unit,
                strengths=curve.strengths,
                accuracy={n: curve.accuracy[n] for n in names},
                mean_corrupted_accuracy=means,
                most_robust=max(names, key=lambda n: (means[n], n)),
            )
        )
    return summaries


def _uploads(store: Path, cards: Mapping[str, ModelCard]) -> list[UploadAccuracy]:
    """The served models' accuracy on the validation uploads, best first, each but the first tested
    against the first upload by upload (exact McNemar, Holm over those tests) where the record keeps
    which uploads each model read right."""
    evaluation = read_upload_evaluation(store)
    if evaluation is None or evaluation.uploads < 1:
        return []
    # A model's figures count only for the file that was scored (older records carry no hashes).
    names = sorted((n for n in evaluation.accuracy
                    if n in cards and evaluation.onnx_sha256.get(n, cards[n].onnx.sha256) == cards[n].onnx.sha256),
                   key=lambda n: (-evaluation.accuracy[n], n))
    if not names:
        return []
    leader, correct = names[0], evaluation.correct
    paired = [n for n in names[1:] if leader in correct and n in correct]
    # only_a: uploads the leader read right and the model wrong.
    tests = {n: compare_paired(np.flatnonzero(~correct[leader]), np.flatnonzero(~correct[n])) for n in paired}
    adjusted = dict(zip(paired, holm_adjust([tests[n].p_value for n in paired]), strict=True))
    rows = []
    for name in names:
        right = round(evaluation.accuracy[name] * evaluation.uploads)
        low, high = wilson_interval(right, evaluation.uploads)
        against = None
        if name in tests:
            test, significant = tests[name], adjusted[name] < ALPHA
            against = PairedTest(
                question=f"uploads: {name} vs {leader}", baseline=leader, model=name,
                only_baseline_right=test.only_a, only_model_right=test.only_b, p_value=test.p_value,
                p_holm=adjusted[name], significant=significant,
                better=(leader if test.only_a > test.only_b else name) if significant else None,
            )
        rows.append(UploadAccuracy(name=name, accuracy=evaluation.accuracy[name], low=low, high=high,
                                   uploads=evaluation.uploads, against_leader=against))
    return rows


# -- findings in words -----------------------------------------------------------------------


def _format_p(p: float) -> str:
    if p >= 0.01:
        return f"{p:.2f}"
    if p >= 0.001:
        return f"{p:.3f}"
    return f"{p:.1e}"


def _interval(card: ModelCard) -> str:
    samples = card.dataset.test_samples
    low, high = wilson_interval(samples - card.test_errors, samples)
    return f"95% CI {low:.2%} to {high:.2%}"


def _say_best(ranking: Ranking, group: int, cards: Mapping[str, ModelCard], scope: str = "") -> str:
    names = ranking.groups[group]
    card = cards[names[0]]
    where = f"{card.dataset.test_samples:,} {_dataset_name(card)} test images"
    scope = f" {scope}" if scope else ""
    text = (f"{card.name} has the highest test accuracy{scope}: {card.test_accuracy:.2%} "
            f"({_interval(card)}; {card.test_errors} errors in the {where})")
    if len(names) == 1:
        return text + "; no other model here was scored on these images"
    tied = [name for name in ranking.tied_for_best(group) if name != card.name]
    if not tied:
        return text + "; every other model is significantly less accurate on them (McNemar, Holm over all pairs)"
    return text + (f"; not significantly better than {', '.join(tied)} (McNemar, Holm over all pairs), "
                   "so these share rank 1")


def _effect_words(accuracy_delta: float, errors_delta: int) -> str:
    points = accuracy_delta * 100
    if errors_delta == 0:
        return "no change in test errors"
    direction = "fewer" if errors_delta < 0 else "more"
    return f"{points:+.2f} points of test accuracy ({abs(errors_delta)} {direction} errors)"


def _say_test(cards: Mapping[str, ModelCard], test: PairedTest) -> str:
    base, model = cards[test.baseline], cards[test.model]
    delta = _effect_words(model.test_accuracy - base.test_accuracy, model.test_errors - base.test_errors)
    p = f"p = {_format_p(test.p_value)}, Holm-adjusted {_format_p(test.p_holm)}"
    verdict = f"significant ({p})" if test.significant else f"not significant ({p})"
    return f"{test.question}: {test.model} vs {test.baseline}: {delta}, {verdict}"


def _say_claim(claim: SeedClaim, spreads: Mapping[str, SeedSpread]) -> str:
    def figure(name: str) -> str:
        s = spreads[name]
        std = f" ± {100 * s.test_accuracy_std:.2f}" if s.test_accuracy_std is not None else ""
        return f"{name} {100 * s.test_accuracy_mean:.2f}{std}% (n = {s.runs})"

    text = f"Over training seeds, '{claim.claim}': {claim.verdict}: {figure(claim.model)} vs {figure(claim.baseline)}"
    if claim.p_value is None:
        return text + "; one run against one: nothing to test"
    text += f", permutation p = {_format_p(claim.p_value)}, Holm-adjusted {_format_p(claim.p_holm or 1.0)}"
    if claim.verdict in ("consistent", "against") and claim.smallest_possible_p is not None:
        text += (f"; every run of the better one beats every run of the other, but {claim.runs[0]} + "
                 f"{claim.runs[1]} runs cannot give p below {_format_p(claim.smallest_possible_p)} before Holm")
    return text


def _say_calibration(rows: Sequence[CalibrationRow]) -> str:
    lowered = [r for r in rows if r.test_ece_after < r.test_ece_before]
    parts = ", ".join(f"{r.name} {r.test_ece_before:.2%} -> {r.test_ece_after:.2%} (T = {r.temperature:.2f})" for r in rows)
    return (f"Calibration: temperature scaling fitted on the validation split lowers the test ECE of "
            f"{len(lowered)} of {len(rows)} models: {parts}")


def _say_robustness(summaries: Sequence[RobustnessSummary], cards: Mapping[str, ModelCard]) -> list[str]:
    if not summaries:
        return []
    by_arch: dict[str, list[str]] = {}
    for name, card in cards.items():
        if card.experiment == "regularisation" and not (card.hyperparameters and card.hyperparameters.augmentation):  # the seed's variants
            by_arch.setdefault(card.architecture, []).append(name)
    lines = []
    for s in summaries:
        arch_means = {arch: fmean(s.mean_corrupted_accuracy[n] for n in names if n in s.mean_corrupted_accuracy)
                      for arch, names in by_arch.items()
                      if any(n in s.mean_corrupted_accuracy for n in names)}
        arch_text = ", ".join(f"{arch.upper()}s {mean:.1%}" for arch, mean in sorted(arch_means.items()))
        lines.append(f"Robustness to {s.corruption} ({s.description}): most robust {s.most_robust} "
                     f"({s.mean_corrupted_accuracy[s.most_robust]:.1%} mean over the corrupted strengths); "
                     f"seed variants by architecture: {arch_text}")
    return lines


def _say_uploads(rows: Sequence[UploadAccuracy]) -> str:
    first, second = rows[0], rows[1]
    text = (f"User-style validation uploads ({first.uploads:,}): {first.name} {first.accuracy:.2%} "
            f"({first.low:.2%} to {first.high:.2%}) leads {second.name} {second.accuracy:.2%} "
            f"({second.low:.2%} to {second.high:.2%})")
    test = second.against_leader
    if test is None:
        # Overlapping intervals do not prove a tie (a paired test can separate them), but this record
        # keeps no per-upload results to run one.
        overlap = second.high >= first.low
        return text + ("; their 95% intervals overlap and no per-upload results are stored for a paired test, so "
                       "the lead is unproven" if overlap else "; their 95% intervals do not overlap")
    behind = len(rows) - 1
    p = (f"p = {_format_p(test.p_value)}, Holm-adjusted {_format_p(test.p_holm)} over the {behind} "
         f"model{'s' if behind > 1 else ''} behind it")
    verdict = "significant" if test.significant else "not significant, so the lead is unproven"
    tied = [row.name for row in rows[1:] if row.against_leader is not None and not row.against_leader.significant]
    ties = f"; {len(tied)} model(s) not significantly behind it: {', '.join(tied)}" if tied else \
        "; every other model is significantly behind it"
    return (text + f"; upload by upload, {test.only_baseline_right} only {first.name} read right against "
            f"{test.only_model_right} only {second.name}: {verdict} ({p})" + ties)
