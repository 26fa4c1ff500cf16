"""The per-request path (`service.inference.preparation`): each upload's header is parsed once, whether the
request then runs on the event loop or in a worker thread, and its errors keep their order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from digit_frontend import decode, structure
from service.inference import preparation
from service.server.app import create_app
from tests.factories import bar_digit, encode
from tests.service.conftest import make_settings, multipart


@pytest.fixture(scope="module")
def client(zoo: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(zoo, default_model="mnist_linear"))) as started:
        yield started


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often the framing check and Pillow's header parser run."""
    calls = {"structure": 0, "open": 0}
    check, open_ = structure.check_structure, Image.open

    def counted_check(data: bytes) -> None:
        calls["structure"] += 1
        check(data)

    def counted_open(*args: Any, **kwargs: Any) -> Any:
        calls["open"] += 1
        return open_(*args, **kwargs)

    monkeypatch.setattr(decode, "check_structure", counted_check, raising=True)
    monkeypatch.setattr(Image, "open", counted_open)
    return calls


@pytest.mark.parametrize(("size", "inline"), [(80, True), (1200, False)])
def test_each_header_is_parsed_once(client: TestClient, counted: dict[str, int], size: int, inline: bool) -> None:
    files = [encode(bar_digit(size)), encode(bar_digit(size, ink=40))]
    uploads = preparation.open_uploads([preparation.ImageFile(f) for f in files], max_pixels=10**8)
    assert preparation.runs_inline(uploads, 128 * 128) is inline  # the two paths: event loop, worker
    counted.update(structure=0, open=0)
    response = client.post("/predict", files=multipart(*files))
    assert response.status_code == 200, response.text
    assert counted == {"structure": 2, "open": 2}


def test_an_unreadable_header_is_raised_in_its_turn(client: TestClient, counted: dict[str, int]) -> None:
    # The second file's header is corrupt, the first has no ink: the first file's error wins, as
    # the files are prepared in order, and the corrupt header was still parsed only once.
    blank = encode(bar_digit(96, ink=255))
    broken = encode(bar_digit(96))[:20]
    response = client.post("/predict", files=multipart(blank, broken))
    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith("no ink found")
    response = client.post("/predict", files=multipart(encode(bar_digit(96)), broken))
    assert response.status_code == 400
    assert response.json()["error"] == "the image header is corrupt"
    assert counted["open"] == 4
