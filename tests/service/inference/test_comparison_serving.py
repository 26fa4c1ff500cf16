"""Calibrated answers: /predict applies the card's temperature by default and says so."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from digit_contract.calibration import apply_temperature
from digit_contract.card import ModelCard
from tests.service.conftest import MODEL_NAMES, model_files, raw_probabilities
from training.data import RawSplit


@pytest.fixture(scope="module")
def calibrated_client(store: Path) -> Iterator[TestClient]:
    from service.server.app import create_app
    from tests.service.conftest import make_settings

    with TestClient(create_app(make_settings(store, calibrated_probabilities=True))) as started:
        yield started


def pixels(images: np.ndarray) -> dict[str, list[list[list[float]]]]:
    return {"images": (images / 255.0).tolist()}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_answers_are_temperature_scaled_where_the_card_says_so(
    calibrated_client: TestClient, store: Path, mnist_test: RawSplit, name: str
) -> None:
    card = ModelCard.read(model_files(store, name)[1])
    assert card.calibration is not None
    images = mnist_test.images[:4]
    response = calibrated_client.post(f"/predict?model={name}", json=pixels(images))
    assert response.status_code == 200
    raw = raw_probabilities(store, name, images)
    expected = apply_temperature(raw, card.calibration.temperature) if card.calibration.applied else raw
    for answer, want, plain in zip(response.json(), expected, raw, strict=True):
        assert answer["calibrated"] is card.calibration.applied
        assert answer["probabilities"] == pytest.approx(want.tolist(), abs=1e-5)
        assert answer["digit"] == int(plain.argmax())  # scaling never changes the digit
        assert answer["confidence"] == pytest.approx(float(want.max()), abs=1e-5)


def test_raw_probabilities_when_calibration_is_switched_off(
    app_factory: Callable[..., FastAPI], store: Path, mnist_test: RawSplit
) -> None:
    with TestClient(app_factory(calibrated_probabilities=False)) as client:
        answer = client.post("/predict?model=cnn", json=pixels(mnist_test.images[:1])).json()[0]
    assert answer["calibrated"] is False
    assert answer["probabilities"] == pytest.approx(raw_probabilities(store, "cnn", mnist_test.images[:1])[0].tolist(),
                                                    abs=1e-6)


def test_calibration_is_on_by_default() -> None:
    from service.settings import Settings

    assert Settings().calibrated_probabilities is True
