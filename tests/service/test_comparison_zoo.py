"""The zoo's comparison: the majority vote of POST /models/compare, one ranking rule, per-experiment
sections and the across-zoo view grouped by dataset."""

from __future__ import annotations

import pytest

from service.comparison import majority_vote
from service.schemas import Prediction, Timings


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
