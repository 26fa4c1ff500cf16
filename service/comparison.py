"""The variants compared: ranks, architecture gap and regularisation effects, from cards and this server.

The seed asked which helps more on MNIST, a CNN over an MLP, or Dropout / Gaussian noise over no
regularisation. The answer is computed from the cards of the ready models (their figures are those
of the ONNX files being served) and the latency the registry measured here. Variants are
recognised from their card (architecture, dropout rate, noise stddev), not from their names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from service.card import ModelCard
from service.registry import ServedModel
from service.schemas import ArchitectureGap, ComparisonRow, ModelComparison, RegularisationEffect, Unavailable


def regularisation_of(card: ModelCard) -> str:
    """`none`, `dropout`, `noise` or `dropout+noise`, from the card's hyperparameters, with
    `+augmented` (or `augmented` alone) when the training images were augmented."""
    parts = []
    if card.hyperparameters.dropout_rate > 0:
        parts.append("dropout")
    if card.hyperparameters.noise_stddev > 0:
        parts.append("noise")
    # Augmented training is another protocol: as part of the key, such a model gets its own row
    # and never stands in for the seed's `dropout` or `noise` variant in the deltas.
    if card.hyperparameters.augmentation:
        parts.append("augmented")
    return "+".join(parts) or "none"


def compare_models(models: Mapping[str, ServedModel]) -> ModelComparison:
    """Rank the ready models and compute the deltas the seed's question is about."""
    cards = {name: m.card for name, m in models.items() if m.ready and m.card is not None}
    unavailable = [
        Unavailable(name=name, reason=m.reason or "not ready") for name, m in sorted(models.items()) if name not in cards
    ]
    ranked = sorted(cards, key=lambda name: (-cards[name].test_accuracy, cards[name].test_loss, name))
    rows = [_row(rank, models[name], cards[name]) for rank, name in enumerate(ranked, start=1)]

    # (architecture, regularisation) -> model name; the first (best-ranked) wins if two match.
    variants: dict[tuple[str, str], str] = {}
    for name in ranked:
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
    findings = [_say_gap(gap) for gap in gaps] + [_say_effect(effect) for effect in effects]
    if rows:
        best = rows[0]
        samples = cards[best.name].dataset.test_samples
        findings.insert(0, f"{best.name} ranks first: {best.test_accuracy:.2%} test accuracy "
                           f"({best.test_errors} errors in {samples:,} test images)")
    return ModelComparison(
        best=ranked[0] if ranked else None,
        models=rows,
        cnn_vs_mlp=gaps,
        regularisation_effects=effects,
        per_class_f1={name: [c.f1 for c in cards[name].per_class] for name in ranked},
        findings=findings,
        unavailable=unavailable,
    )


def _row(rank: int, model: ServedModel, card: ModelCard) -> ComparisonRow:
    return ComparisonRow(
        rank=rank,
        name=model.name,
        version=model.version,
        architecture=card.architecture,
        regularisation=regularisation_of(card),
        dropout_rate=card.hyperparameters.dropout_rate,
        noise_stddev=card.hyperparameters.noise_stddev,
        test_accuracy=card.test_accuracy,
        test_errors=card.test_errors,
        test_loss=card.test_loss,
        macro_f1=card.macro_avg.f1,
        parameter_count=card.parameter_count,
        onnx_size_bytes=card.onnx.size_bytes,
        training_seconds=card.training_seconds,
        epochs=card.hyperparameters.epochs,
        latency_p50_ms=model.latency.p50_ms if model.latency else None,
        latency_p95_ms=model.latency.p95_ms if model.latency else None,
    )


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


def _effect_words(accuracy_delta: float, errors_delta: int) -> str:
    points = accuracy_delta * 100
    if errors_delta == 0:
        return "no change in test errors"
    direction = "fewer" if errors_delta < 0 else "more"
    return f"{points:+.2f} points of test accuracy ({abs(errors_delta)} {direction} errors)"


def _say_gap(gap: ArchitectureGap) -> str:
    label = "unregularised" if gap.regularisation == "none" else f"with {gap.regularisation}"
    return f"CNN vs MLP, {label}: {gap.model} vs {gap.baseline}: {_effect_words(gap.test_accuracy_delta, gap.test_errors_delta)}"


def _say_effect(effect: RegularisationEffect) -> str:
    return (f"{effect.regularisation} on the {effect.architecture.upper()}: {effect.model} vs {effect.baseline}: "
            f"{_effect_words(effect.test_accuracy_delta, effect.test_errors_delta)}")
