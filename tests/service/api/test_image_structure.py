"""Files whose cost is in their framing, not their pixels, are refused before a decoder walks them.

Before this check (issue 9): a 150 KB progressive JPEG took ~20 s of CPU and 1 MB ~270 s; a 64x64
PNG with 340,000 empty chunks or a JPEG with a million comment markers held the event loop for over
a second while its header was read.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from bench import bombs
from digit_contract.errors import ImageTooComplex
from digit_frontend.structure import MAX_PNG_CHUNKS, check_structure, jpeg_scan_limit
from tests.factories import bar_digit, encode

HOSTILE = {
    "progressive JPEG, one scan repeated (150 KB)": lambda: bombs.progressive_scan_bomb(size=150_000),
    "progressive JPEG, one scan repeated (1 MB)": lambda: bombs.progressive_scan_bomb(size=1_000_000),
    "JPEG with a million comment markers": lambda: bombs.jpeg_comment_bomb(1_000_000),
    "PNG with 340,000 empty text chunks": lambda: bombs.png_chunk_bomb(340_000),
    "PNG with 340,000 empty image-data chunks": lambda: bombs.png_chunk_bomb(340_000, kind=b"IDAT"),
    "GIF with a million comment sub-blocks": lambda: bombs.gif_comment_bomb(1_000_000),
    "TIFF with 60,000 tags": lambda: bombs.tiff_with_tags(60_000),
    "TIFF with a million strips": lambda: bombs.tiff_with_strips(1_000_000),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_costly_framing_is_refused_in_well_under_a_millisecond_per_kb(name: str) -> None:
    data = HOSTILE[name]()
    start = time.perf_counter()
    with pytest.raises(ImageTooComplex):
        check_structure(data)
    # Bounded work: the walk stops at the limit, or runs in C over the bytes.
    assert time.perf_counter() - start < 0.05 + len(data) / 1e9 * 10


@pytest.mark.parametrize("name", list(HOSTILE))
def test_costly_framing_gets_422_quickly_from_predict(client: TestClient, name: str) -> None:
    data = HOSTILE[name]()
    start = time.perf_counter()
    response = client.post("/predict", files={"file": ("x", data, "application/octet-stream")})
    elapsed = time.perf_counter() - start
    assert response.status_code == 422, response.text
    assert "error" in response.json()
    assert elapsed < 1.0  # against ~20-270 s of decoding or ~1 s of header walking before


@pytest.mark.parametrize(
    ("fmt", "params"),
    [("JPEG", {"progressive": True}), ("JPEG", {"progressive": True, "optimize": True}), ("JPEG", {}),
     ("PNG", {}), ("PNG", {"optimize": True}), ("GIF", {}), ("TIFF", {}), ("TIFF", {"compression": "tiff_lzw"}),
     ("WEBP", {}), ("BMP", {})],
)
def test_files_real_encoders_write_pass_the_check(client: TestClient, fmt: str, params: dict[str, object]) -> None:
    for mode in ("L", "RGB"):
        image = Image.fromarray(bar_digit(600)).convert(mode)
        data = encode(image, fmt, **params)
        check_structure(data)
        response = client.post("/predict", files={"file": ("d", data, "application/octet-stream")})
        assert response.status_code == 200 and response.json()["digit"] == 1, (fmt, mode, response.text)


def test_a_png_with_a_thousand_small_image_data_chunks_is_accepted(client: TestClient) -> None:
    data = bombs.png_with_small_idat_chunks(side=1024, chunk_size=1024)
    chunks = data.count(b"IDAT")
    assert 100 < chunks < MAX_PNG_CHUNKS
    check_structure(data)
    assert client.post("/predict", content=data, headers={"content-type": "image/png"}).status_code == 200


def test_a_photo_with_an_exif_thumbnail_and_many_segments_is_accepted() -> None:
    photo = Image.fromarray(np.asarray(Image.fromarray(bar_digit(1200)).convert("RGB")))
    exif = Image.Exif()
    exif[0x0112] = 1  # orientation
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", exif=exif, progressive=True, quality=95, comment=b"a comment")
    check_structure(buffer.getvalue())


def test_the_scan_limit_grows_as_the_image_shrinks() -> None:
    assert jpeg_scan_limit(4096 * 4096) == 32  # the floor: any real encoder fits
    assert jpeg_scan_limit(1000 * 1000) == 400
    assert jpeg_scan_limit(None) == 32


def test_a_scan_bomb_just_under_the_limit_decodes_in_bounded_time(client: TestClient) -> None:
    """The limit, not luck: the worst file it lets through (2440x2440, 67 scans) costs well under a second."""
    side = 2440
    allowed = jpeg_scan_limit(side * side)
    base = bombs.progressive_scan_bomb(side=side, size=0)
    scans = base.count(b"\xff\xda")
    last = base.rindex(b"\xff\xda")
    end = base.rindex(b"\xff\xd9")
    data = base[:end] + base[last:end] * (allowed - scans) + b"\xff\xd9"
    check_structure(data)
    start = time.perf_counter()
    response = client.post("/predict", content=data, headers={"content-type": "image/jpeg"})
    assert response.status_code == 200
    assert time.perf_counter() - start < 2.0
