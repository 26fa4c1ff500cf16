"""The MNIST test sample sent as image files gets the raw tensors' predictions; photos of it nearly so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.factories import encode
from tests.service.conftest import MODEL_NAMES, multipart, raw_probabilities
from training.data import RawSplit

BATCH = 16


def predict_all(client: TestClient, name: str, files: list[bytes]) -> np.ndarray:
    digits: list[int] = []
    for start in range(0, len(files), BATCH):
        response = client.post(f"/predict?model={name}", files=multipart(*files[start : start + BATCH]))
        assert response.status_code == 200, response.text
        digits += [answer["digit"] for answer in response.json()]
    return np.asarray(digits)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_mnist_as_png_reproduces_the_raw_tensor_predictions(
    client: TestClient, store: Path, mnist_test: RawSplit, name: str
) -> None:
    served = predict_all(client, name, [encode(image) for image in mnist_test.images])
    raw = raw_probabilities(store, name, mnist_test.images).argmax(axis=1)
    assert (served == raw).mean() == 1.0
    # Hence the same accuracy: within 0.1 points of the raw tensors (exactly equal, in fact).
    assert abs((served == mnist_test.labels).mean() - (raw == mnist_test.labels).mean()) <= 0.001


def photograph(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """The digit as a user would send it: dark ink on light, noisy paper, big and off-centre, as JPEG."""
    ink = np.asarray(Image.fromarray(255 - digit).resize((252, 252), Image.Resampling.BICUBIC), dtype=np.int16)
    page = np.full((600, 800), 235, dtype=np.int16)
    top, left = int(rng.integers(0, 600 - 252)), int(rng.integers(0, 800 - 252))
    page[top : top + 252, left : left + 252] = np.minimum(ink, 235)
    page += rng.integers(-12, 12, page.shape, dtype=np.int16)
    return encode(np.clip(page, 0, 255).astype(np.uint8), "JPEG", quality=85)


def test_photographed_mnist_digits_keep_their_predictions(client: TestClient, store: Path, mnist_test: RawSplit) -> None:
    rng = np.random.default_rng(7)
    images, labels = mnist_test.images[:160], mnist_test.labels[:160]
    name = client.get("/models").json()["default_model"]
    served = predict_all(client, name, [photograph(image, rng) for image in images])
    raw = raw_probabilities(store, name, images).argmax(axis=1)
    assert (served == raw).mean() >= 0.95
    assert (served == labels).mean() >= (raw == labels).mean() - 0.04
