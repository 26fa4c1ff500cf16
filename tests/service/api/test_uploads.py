"""Uploads as users send them, one condition at a time, through the served app.

The files in tests/data/uploads were rendered from MNIST *validation* digits by
`python -m evaluation.make_test_uploads` (its manifest records condition, digit, seed and
where the digit is). Each must be answered with its digit by the model that answers image uploads
by default, and the box the answer reports must lie on the digit. The 12 MP photo is rendered here
rather than shipped (3 MB).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from evaluation.render import CONDITIONS, render_upload
from tests.service.conftest import REPO, SAMPLE_DIR, multipart
from training.data import TRAIN_IMAGES, TRAIN_LABELS, load_split

UPLOADS = REPO / "tests" / "data" / "uploads"
MANIFEST = json.loads((UPLOADS / "manifest.json").read_text())
ENTRIES: list[dict[str, Any]] = MANIFEST["uploads"]


def overlap(found: list[int], truth: list[int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    fx, fy, fw, fh = found
    tx, ty, tw, th = truth
    width = max(0, min(fx + fw, tx + tw) - max(fx, tx))
    height = max(0, min(fy + fh, ty + th) - max(fy, ty))
    inter = width * height
    return inter / float(fw * fh + tw * th - inter)


KNOWN_MISSES = {
    # Segmenter v3 reads this faint pencil "1" as 6 (0.57), where v2 read 1 (0.86). v3 was kept for its
    # figures on renderer A's validation (52.0% against 46.3%) and on the blind renderer C (photos
    # 92.9% against 88.2%); strict, so that the mark goes when a later version reads it again.
    "photo_pencil-2-digit1.jpg": "segmenter v3 reads this faint pencil 1 as 6",
}


def test_every_condition_has_shipped_uploads() -> None:
    shipped = {entry["condition"] for entry in ENTRIES}
    assert shipped | set(MANIFEST["not_shipped"]) == set(CONDITIONS)
    assert all((UPLOADS / entry["file"]).is_file() for entry in ENTRIES)


@pytest.mark.parametrize("entry", [
    pytest.param(entry, marks=pytest.mark.xfail(reason=KNOWN_MISSES[entry["file"]], strict=True))
    if entry["file"] in KNOWN_MISSES else entry
    for entry in ENTRIES
], ids=[entry["file"] for entry in ENTRIES])
def test_an_upload_is_read_as_its_digit(client: TestClient, entry: dict[str, Any]) -> None:
    data = (UPLOADS / entry["file"]).read_bytes()
    response = client.post("/predict", files=multipart(data))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["digit"] == entry["digit"], f"{entry['file']}: read as {body['digit']} ({body['confidence']:.3f})"
    assert overlap(body["image"]["box"], entry["digit_box"]) >= 0.5


def test_a_12_megapixel_photo_is_read_and_boxed(client: TestClient) -> None:
    # A training digit of the shipped sample: the MNIST test images stay for the final evaluation.
    train, _ = load_split(SAMPLE_DIR, TRAIN_IMAGES, TRAIN_LABELS)
    upload = render_upload(train.images[7], "photo_12mp", np.random.default_rng(12))
    assert (upload.width, upload.height) in ((4032, 3024), (3024, 4032))
    response = client.post("/predict", files=multipart(upload.data))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["digit"] == int(train.labels[7])
    assert overlap(body["image"]["box"], list(upload.digit_box)) >= 0.5


def test_the_shipped_set_is_small() -> None:
    assert sum(path.stat().st_size for path in Path(UPLOADS).iterdir()) < 2_000_000
