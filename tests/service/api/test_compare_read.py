"""POST /models/compare?read=true (issue 26): every ready model's reading of one number, as POST /read
gives it with that model, and how far they agree on the text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bench.numbers.compose import Layout, compose_number
from tests.factories import encode
from tests.service.api.test_read import canvas, first_of
from tests.service.conftest import MODEL_NAMES, model_files, multipart
from training.data import RawSplit


@pytest.fixture(scope="module")
def number(mnist_test: RawSplit) -> bytes:
    """"2047" drawn on a transparent canvas, as the web page's "Read a number" mode sends it."""
    return canvas(compose_number(first_of(mnist_test, "2047"), Layout(), np.random.default_rng(0)))


def test_every_ready_model_reads_the_number_as_read_does(client: TestClient, number: bytes) -> None:
    response = client.post("/models/compare?read=true", files=multipart(number))
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["model"] for r in body["readings"]] == list(MODEL_NAMES)
    for reading in body["readings"]:
        alone = client.post(f"/read?model={reading['model']}", files=multipart(number)).json()
        # The same cuts, digits and probabilities as the model's own POST /read: the line is found once
        # for all models, but each chooses where its digits divide.
        assert reading["text"] == alone["text"]
        assert [d["box"] for d in reading["digits"]] == [d["box"] for d in alone["digits"]]
        for mine, its in zip(reading["digits"], alone["digits"], strict=True):
            assert mine["probabilities"] == pytest.approx(its["probabilities"], abs=1e-6)
        assert reading["confidence"] == pytest.approx(alone["confidence"], abs=1e-6)
    assert body["unavailable"] == []


def test_the_agreement_is_on_the_text(client: TestClient, number: bytes) -> None:
    body = client.post("/models/compare?read=true", files=multipart(number)).json()
    votes: dict[str, list[str]] = {}
    for reading in body["readings"]:
        votes.setdefault(reading["text"], []).append(reading["model"])
    top = max(len(models) for models in votes.values())
    assert body["agreement"] == {
        "majority_text": min(text for text, models in votes.items() if len(models) == top),
        "votes": dict(sorted(votes.items())),
        "agreement": pytest.approx(top / len(MODEL_NAMES)),
        "unanimous": len(votes) == 1,
    }
    # The zoo's CNNs read this clear number right: the majority's text is the number.
    assert body["agreement"]["majority_text"] == "2047"


def test_explain_shows_each_models_digits_as_it_saw_them(client: TestClient, number: bytes) -> None:
    body = client.post("/models/compare?read=true&explain=true", files=multipart(number)).json()
    assert all(d["prepared_png"] for reading in body["readings"] for d in reading["digits"])
    plain = client.post("/models/compare?read=true", files=multipart(number)).json()
    assert all(d["prepared_png"] is None for reading in plain["readings"] for d in reading["digits"])


def test_without_read_the_models_compare_one_digit(client: TestClient, mnist_test: RawSplit) -> None:
    body = client.post("/models/compare?read=false", files=multipart(encode(mnist_test.images[0]))).json()
    assert set(body) == {"predictions", "agreement", "unavailable"}
    assert body["agreement"]["majority_digit"] == int(mnist_test.labels[0])


def test_no_digit_and_two_images_are_the_errors_of_read(client: TestClient, mnist_test: RawSplit) -> None:
    blank = encode(np.full((64, 64), 255, dtype=np.uint8))
    response = client.post("/models/compare?read=true", files=multipart(blank))
    assert (response.status_code, response.json()) == (
        422, {"error": "no ink found: the image is blank or has too little contrast to hold a digit"})
    two = multipart(encode(mnist_test.images[0]), encode(mnist_test.images[1]))
    response = client.post("/models/compare?read=true", files=two)
    assert (response.status_code, response.json()) == (
        422, {"error": "POST /models/compare takes exactly one image, got 2"})


def test_a_model_that_failed_is_listed_as_unavailable(app_factory: Callable[..., FastAPI],
                                                       copy_store: Callable[..., Path], number: bytes) -> None:
    store = copy_store("cnn", "mlp")
    model_files(store, "mlp")[1].unlink()
    with TestClient(app_factory(model_store=store)) as client:
        body = client.post("/models/compare?read=true", files=multipart(number)).json()
    assert [r["model"] for r in body["readings"]] == ["cnn"]
    assert [u["name"] for u in body["unavailable"]] == ["mlp"]
    assert body["agreement"]["unanimous"] is True and body["agreement"]["agreement"] == 1.0


def test_with_no_model_ready_nothing_reads(app_factory: Callable[..., FastAPI], copy_store: Callable[..., Path],
                                           number: bytes) -> None:
    store = copy_store("mlp")
    model_files(store, "mlp")[1].unlink()
    with TestClient(app_factory(model_store=store)) as client:
        response = client.post("/models/compare?read=true", files=multipart(number))
    assert (response.status_code, response.json()) == (503, {"error": "no model is ready to answer"})
