"""POST /read (issue 26): the number in one upload, in reading order, with the errors of /predict."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient

from bench.numbers.compose import Layout, compose_number
from service.server.app import create_app
from tests.factories import encode
from tests.service.conftest import make_settings, multipart
from training.data import RawSplit


def first_of(mnist: RawSplit, text: str) -> list[npt.NDArray[np.uint8]]:
    return [mnist.images[int(np.flatnonzero(mnist.labels == int(c))[0])] for c in text if c != " "]


def canvas(number: npt.NDArray[np.uint8], height: int = 60) -> bytes:
    """A transparent canvas export: the strokes in the alpha channel, as the web page sends them."""
    big = cv2.resize(number, None, fx=height / 20.0, fy=height / 20.0, interpolation=cv2.INTER_CUBIC)
    alpha = np.pad(big, 30)
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    rgba[..., 3] = alpha
    return encode(rgba)


def test_a_canvas_number_is_read_in_order_and_grouped(client: TestClient, mnist_test: RawSplit) -> None:
    number = compose_number(first_of(mnist_test, "12500"), Layout(groups=(2, 3)), np.random.default_rng(1))
    response = client.post("/read?model=cnn_augmented", files=multipart(canvas(number)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == "12 500"
    assert [d["group"] for d in body["digits"]] == [0, 0, 1, 1, 1]
    assert [d["box"][0] for d in body["digits"]] == sorted(d["box"][0] for d in body["digits"])
    # The number's confidence is that of all its digits at once.
    assert np.isclose(body["confidence"], np.prod([d["confidence"] for d in body["digits"]]))
    assert body["model"] == "cnn_augmented" and body["image"]["method"] == "mnist"


def test_a_raw_body_and_explain(client: TestClient, mnist_test: RawSplit) -> None:
    number = compose_number(first_of(mnist_test, "47"), Layout(), np.random.default_rng(2))
    response = client.post("/read?explain=true", content=canvas(number), headers={"content-type": "image/png"})
    assert response.status_code == 200, response.text
    assert response.json()["text"] == "47"
    assert all(d["prepared_png"] for d in response.json()["digits"])


def test_a_lone_mnist_digit_is_a_one_digit_text(client: TestClient, mnist_test: RawSplit) -> None:
    response = client.post("/read", files=multipart(encode(mnist_test.images[0])))
    assert response.status_code == 200
    assert response.json()["text"] == str(mnist_test.labels[0])
    assert len(response.json()["digits"]) == 1


def test_no_digit_is_the_422_of_predict(client: TestClient) -> None:
    blank = encode(np.full((64, 64), 255, dtype=np.uint8))
    response = client.post("/read", files=multipart(blank))
    assert (response.status_code, response.json()) == (
        422, {"error": "no ink found: the image is blank or has too little contrast to hold a digit"})


def test_read_takes_one_image_and_known_models(client: TestClient, mnist_test: RawSplit) -> None:
    two = client.post("/read", files=multipart(encode(mnist_test.images[0]), encode(mnist_test.images[1])))
    assert (two.status_code, two.json()) == (422, {"error": "POST /read takes exactly one image, got 2"})
    unknown = client.post("/read?model=resnet", files=multipart(encode(mnist_test.images[0])))
    assert unknown.status_code == 404
    pixels = client.post("/read", json={"images": [[[0.0] * 28] * 28]})
    assert pixels.status_code == 415


TOUCHING = Path(__file__).resolve().parents[2] / "data" / "numbers" / "touching-1000.png"


def test_touching_digits_no_cut_parts_are_read_as_a_pair_and_say_so(client: TestClient) -> None:
    response = client.post("/read", files=multipart(TOUCHING.read_bytes()))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"] == "1000"
    assert [d["paired"] for d in body["digits"]] == [True, True, False, False]
    # A pair's sides carry the pair reader's probabilities, a distribution each.
    assert all(np.isclose(sum(d["probabilities"]), 1.0, atol=1e-3) for d in body["digits"])


def test_without_a_pair_reader_touching_digits_are_only_cut(store: Path, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    bare = tmp_path / "store"
    shutil.copytree(store, bare, ignore=shutil.ignore_patterns("pair_reader"))
    with caplog.at_level(logging.WARNING), TestClient(create_app(make_settings(bare))) as client:
        response = client.post("/read", files=multipart(TOUCHING.read_bytes()))
    assert response.status_code == 200, response.text
    assert not any(d["paired"] for d in response.json()["digits"])
    assert "no pair reader" in caplog.text
