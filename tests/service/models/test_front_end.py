"""The service finds digits with the store's ink segmenter, or with the rules when told or when it has none."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from digit_frontend.pipeline import FRONT_END
from service.server.app import create_app
from tests.service.conftest import REPO, make_settings, multipart

UPLOADS = REPO / "tests" / "data" / "uploads"
PHOTO, CANVAS = UPLOADS / "photo_desk-0-digit2.jpg", UPLOADS / "canvas_black-0-digit2.png"


def method_of(client: TestClient, path: Path) -> str:
    response = client.post("/predict?explain=true", files=multipart(path.read_bytes()))
    assert response.status_code == 200, response.text
    method: str = response.json()["image"]["method"]
    return method


def test_a_photo_goes_to_the_segmenter_and_a_canvas_to_its_alpha(client: TestClient) -> None:
    assert method_of(client, PHOTO) == "learned"
    assert method_of(client, CANVAS) == "mnist"  # the classical path: a canvas's alpha is its ink


def test_the_classical_setting_reads_photos_with_the_rules(store: Path) -> None:
    with TestClient(create_app(make_settings(store, front_end="classical"))) as client:
        assert method_of(client, PHOTO) == "mnist"


def test_a_store_without_a_segmenter_serves_with_the_rules_and_says_so(
    store: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bare = tmp_path / "store"
    shutil.copytree(store, bare, ignore=shutil.ignore_patterns("frontend"))
    with caplog.at_level(logging.WARNING), TestClient(create_app(make_settings(bare))) as client:
        assert method_of(client, PHOTO) == "mnist"
    assert "no ink segmenter" in caplog.text


def test_a_broken_segmenter_serves_with_the_rules_and_says_why(
    store: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "store"
    shutil.copytree(store, broken)
    for model in (broken / "frontend" / "ink_segmenter").glob("*/model.onnx"):
        model.write_bytes(b"not an onnx file")
    with caplog.at_level(logging.ERROR), TestClient(create_app(make_settings(broken))) as client:
        assert method_of(client, PHOTO) == "mnist"
    assert "the ink segmenter failed to load" in caplog.text


def test_the_app_gives_the_front_end_back_when_it_stops(store: Path) -> None:
    before = FRONT_END.segmenter
    with TestClient(create_app(make_settings(store))):
        assert FRONT_END.segmenter is not None
    assert FRONT_END.segmenter is before


def test_a_segmenter_file_its_card_does_not_describe_is_not_run(
    store: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    swapped = tmp_path / "store"
    shutil.copytree(store, swapped)
    versions = sorted((swapped / "frontend" / "ink_segmenter").iterdir())
    assert len(versions) >= 2, "the store keeps two versions of the segmenter"
    shutil.copy2(versions[0] / "model.onnx", versions[-1] / "model.onnx")  # a valid network, not the carded one
    with caplog.at_level(logging.ERROR), TestClient(create_app(make_settings(swapped))) as client:
        assert method_of(client, PHOTO) == "mnist"
    assert "is not the file its card describes" in caplog.text


def test_a_segmenter_published_after_the_start_is_taken_up_by_a_reload(store: Path, tmp_path: Path) -> None:
    later = tmp_path / "store"
    shutil.copytree(store, later, ignore=shutil.ignore_patterns("frontend"))
    with TestClient(create_app(make_settings(later, admin_token="t" * 32))) as client:
        assert method_of(client, PHOTO) == "mnist"  # no segmenter yet: the rules
        shutil.copytree(store / "frontend", later / "frontend")
        reload = client.post("/admin/reload", headers={"Authorization": "Bearer " + "t" * 32})
        assert reload.status_code == 200, reload.text
        assert method_of(client, PHOTO) == "learned"
