"""What the scene is made of: pens (stroke width, colour, opacity), papers and the surfaces a page lies on.

Everything here is reflectance in [0, 1] (RGB float32, HxWx3), before any light: the light and the camera
come later (``render.py``), so a shadow darkens paper and ink by the same ratio, as it does in a real room.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
Rng = np.random.Generator

RGB = tuple[float, float, float]


def f32(a: object) -> F32:
    """OpenCV returns untyped arrays: give them back their dtype (and mypy a type)."""
    return np.asarray(a, dtype=np.float32)


def value_noise(h: int, w: int, cell: float, rng: Rng) -> F32:
    """Smooth noise in about [0, 1] with features about ``cell`` px wide (random grid, cubic upscale)."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    grid = rng.random((gh, gw), dtype=np.float32)
    return np.clip(f32(cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)), 0.0, 1.0)


def fractal_noise(h: int, w: int, cell: float, rng: Rng, octaves: int = 3) -> F32:
    """Sum of value noises at halving scales, normalised to [0, 1]."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for i in range(octaves):
        out += amp * value_noise(h, w, max(1.5, cell / 2**i), rng)
        total += amp
        amp *= 0.5
    out /= total
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def colourise(grey: F32, rgb: RGB) -> F32:
    """A single-channel reflectance (or shading) field times an RGB colour."""
    return grey[:, :, None] * np.asarray(rgb, np.float32)[None, None, :]


# ---------------------------------------------------------------------------------------------------------------
# Pens


@dataclass(frozen=True)
class Pen:
    """A pen: its kind, ink colour (reflectance of a fully inked spot), stroke width and opacity."""

    kind: str  # ballpoint | gel | marker | red | pencil
    colour: RGB
    width_frac: float  # stroke width as a fraction of the digit's height
    opacity: float


PEN_KINDS = ("ballpoint", "gel", "marker", "red", "pencil")


def draw_pen(kind: str, rng: Rng) -> Pen:
    """A pen of the given kind with its colour, width and opacity drawn at random."""
    if kind == "ballpoint":
        colour: RGB = (0.13, 0.17, 0.50) if rng.random() < 0.6 else (0.12, 0.12, 0.15)
        return Pen(kind, colour, float(rng.uniform(0.045, 0.075)), float(rng.uniform(0.8, 0.95)))
    if kind == "gel":
        return Pen(kind, (0.08, 0.08, 0.10), float(rng.uniform(0.05, 0.085)), float(rng.uniform(0.9, 1.0)))
    if kind == "marker":
        colour = [(0.05, 0.05, 0.06), (0.07, 0.1, 0.35), (0.06, 0.3, 0.12)][int(rng.integers(3))]
        return Pen(kind, colour, float(rng.uniform(0.10, 0.16)), float(rng.uniform(0.93, 1.0)))
    if kind == "red":
        return Pen(kind, (0.78, 0.10, 0.13), float(rng.uniform(0.045, 0.08)), float(rng.uniform(0.8, 0.95)))
    if kind == "pencil":
        return Pen(kind, (0.30, 0.30, 0.33), float(rng.uniform(0.045, 0.08)), float(rng.uniform(0.4, 0.7)))
    raise ValueError(f"unknown pen {kind!r}")


def restroke(ink: F32, width_px: float) -> F32:
    """Redraw a glyph's strokes with a pen ``width_px`` wide (in the glyph's own pixels).

    The writers' sources have their own, thick, pens (MNIST's is about an eighth of the digit's height). Inside
    the stroke, the distance to its edge peaks on the centre line; the largest distance nearby is the local
    half-width, so keeping the pixels within ``width_px / 2`` of that ridge redraws the same path with a thinner
    pen, without breaking it. The "nearby" window is only a little wider than the new pen: a wider one would
    let a thick part of the stroke raise the ridge of a thin part next to it and cut the thin part away. A
    wider pen than the source's dilates the shape instead.
    """
    binary = (ink > 0.5).astype(np.uint8)
    if not binary.any():
        return ink
    dist = f32(cv2.distanceTransform(binary, cv2.DIST_L2, 5))
    half_now = float(np.percentile(dist[dist > 0], 95))
    half = max(0.6, width_px / 2.0)
    if half >= half_now:
        grow = round(half - half_now)
        if grow >= 1:
            k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
            binary = np.asarray(cv2.dilate(binary, k), dtype=np.uint8)
        out = binary.astype(np.float32)
    else:
        k = 2 * int(np.ceil(half + 1.5)) + 1
        ridge = f32(cv2.dilate(dist, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))))
        out = ((dist > 0) & (dist >= ridge - half)).astype(np.float32)
    return f32(cv2.GaussianBlur(out, (0, 0), 0.8))


def pen_coverage(mask: F32, pen: Pen, rng: Rng) -> F32:
    """How much ink each pixel of the page got: the stroke mask times the pen's opacity and texture."""
    h, w = mask.shape
    cover = mask * pen.opacity
    if pen.kind in ("ballpoint", "red"):
        # A ballpoint lays ink unevenly along the stroke (pressure, a drying ball).
        cover *= 0.8 + 0.2 * value_noise(h, w, max(4.0, h / 6), rng)
    elif pen.kind == "pencil":
        # Graphite catches on the paper's tooth: fine grain, plus pressure changes.
        grain = value_noise(h, w, 1.5, rng)
        cover *= (0.55 + 0.45 * grain) * (0.75 + 0.25 * value_noise(h, w, max(4.0, h / 5), rng))
    elif pen.kind == "marker":
        cover = f32(cv2.GaussianBlur(cover, (0, 0), 0.7))  # felt tips bleed a little into the fibres
    return f32(np.clip(cover, 0.0, 1.0))


def apply_ink(paper: F32, cover: F32, colour: RGB) -> F32:
    """Ink is a filter on the paper: the reflectance moves towards the ink's colour by the coverage."""
    ink = np.asarray(colour, np.float32)[None, None, :]
    c = cover[:, :, None]
    return paper * (1.0 - c + c * ink)


# ---------------------------------------------------------------------------------------------------------------
# Papers

PAPER_KINDS = ("white", "recycled", "sticky", "ruled", "squared", "dotted", "spiral")
STICKY_COLOURS: list[RGB] = [(0.98, 0.92, 0.45), (0.98, 0.95, 0.55), (0.98, 0.78, 0.85), (0.75, 0.95, 0.75),
                             (0.72, 0.88, 0.98), (0.99, 0.8, 0.55)]  # fmt: skip


@dataclass(frozen=True)
class Page:
    """A page's reflectance (HxWx3) and coverage (HxW alpha: 0 where the surface shows, e.g. spiral holes)."""

    rgb: F32
    alpha: F32
    aspect: float  # height / width of the sheet itself


def paper_aspect(kind: str, rng: Rng) -> float:
    """Height / width of a sheet of this kind (portrait); sticky notes are square."""
    if kind == "sticky":
        return 1.0
    return float(rng.choice([1.414, 1.294, 1.414]))  # A4 / A5 mostly, US letter sometimes


def make_paper(kind: str, w: int, h: int, rng: Rng, mm_per_px: float) -> Page:
    """A sheet ``w`` x ``h`` px of the given kind; ``mm_per_px`` sets the ruling's real spacing."""
    fibre = fractal_noise(h, w, max(3.0, w / 60), rng)
    base = float(rng.uniform(0.86, 0.95))
    tint: RGB = (1.0, 1.0, 1.0)
    if kind == "recycled":
        base = float(rng.uniform(0.70, 0.82))
        tint = (1.0, 0.985, 0.95)
    elif kind == "sticky":
        base = float(rng.uniform(0.90, 0.97))
        tint = STICKY_COLOURS[int(rng.integers(len(STICKY_COLOURS)))]
    grey = base * (1.0 - 0.035 * fibre)
    rgb = colourise(grey.astype(np.float32), tint)
    alpha = np.ones((h, w), np.float32)
    line_px = max(1, round(0.3 / mm_per_px))

    def px(mm: float) -> float:
        return mm / mm_per_px

    if kind == "recycled":
        # Flecks: short dark fibres and specks of other papers.
        n = int(w * h * mm_per_px**2 / 40)
        ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
        for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
            ang = rng.uniform(0, np.pi)
            ln = rng.uniform(0.3, 1.5) / mm_per_px
            x2, y2 = int(x + ln * np.cos(ang)), int(y + ln * np.sin(ang))
            shade = float(rng.uniform(0.35, 0.75))
            fleck = (shade, shade * float(rng.uniform(0.9, 1.05)), shade * float(rng.uniform(0.85, 1.1)))
            cv2.line(rgb, (int(x), int(y)), (x2, y2), fleck, 1, cv2.LINE_AA)
    elif kind == "sticky":
        # The adhesive strip along the top is slightly glossier / darker.
        strip = int(px(16))
        rgb[:strip] *= 0.97
    elif kind in ("ruled", "spiral"):
        blue: RGB = (0.62, 0.72, 0.88) if rng.random() < 0.8 else (0.7, 0.7, 0.72)
        spacing = px(float(rng.choice([7.0, 8.0, 8.5])))
        y = px(25)
        while y < h:
            cv2.line(rgb, (0, int(y)), (w, int(y)), blue, line_px, cv2.LINE_AA)
            y += spacing
        if kind == "ruled" or rng.random() < 0.5:
            x = int(px(25))
            cv2.line(rgb, (x, 0), (x, h), (0.9, 0.45, 0.45), line_px, cv2.LINE_AA)
    elif kind == "squared":
        col: RGB = (0.62, 0.72, 0.88) if rng.random() < 0.6 else (0.68, 0.68, 0.7)
        step = px(5.0)
        y = step * rng.random()
        while y < h:
            cv2.line(rgb, (0, int(y)), (w, int(y)), col, max(1, line_px - 1), cv2.LINE_AA)
            y += step
        x = step * rng.random()
        while x < w:
            cv2.line(rgb, (int(x), 0), (int(x), h), col, max(1, line_px - 1), cv2.LINE_AA)
            x += step
    elif kind == "dotted":
        dot: RGB = (0.55, 0.55, 0.58)
        step = px(5.0)
        r = max(1, round(0.25 / mm_per_px))
        for yy in np.arange(step / 2, h, step):
            for xx in np.arange(step / 2, w, step):
                cv2.circle(rgb, (int(xx), int(yy)), r, dot, -1, cv2.LINE_AA)
    if kind == "spiral":
        # Punched holes along the left edge: the surface shows through them (alpha 0). The coil itself is
        # drawn in frame space over the page (it stands above the paper), see ``spiral_coil``.
        pitch = px(8.5)
        r = max(2, round(px(2.2)))
        cx = int(px(7))
        for yy in np.arange(pitch / 2, h, pitch):
            cv2.circle(alpha, (cx, int(yy)), r, 0.0, -1, cv2.LINE_AA)
    # A sheet is never perfectly flat: a slow shading across it (curl, waviness).
    curl = 1.0 - 0.06 * value_noise(h, w, max(8.0, w / 2.5), rng)
    return Page(rgb * curl[:, :, None], alpha, 1.0)


def spiral_coil_points(h: int, mm_per_px: float) -> list[tuple[float, float, float, float]]:
    """The spiral's loops in page coordinates: (x_hole, y_hole, x_outside, y_outside) for each turn."""
    pitch = 8.5 / mm_per_px
    cx = 7.0 / mm_per_px
    return [(cx, float(y), -5.0 / mm_per_px, float(y) - pitch * 0.35) for y in np.arange(pitch / 2, h, pitch)]


# ---------------------------------------------------------------------------------------------------------------
# Surfaces

SURFACE_KINDS = ("wood", "laminate", "granite", "white_desk", "cloth", "gingham", "dark_desk")


def _rotated_coords(h: int, w: int, angle: float) -> tuple[F32, F32]:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    return xx * c + yy * s, -xx * s + yy * c


def make_surface(kind: str, w: int, h: int, rng: Rng) -> F32:
    """A desk or tablecloth filling a ``w`` x ``h`` frame (reflectance, HxWx3)."""
    scale = max(w, h) / 1000.0  # textures are sized for a frame about 1000 px across
    if kind == "wood":
        u, v = _rotated_coords(h, w, float(rng.uniform(-0.3, 0.3)) + (np.pi / 2 if rng.random() < 0.5 else 0.0))
        warp = value_noise(h, w, 120 * scale, rng) * 70 * scale + value_noise(h, w, 25 * scale, rng) * 8 * scale
        rings = 0.5 + 0.5 * np.sin((v + warp) / (float(rng.uniform(6, 14)) * scale))
        fine = value_noise(h, w, 3 * scale, rng)
        streak = f32(cv2.resize(rng.random((max(2, int(h / (4 * scale))), 4), dtype=np.float32), (w, h)))
        grain = (0.75 + 0.15 * rings + 0.06 * fine + 0.04 * streak).astype(np.float32)
        tone = [(0.55, 0.36, 0.2), (0.72, 0.55, 0.36), (0.35, 0.22, 0.13), (0.8, 0.68, 0.5)][int(rng.integers(4))]
        return colourise(grain, tone)
    if kind == "laminate":
        tone = [(0.25, 0.35, 0.55), (0.3, 0.5, 0.35), (0.55, 0.55, 0.55), (0.6, 0.25, 0.2), (0.45, 0.4, 0.5),
                (0.75, 0.7, 0.6)][int(rng.integers(6))]  # fmt: skip
        speck = value_noise(h, w, 2 * scale, rng)
        return colourise((0.92 + 0.08 * speck).astype(np.float32), tone)
    if kind == "granite":
        base = float(rng.uniform(0.25, 0.6))
        g = base * (0.7 + 0.6 * fractal_noise(h, w, 6 * scale, rng, octaves=3))
        speck = (rng.random((h, w), dtype=np.float32) < 0.02).astype(np.float32)
        g = g * (1 - 0.5 * f32(cv2.GaussianBlur(speck, (0, 0), 1.0)) * 3)
        tint = (1.0, float(rng.uniform(0.9, 1.0)), float(rng.uniform(0.8, 1.0)))
        return colourise(np.clip(g, 0, 1).astype(np.float32), tint)
    if kind == "white_desk":
        g = float(rng.uniform(0.82, 0.93)) * (1 - 0.03 * value_noise(h, w, 40 * scale, rng))
        return colourise(g.astype(np.float32), (1.0, 1.0, float(rng.uniform(0.96, 1.0))))
    if kind == "dark_desk":
        g = float(rng.uniform(0.04, 0.14)) * (1 + 0.15 * value_noise(h, w, 30 * scale, rng))
        return colourise(g.astype(np.float32), (1.0, float(rng.uniform(0.9, 1.0)), float(rng.uniform(0.85, 1.0))))
    if kind in ("cloth", "gingham"):
        u, v = _rotated_coords(h, w, float(rng.uniform(-0.4, 0.4)))
        # Wrinkles: a slow displacement of the weave and a slow shading.
        du = value_noise(h, w, 150 * scale, rng) * 25 * scale
        dv = value_noise(h, w, 150 * scale, rng) * 25 * scale
        u, v = u + du, v + dv
        period = float(rng.uniform(2.5, 4.0)) * scale
        weave = 0.9 + 0.1 * (np.sin(u / period) * np.sin(v / period))
        fold = 0.8 + 0.2 * value_noise(h, w, 200 * scale, rng)
        if kind == "cloth":
            tone = [(0.7, 0.2, 0.2), (0.2, 0.3, 0.6), (0.8, 0.75, 0.65), (0.3, 0.5, 0.4), (0.5, 0.5, 0.55)][
                int(rng.integers(5))
            ]
            return colourise((weave * fold).astype(np.float32), tone)
        check = float(rng.uniform(12, 35)) * scale
        a = (np.floor(u / check) % 2).astype(np.float32)
        b = (np.floor(v / check) % 2).astype(np.float32)
        colour = np.asarray([(0.75, 0.12, 0.15), (0.15, 0.25, 0.6), (0.15, 0.45, 0.2), (0.1, 0.1, 0.12)][
            int(rng.integers(4))], np.float32)  # fmt: skip
        white = np.asarray([0.93, 0.92, 0.9], np.float32)
        # Gingham: where one band is coloured the cloth is a mid tone, where both cross it is the full colour.
        mix = (0.5 * a + 0.5 * b)[:, :, None]
        rgb = white * (1 - mix) + colour * mix
        return f32(rgb * (weave * fold)[:, :, None])
    raise ValueError(f"unknown surface {kind!r}")


KEY_LETTERS = "QWERTYUIOPASDFGHJKLZXCVBNM"


def draw_keyboard(w: int, h: int, rng: Rng) -> tuple[F32, F32]:
    """A computer keyboard seen from above, ``w`` x ``h`` px: reflectance and coverage (alpha).

    Letter legends only: the number row is left out so that the only digit in the frame is the written one.
    """
    dark = rng.random() < 0.65
    body = np.full((h, w, 3), 0.1 if dark else 0.72, np.float32)
    cap = 0.16 if dark else 0.9
    legend = 0.85 if dark else 0.15
    key = w / 15.5
    gap = key * 0.12
    rows = max(1, int(h / key))
    for r in range(rows):
        x = gap + (r % 3) * key * 0.3
        y = gap + r * key
        while x + key < w:
            kw = key * (1.6 if rng.random() < 0.08 else 1.0)
            x0, y0, x1, y1 = int(x), int(y), int(x + kw - gap), int(y + key - gap)
            cv2.rectangle(body, (x0, y0), (x1, y1), (cap, cap, cap), -1, cv2.LINE_AA)
            # A soft highlight on each cap's top edge: caps are domed.
            cv2.line(body, (x0 + 2, y0 + 1), (x1 - 2, y0 + 1), (cap + 0.08,) * 3, max(1, int(key / 25)), cv2.LINE_AA)
            letter = KEY_LETTERS[int(rng.integers(len(KEY_LETTERS)))]
            cv2.putText(body, letter, (x0 + int(key * 0.15), y0 + int(key * 0.4)), cv2.FONT_HERSHEY_SIMPLEX,
                        key / 90.0, (legend,) * 3, max(1, int(key / 40)), cv2.LINE_AA)  # fmt: skip
            x += kw
    return body, np.ones((h, w), np.float32)
