"""The conditions of the evaluation set, as one table.

Each condition names what it is about, the kind of answer expected, its family (for the roll-ups
in the report) and a `make` function that renders upload number k from its own seeded generator.
A photo condition draws an ordinary photo (`photo.sample_photo`) and overrides only what it tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import flat, photo, sources, textures

# (bytes, file extension, expected answer, source, metadata)
Upload = tuple[bytes, str, Any, str, dict[str, Any]]
Make = Callable[[np.random.Generator, int, int], Upload]  # (rng, k, seed)


@dataclass(frozen=True)
class Condition:
    name: str
    kind: str  # digit | number | none
    family: str  # photo | canvas | scan | clean | none
    source: str  # mnist | uci | font | none
    count: int
    make: Make


def _ext(spec: photo.PhotoSpec) -> str:
    return {"jpeg": "jpg", "webp": "webp", "png": "png"}[spec.fmt]


def _mnist_ink(glyph: sources.Glyph, rng: np.random.Generator) -> photo.InkFn:
    """Most writers get a real pen width; some keep MNIST's own (thick) stroke shape."""
    natural = rng.random() < 0.3
    weight = float(rng.uniform(0.3, 0.55))
    shear, angle = float(rng.normal(0, 0.1)), float(rng.normal(0, 4))

    def ink(height: int, pen_px: float) -> np.ndarray:
        m = sources.pen_mask(glyph.image, height, weight) if natural else sources.stroke_mask(glyph.image, height, pen_px)
        return sources.slant(m, shear, angle)

    return ink


def photo_digit(source: str = "mnist", **fixed: Any) -> Make:
    """A photo condition: `fixed` are PhotoSpec fields, or callables of rng giving them."""

    def make(rng: np.random.Generator, k: int, seed: int) -> Upload:
        over = {key: (v(rng) if callable(v) else v) for key, v in fixed.items()}
        spec = photo.sample_photo(rng, **over)
        if source == "mnist":
            g = sources.mnist_glyph(k, seed)
            ink = _mnist_ink(g, rng)
        elif source == "uci":
            g = sources.uci_glyph(k, seed)
            ink = lambda height, pen_px: sources.soft_mask(g.image, height)  # noqa: E731
        else:
            g = sources.font_glyph(k, rng)
            ink = lambda height, pen_px: sources.pen_mask(g.image, height, 0.5)  # noqa: E731
        data, meta = photo.render_photo(spec, ink, rng)
        return data, _ext(spec), g.label, g.source, meta

    return make


def photo_none(**fixed: Any) -> Make:
    def make(rng: np.random.Generator, k: int, seed: int) -> Upload:
        over = {key: (v(rng) if callable(v) else v) for key, v in fixed.items()}
        spec = photo.sample_photo(rng, **over)
        data, meta = photo.render_photo(spec, None, rng)
        return data, _ext(spec), "none", "none", meta

    return make


def desk_only(desk: str, keyboard: bool = False) -> Make:
    """No page at all: the frame is all desk or cloth (page_fill ~0 puts a sliver far outside)."""

    def make(rng: np.random.Generator, k: int, seed: int) -> Upload:
        spec = photo.sample_photo(rng, desk=desk, keyboard=keyboard, page_fill=0.3, cut=False)
        w, h = photo.frame_size(spec)
        scene = textures.desk(rng, desk, h, w)
        if keyboard:
            scene = textures.add_keyboard(rng, scene)
        img = photo._camera(spec, photo._light(spec, scene, rng), rng, min(w, h))
        return photo._encode(spec, img), _ext(spec), "none", "none", {"desk": desk, "keyboard": keyboard, "width": w, "height": h}

    return make


def canvas_digit(transparent: bool) -> Make:
    def make(rng: np.random.Generator, k: int, seed: int) -> Upload:
        g = sources.mnist_glyph(k, seed)
        side = int(rng.integers(280, 401))
        h, w = (side, side) if rng.random() < 0.7 else (int(side * 0.75), side)
        dh = int(h * rng.uniform(0.4, 0.85))
        pen = float(rng.uniform(0.04, 0.16) * dh)
        m = sources.slant(sources.stroke_mask(g.image, dh, pen), float(rng.normal(0, 0.1)), float(rng.normal(0, 4)))
        data = flat.canvas(m, h, w, transparent, rng)
        return data, "png", g.label, g.source, {"size": [w, h], "pen_px": round(pen, 1), "transparent": transparent}

    return make


def scan_digit(source: str) -> Make:
    def make(rng: np.random.Generator, k: int, seed: int) -> Upload:
        side = int(rng.integers(300, 401))
        h, w = side, int(side * rng.uniform(0.8, 1.0))
        dh = int(h * rng.uniform(0.4, 0.8))
        if source == "mnist":
            g = sources.mnist_glyph(k, seed)
            m = sources.pen_mask(g.image, dh, float(rng.uniform(0.3, 0.55)))
        elif source == "uci":
            g = sources.uci_glyph(k, seed)
            m = sources.soft_mask(g.image, dh)
        else:
            g = sources.font_glyph(k, rng)
            m = sources.pen_mask(g.image, dh, 0.5)
        noise = 1.0 if source == "font" else float(rng.uniform(2, 5))
        return flat.scan(m, h, w, rng, noise), "png", g.label, g.source, {"size": [w, h]}

    return make


def uci_clean(blocks: bool) -> Make:
    def make(rng: np.random.Generator, k: int, seed: int) -> Upload:
        g = sources.uci_glyph(k, seed)
        return flat.uci_clean(g.image * 16.0, blocks, rng), "png", g.label, g.source, {"blocks": blocks}

    return make


def blank_flat(transparent: bool | None) -> Make:
    """An empty canvas (transparent or white) or, with None, an empty scanned page."""

    def make(rng: np.random.Generator, k: int, seed: int) -> Upload:
        side = int(rng.integers(280, 401))
        empty = np.zeros((8, 8), np.float32)
        if transparent is None:
            return flat.scan(empty, side, side, rng), "png", "none", "none", {"scan": True}
        return flat.canvas(empty, side, side, transparent, rng), "png", "none", "none", {"transparent": transparent}

    return make


# --- numbers -------------------------------------------------------------------------------------

def _number(rng: np.random.Generator, k: int, seed: int, gap: bool) -> tuple[list[sources.Glyph], str, int | None, bool]:
    n = 2 + k % 5  # lengths 2..6 in turn
    glyphs = [sources.mnist_glyph(50_000 + 7 * k + i, seed) for i in range(n)]  # past the single digits
    gap_after = int(rng.integers(0, n - 1)) if gap else None
    text = "".join(str(g.label) + (" " if i == gap_after else "") for i, g in enumerate(glyphs))
    touching = bool(rng.random() < 0.3)
    return glyphs, text, gap_after, touching


def number(medium: str, gap: bool = False) -> Make:
    def make(rng: np.random.Generator, k: int, seed: int) -> Upload:
        glyphs, text, gap_after, touching = _number(rng, k, seed, gap)
        src = "mnist:" + ",".join(g.source.split(":")[1] for g in glyphs)
        meta: dict[str, Any] = {"touching": touching, "length": len(glyphs)}
        thin = medium != "scan" and rng.random() < 0.7

        def line(height: int, pen_px: float) -> np.ndarray:
            render = (lambda g, h: sources.stroke_mask(g, h, pen_px)) if thin else None
            return sources.compose_number([g.image for g in glyphs], height, rng, gap_after, touching, render)

        if medium == "photo":
            spec = photo.sample_photo(rng, digit_height=float(rng.uniform(0.07, 0.16)),
                                      digit_pos=(0.5, float(rng.uniform(0.3, 0.6))), page_fill=float(rng.uniform(0.5, 0.9)))
            data, m2 = photo.render_photo(spec, line, rng)
            meta.update(m2)
            return data, _ext(spec), text, src, meta
        h = int(rng.integers(200, 301))
        w = int(rng.integers(max(400, 120 * len(glyphs)), max(401, 180 * len(glyphs)) + 1))
        dh = int(h * rng.uniform(0.35, 0.6))
        pen = float(rng.uniform(0.04, 0.14) * dh)
        m = line(dh, pen)
        if m.shape[1] > w * 0.95:
            f = w * 0.95 / m.shape[1]
            import cv2

            m = cv2.resize(m, (int(m.shape[1] * f), max(int(m.shape[0] * f), 3)), interpolation=cv2.INTER_AREA)
        meta["size"] = [w, h]
        if medium == "canvas":
            return flat.canvas(m, h, w, bool(rng.random() < 0.4), rng), "png", text, src, meta
        return flat.scan(m, h, w, rng, float(rng.uniform(2, 5))), "png", text, src, meta

    return make


def _u(a: float, b: float) -> Callable[[np.random.Generator], float]:
    return lambda rng: float(rng.uniform(a, b))


def _pick(*xs: Any) -> Callable[[np.random.Generator], Any]:
    return lambda rng: xs[int(rng.integers(len(xs)))]


P = photo_digit
CONDITIONS: list[Condition] = [
    # Phone photos of MNIST test digits: one condition per stressor, the rest ordinary.
    Condition("photo_typical", "digit", "photo", "mnist", 50, P()),
    Condition("desk_wood", "digit", "photo", "mnist", 40, P(desk="wood")),
    Condition("desk_coloured", "digit", "photo", "mnist", 40, P(desk="coloured")),
    Condition("desk_white", "digit", "photo", "mnist", 40, P(desk="white")),
    Condition("desk_cloth", "digit", "photo", "mnist", 30, P(desk="cloth")),
    Condition("desk_gingham", "digit", "photo", "mnist", 40, P(desk="gingham", page_fill=_u(0.3, 0.6))),
    Condition("keyboard_edge", "digit", "photo", "mnist", 40, P(keyboard=True, page_fill=_u(0.3, 0.6))),
    Condition("page_rotated", "digit", "photo", "mnist", 40, P(rotation=_pick(-30, -20, -12, 12, 20, 30))),
    Condition("page_perspective", "digit", "photo", "mnist", 40, P(tilt=_u(0.2, 0.4), rotation=_u(-10, 10))),
    Condition("page_cut_by_frame", "digit", "photo", "mnist", 40, P(cut=True, page_fill=_u(0.5, 0.9))),
    Condition("page_fill_30_45", "digit", "photo", "mnist", 40, P(page_fill=_u(0.3, 0.45), digit_height=_u(0.08, 0.16))),
    Condition("page_fill_80_95", "digit", "photo", "mnist", 40, P(page_fill=_u(0.8, 0.95))),
    Condition("paper_recycled", "digit", "photo", "mnist", 40, P(paper="recycled")),
    Condition("paper_sticky_note", "digit", "photo", "mnist", 40, P(paper="sticky", page_fill=_u(0.2, 0.5), digit_height=_u(0.12, 0.3))),
    Condition("paper_ruled", "digit", "photo", "mnist", 40, P(paper="ruled")),
    Condition("paper_squared", "digit", "photo", "mnist", 40, P(paper="squared")),
    Condition("paper_dotted", "digit", "photo", "mnist", 40, P(paper="dotted")),
    Condition("paper_spiral", "digit", "photo", "mnist", 40, P(paper="spiral")),
    Condition("pen_ballpoint", "digit", "photo", "mnist", 40, P(pen=_pick("ballpoint_blue", "ballpoint_black"))),
    Condition("pen_marker", "digit", "photo", "mnist", 40, P(pen=_pick("marker", "marker_colour"))),
    Condition("pen_red", "digit", "photo", "mnist", 40, P(pen="red_pen")),
    Condition("pen_pencil", "digit", "photo", "mnist", 40, P(pen="pencil")),
    Condition("light_glare", "digit", "photo", "mnist", 40, P(light=["glare"])),
    Condition("light_flash", "digit", "photo", "mnist", 40, P(light=["flash"], desk=_pick("wood", "coloured"))),
    Condition("light_soft_shadow", "digit", "photo", "mnist", 40, P(light=["soft_shadow"])),
    Condition("light_hard_shadow", "digit", "photo", "mnist", 40, P(light=["hard_shadow"])),
    Condition("light_low", "digit", "photo", "mnist", 40, P(light=["low"])),
    Condition("light_colour_cast", "digit", "photo", "mnist", 40, P(light=["cast"])),
    Condition("blur_defocus", "digit", "photo", "mnist", 40, P(defocus=_u(1.5, 4.0))),
    Condition("blur_motion", "digit", "photo", "mnist", 40, P(motion=_u(6, 18))),
    Condition("jpeg_q40_60", "digit", "photo", "mnist", 40, P(jpeg_quality=lambda rng: int(rng.integers(40, 61)))),
    Condition("size_0.3mp", "digit", "photo", "mnist", 40, P(megapixels=0.3)),
    Condition("size_12mp", "digit", "photo", "mnist", 12, P(megapixels=12.0, aspect=4 / 3)),
    Condition("exif_orientation", "digit", "photo", "mnist", 40, P(orientation=_pick(6, 6, 8, 3))),
    Condition("digit_small", "digit", "photo", "mnist", 40, P(digit_height=_u(0.04, 0.09), page_fill=_u(0.5, 0.9))),
    Condition("digit_off_centre", "digit", "photo", "mnist", 40, P(digit_pos=lambda rng: (float(rng.choice([0.15, 0.85])), float(rng.choice([0.15, 0.85]))), digit_height=_u(0.08, 0.18))),
    Condition("photo_webp_png", "digit", "photo", "mnist", 30, P(fmt=_pick("webp", "png"), megapixels=_pick(0.5, 1.0))),
    Condition("photo_hard_mix", "digit", "photo", "mnist", 50, P(
        desk=_pick("wood", "gingham", "cloth", "coloured"), paper=_pick("recycled", "ruled", "squared", "spiral", "sticky"),
        pen=_pick("pencil", "ballpoint_blue", "red_pen"), rotation=_u(-25, 25), tilt=_u(0.1, 0.3),
        light=_pick(["glare"], ["hard_shadow", "cast"], ["low"], ["flash"]), defocus=_u(0.5, 2.5),
        jpeg_quality=lambda rng: int(rng.integers(40, 80)), digit_height=_u(0.07, 0.2))),
    # Flat uploads of MNIST test digits.
    Condition("canvas_white", "digit", "canvas", "mnist", 50, canvas_digit(False)),
    Condition("canvas_transparent", "digit", "canvas", "mnist", 50, canvas_digit(True)),
    Condition("scan_mnist", "digit", "scan", "mnist", 50, scan_digit("mnist")),
    # The UCI 8x8 test split (360 digits): as photos, scans and clean upscales.
    Condition("uci_photo", "digit", "photo", "uci", 40, P(source="uci", digit_height=_u(0.15, 0.3))),
    Condition("uci_scan", "digit", "scan", "uci", 40, scan_digit("uci")),
    Condition("uci_clean_smooth", "digit", "clean", "uci", 40, uci_clean(False)),
    Condition("uci_clean_blocks", "digit", "clean", "uci", 40, uci_clean(True)),
    # Handwriting fonts.
    Condition("font_scan", "digit", "scan", "font", 60, scan_digit("font")),
    Condition("font_photo", "digit", "photo", "font", 30, P(source="font")),
    # Uploads with no digit: the right answer is a refusal.
    Condition("none_blank_page", "none", "none", "none", 30, photo_none(paper=_pick("white", "ruled", "squared", "dotted", "recycled", "sticky"))),
    Condition("none_page_edge", "none", "none", "none", 25, photo_none(cut=True, cut_amount=(0.5, 0.75), page_fill=_u(0.5, 0.9))),
    Condition("none_spiral_binding", "none", "none", "none", 20, photo_none(paper="spiral", page_fill=_u(0.5, 0.9))),
    Condition("none_gingham", "none", "none", "none", 20, desk_only("gingham")),
    Condition("none_empty_desk", "none", "none", "none", 25, desk_only("wood")),
    Condition("none_desk_keyboard", "none", "none", "none", 10, desk_only("coloured", keyboard=True)),
    Condition("none_blank_canvas", "none", "none", "none", 10, blank_flat(False)),
    Condition("none_blank_canvas_transparent", "none", "none", "none", 10, blank_flat(True)),
    Condition("none_blank_scan", "none", "none", "none", 10, blank_flat(None)),
    # Numbers for POST /read, written with MNIST test digits.
    Condition("number_canvas", "number", "canvas", "mnist", 90, number("canvas")),
    Condition("number_scan", "number", "scan", "mnist", 80, number("scan")),
    Condition("number_photo", "number", "photo", "mnist", 100, number("photo")),
    Condition("number_wide_gap", "number", "canvas", "mnist", 30, number("canvas", gap=True)),
]
