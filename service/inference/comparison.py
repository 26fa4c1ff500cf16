"""The comparisons the service answers: the models' vote on one image's digit or number (POST
/models/compare) and the zoo's comparison (GET /models/compare) with what only a server knows, its latency.

The zoo's statistics work on cards and records alone and live in the contract
(`digit_contract.comparison`), shared with the training report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from digit_contract.comparison import compare_cards
from digit_contract.comparison_schemas import ComparisonRow, FamilyBest, ModelComparison, Unavailable
from service.models.registry import ServedModel
from service.schemas import Agreement, NumberReading, Prediction, TextAgreement

_Answer = TypeVar("_Answer", int, str)


def majority_vote(predictions: Sequence[Prediction]) -> Agreement:
    """How far the models' answers for one image agree (POST /models/compare): the digit with the most
    votes, on a tie the smaller digit, so the answer does not depend on the order of the models."""
    if not predictions:
        raise ValueError("a vote needs at least one prediction")
    majority, votes = _tally((p.digit, p.model) for p in predictions)
    return Agreement(
        majority_digit=majority,
        votes={str(digit): models for digit, models in votes.items()},
        agreement=len(votes[majority]) / len(predictions),
        unanimous=len(votes) == 1,
    )


def text_vote(readings: Sequence[NumberReading]) -> TextAgreement:
    """How far the models' readings of one number agree (POST /models/compare?read=true): the text
    with the most votes, on a tie the first in string order."""
    if not readings:
        raise ValueError("a vote needs at least one reading")
    majority, votes = _tally((r.text, r.model) for r in readings)
    return TextAgreement(majority_text=majority, votes=votes, agreement=len(votes[majority]) / len(readings),
                         unanimous=len(votes) == 1)


def _tally(answers: Iterable[tuple[_Answer, str]]) -> tuple[_Answer, dict[_Answer, list[str]]]:
    """The answer most models gave (on a tie the smallest, so that the order of the models does not
    matter) and the models behind each answer, in answer order."""
    votes: dict[_Answer, list[str]] = {}
    for answer, model in answers:
        votes.setdefault(answer, []).append(model)
    majority = min(votes, key=lambda answer: (-len(votes[answer]), answer))
    return majority, dict(sorted(votes.items()))


def compare_served(models: Mapping[str, ServedModel], store: Path | None = None) -> ModelComparison:
    """The comparison of the ready models' cards (`store`'s records beside them), the others listed
    as unavailable; without latency (`with_latency` adds it)."""
    cards = {name: m.card for name, m in models.items() if m.ready and m.card is not None}
    unavailable = [
        Unavailable(name=name, reason=m.reason or "not ready") for name, m in sorted(models.items()) if name not in cards
    ]
    return compare_cards(cards, store, unavailable=unavailable)


def with_latency(comparison: ModelComparison, models: Mapping[str, ServedModel]) -> ModelComparison:
    """`comparison` with the latency each model has had on this worker so far: a new object, so
    that a comparison computed once can be answered many times."""

    def row(entry: ComparisonRow) -> ComparisonRow:
        return entry.model_copy(update=_latency_fields(models[entry.name]))

    def family(best: FamilyBest) -> FamilyBest:
        latency = _latency_fields(models[best.model])
        return best.model_copy(update={"latency_p50_ms": latency["latency_p50_ms"],
                                       "warmup_latency_p50_ms": latency["warmup_latency_p50_ms"]})

    return comparison.model_copy(update={
        "models": [row(entry) for entry in comparison.models],
        "experiments": [e.model_copy(update={"models": [row(entry) for entry in e.models]})
                        for e in comparison.experiments],
        "datasets": [d.model_copy(update={"families": [family(f) for f in d.families]}) for d in comparison.datasets],
    })


def compare_models(models: Mapping[str, ServedModel], store: Path | None = None) -> ModelComparison:
    """GET /models/compare computed afresh: `compare_served` with its latency."""
    return with_latency(compare_served(models, store), models)


def _latency_fields(model: ServedModel) -> dict[str, float | None]:
    """What real requests took per image on this worker (null before the first), and the warm-up's
    best case (single images) apart."""
    seen, warm = model.requests.per_image_stats(), model.latency
    return {
        "latency_p50_ms": seen.p50_ms if seen else None,
        "latency_p95_ms": seen.p95_ms if seen else None,
        "warmup_latency_p50_ms": warm.p50_ms if warm else None,
    }
