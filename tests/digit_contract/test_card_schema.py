"""The model card schema: round trip, and refusal of inconsistent or unknown content."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from digit_contract.card import ModelCard
from tests.factories import make_card


def test_card_round_trips_through_json(tmp_path: Path) -> None:
    card = make_card(errors=((3, 5, 3), (17, 9, 4)))
    card.write(tmp_path / "card.json")
    assert ModelCard.read(tmp_path / "card.json") == card
    assert json.loads((tmp_path / "card.json").read_text())["test_accuracy"] == 0.998


def _corrupted(**changes: object) -> dict[str, object]:
    raw = json.loads(make_card().model_dump_json())
    raw.update(changes)
    return raw


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"test_accuracy": 0.5}, "test_accuracy does not match the confusion matrix"),
        ({"test_errors": 2}, "test_errors, confusion_matrix and misclassified disagree"),
        ({"misclassified": []}, "test_errors, confusion_matrix and misclassified disagree"),
        ({"confusion_matrix": [[100] * 10] * 9}, "confusion_matrix must be 10x10"),
        ({"history": []}, "history must have one record per epoch"),
        ({"test_accuracy": 1.5}, "Input should be less than or equal to 1"),
        ({"name": "../etc"}, "String should match pattern"),
        ({"surprise": 1}, "Extra inputs are not permitted"),
    ],
)
def test_inconsistent_cards_are_rejected(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        ModelCard.model_validate(_corrupted(**changes))


def test_a_misclassification_must_be_wrong() -> None:
    with pytest.raises(ValidationError, match="a misclassification must have predicted != label"):
        make_card(errors=((3, 5, 5),))
