"""Renderer D's labels match what it draws (fast: small images, a handful of digits)."""

from __future__ import annotations

import dataclasses
import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from bench.renderer_d import camera, flat, render
from bench.renderer_d import sources as src
from bench.renderer_d.conditions import CONDITIONS
from bench.renderer_d.writing import compose_number

pytestmark = pytest.mark.skipif(not src.MNIST_DIR.exists(), reason="MNIST test files not here")


def blobs(mask: np.ndarray) -> int:
    """Connected ink blobs (8-connected) of a coverage mask."""
    n, _ = cv2.connectedComponents((mask > 0.5).astype(np.uint8), connectivity=8)
    return int(n) - 1


@pytest.fixture(scope="module")
def one_piece_glyphs() -> list[src.Glyph]:
    """MNIST test digits that a thick pen draws as a single blob whatever the hand's jitter."""
    images, labels = src.load_mnist_test()
    found: list[src.Glyph] = []
    for i in range(200):
        g = src.mnist_glyph(images[i], int(labels[i]), i)
        if all(blobs(g.draw(80, 8, np.random.default_rng(s))) == 1 for s in range(3)):
            found.append(g)
        if len(found) == 6:
            break
    return found


def test_number_has_one_blob_per_digit_when_nothing_touches(one_piece_glyphs: list[src.Glyph]) -> None:
    for seed in range(3):
        patch, meta = compose_number(one_piece_glyphs[: 2 + seed], 80, 8, np.random.default_rng(seed), allow_touch=False)
        assert meta["touching_pairs"] == []
        assert blobs(patch) == 2 + seed


def test_touching_pairs_are_really_touching(one_piece_glyphs: list[src.Glyph]) -> None:
    patch, meta = compose_number(one_piece_glyphs[:4], 80, 8, np.random.default_rng(7), touch_p=1.0)
    assert meta["touching_pairs"] == [0, 1, 2]
    assert blobs(patch) == 1


def test_canvas_number_label_matches_glyphs(one_piece_glyphs: list[src.Glyph]) -> None:
    cond = next(c for c in CONDITIONS if c.name == "numbers_canvas")
    glyphs = one_piece_glyphs[:3]
    data, ext, meta = render.render_one(cond, lambda h, p, r: compose_number(glyphs, h, p, r, allow_touch=False), np.random.default_rng(1))
    img = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"), np.float32)
    ink = img[..., 3] / 255.0 if meta["transparent"] else 1.0 - img[..., :3].mean(axis=2) / 255.0
    assert ext == "png"
    assert blobs(ink) == len(glyphs)
    assert len(meta["digit_boxes_px"]) == len(glyphs)  # type: ignore[arg-type]


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_round_trips(orientation: int) -> None:
    upright = np.zeros((60, 100, 3), np.uint8)
    upright[:20, :30] = 255  # a bright block in the upright image's top-left corner
    stored = camera.store_rotated(upright, orientation)
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, "PNG", exif=camera.exif_bytes(orientation, np.random.default_rng(0)))
    shown = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue()))))
    assert shown.shape == upright.shape
    assert np.array_equal(shown, upright)


def test_exif_rotated_photo_shows_upright_at_labelled_size() -> None:
    spec = dataclasses.replace(camera.PhotoSpec(exif_rotate=True), mp=(0.3, 0.31))
    images, labels = src.load_mnist_test()
    glyph = src.mnist_glyph(images[0], int(labels[0]), 0)
    data, ext, meta = camera.render_photo(spec, lambda h, p, r: (glyph.draw(h, p, r), {}), np.random.default_rng(3))
    pil = Image.open(io.BytesIO(data))
    assert ext == "jpg" and pil.getexif()[0x0112] == meta["exif_orientation"] != 1
    assert ImageOps.exif_transpose(pil).size == (meta["width"], meta["height"])


@pytest.mark.parametrize("name", ["photo_off_centre", "photo_page_cut", "photo_small_digit"])
def test_photo_digit_is_whole_in_frame(name: str) -> None:
    cond = next(c for c in CONDITIONS if c.name == name)
    assert cond.photo is not None
    spec = dataclasses.replace(cond.photo, mp=(0.3, 0.35))
    images, labels = src.load_mnist_test()
    glyph = src.mnist_glyph(images[1], int(labels[1]), 1)
    for seed in range(2):
        _, _, meta = camera.render_photo(spec, lambda h, p, r: (glyph.draw(h, p, r), {}), np.random.default_rng(seed))
        assert meta["digit_in_frame"] is True
        if name == "photo_small_digit":
            assert float(meta["digit_area_frac"]) < 0.07  # type: ignore[arg-type]


def test_no_digit_conditions_have_no_digit_source() -> None:
    pools = render.Pools.load(render.SEED)
    for cond in (c for c in CONDITIONS if c.family == "none"):
        writing, expected, ids, _ = render.plan(cond, 0, pools)
        assert (writing, expected, ids, cond.source) == (None, "none", [], "none")
    assert pools.mnist_next == 0 and pools.uci_next == 0


def test_blank_canvases_and_scans_carry_no_ink() -> None:
    _, _, meta = flat.render_canvas(None, True, np.random.default_rng(0))
    data, _, _ = flat.render_canvas(None, True, np.random.default_rng(0))
    assert np.asarray(Image.open(io.BytesIO(data)))[..., 3].max() == 0
    _, _, scan_meta = flat.render_scan(None, np.random.default_rng(0))
    assert "pen" not in scan_meta and "pen" not in meta


def test_font_digits_are_balanced_and_fonts_have_all_digits() -> None:
    pools = render.Pools.load(render.SEED)
    assert pools.fonts, "no handwriting font with all ten digits"
    digits = [pools.font("font_scan", i).digit for i in range(20)]
    assert sorted(digits) == sorted(list(range(10)) * 2)
