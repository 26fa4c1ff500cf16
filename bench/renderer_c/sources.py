"""Ink masks from the held-out digit sources: MNIST test, the UCI 8x8 test split, handwriting fonts.

An ink mask is a float32 array in [0, 1] (1 = full ink), cropped tight to the strokes. Masks are
made at the resolution they will be drawn at, so strokes stay crisp whatever the output size.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

MNIST_DIR = Path("/work/shared/datasets/mnist")

# Handwriting-like fonts from Debian packages (every one has all ten digits; checked by rendering).
FONT_FILES = [
    "/usr/share/fonts/truetype/fifthhorseman/dkg.ttf",
    "/usr/share/fonts/truetype/fifthhorseman/dkgIt.ttf",
    "/usr/share/fonts/truetype/fifthhorseman/dkgBd.ttf",
    "/usr/share/fonts/truetype/breip/Breip.ttf",
    "/usr/share/fonts/truetype/humor-sans/Humor-Sans.ttf",
    "/usr/share/fonts/truetype/kristi/Kristi.ttf",
    "/usr/share/fonts/opentype/comic-neue/ComicNeue-Regular.otf",
    "/usr/share/fonts/opentype/comic-neue/ComicNeue-BoldItalic.otf",
    "/usr/share/fonts/opentype/comic-neue/ComicNeue-Light.otf",
    "/usr/share/fonts/opentype/dancingscript/DancingScript-Regular.otf",
    "/usr/share/fonts/opentype/dancingscript/DancingScript-Bold.otf",
    "/usr/share/fonts/opentype/bwht/BecauseWeBuild-Regular.otf",
    "/usr/share/fonts/opentype/bwht/BecauseWeConnect-Regular.otf",
    "/usr/share/fonts/opentype/bwht/BecauseWeCreate-Regular.otf",
    "/usr/share/fonts/opentype/bwht/BecauseWeLearn-Regular.otf",
    "/usr/share/fonts/opentype/bwht/BecauseWeMentor-Regular.otf",
    "/usr/share/fonts/opentype/bwht/BecauseWeOrganize-Regular.otf",
]


@dataclass(frozen=True)
class Glyph:
    """One digit from a source: its grey levels (white ink on black, 0..1) and provenance."""

    image: np.ndarray
    label: int
    source: str


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _find(stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (MNIST_DIR / name).exists():
            return MNIST_DIR / name
    raise FileNotFoundError(f"{stem} not found in {MNIST_DIR}")


@cache
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST test digits (uint8, 28x28) and labels; never the training files."""
    images = _read_idx(_find("t10k-images-idx3-ubyte"))
    labels = _read_idx(_find("t10k-labels-idx1-ubyte"))
    return images, labels


@cache
def uci_test() -> tuple[np.ndarray, np.ndarray]:
    """The 360-digit test part of the UCI 8x8 digits (values 0..16), split as the brief fixes."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    _, x_test, _, y_test = train_test_split(digits.images, digits.target, test_size=0.2, random_state=42)
    return x_test, y_test


@cache
def mnist_order(seed: int) -> np.ndarray:
    """A fixed permutation of the MNIST test indices: uploads draw from it in turn, so none repeats."""
    return np.random.default_rng(seed).permutation(len(mnist_test()[1]))


def mnist_glyph(k: int, seed: int) -> Glyph:
    images, labels = mnist_test()
    i = int(mnist_order(seed)[k % len(labels)])
    return Glyph(images[i].astype(np.float32) / 255.0, int(labels[i]), f"mnist:{i}")


def uci_glyph(k: int, seed: int) -> Glyph:
    images, labels = uci_test()
    i = int(np.random.default_rng(seed + 1).permutation(len(labels))[k % len(labels)])
    return Glyph(images[i].astype(np.float32) / 16.0, int(labels[i]), f"uci:{i}")


@cache
def _font_glyph(path: str, digit: int) -> np.ndarray:
    font = ImageFont.truetype(path, 160)
    im = Image.new("L", (300, 300), 0)
    ImageDraw.Draw(im).text((60, 40), str(digit), font=font, fill=255)
    return np.asarray(im, dtype=np.float32) / 255.0


def font_glyph(k: int, rng: np.random.Generator) -> Glyph:
    digit = k % 10
    path = FONT_FILES[int(rng.integers(len(FONT_FILES)))]
    return Glyph(_font_glyph(path, digit), digit, f"font:{Path(path).name}")


def crop_to_ink(img: np.ndarray, thresh: float = 0.08) -> np.ndarray:
    ys, xs = np.nonzero(img > thresh)
    if len(ys) == 0:
        return img
    return img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def pen_mask(glyph: np.ndarray, height: int, weight: float, softness: float = 0.08) -> np.ndarray:
    """Upscale grey levels smoothly to `height` px and turn them into a pen stroke.

    `weight` in (0, 1): the grey level where the pen edge sits; lower writes thicker strokes.
    A sigmoid around it keeps edges anti-aliased instead of showing the source's blur.
    """
    src = crop_to_ink(glyph)
    scale = max(height, 4) / src.shape[0]
    pad = 2
    src = np.pad(src, pad)
    size = (max(int(round(src.shape[1] * scale)), 3), max(int(round(src.shape[0] * scale)), 3))  # noqa: RUF046
    up = cv2.resize(src, size, interpolation=cv2.INTER_CUBIC)
    # Smooth away the pixel staircase of a 28x28 (or 8x8) source before thresholding it.
    sigma = max(scale * 0.35, 0.5)
    up = cv2.GaussianBlur(up, (0, 0), sigma)
    edge = softness * (1.0 + 1.0 / max(scale, 1.0))
    return (1.0 / (1.0 + np.exp(-(up - weight) / edge))).astype(np.float32)


def soft_mask(glyph: np.ndarray, height: int, blur: float = 0.6) -> np.ndarray:
    """Upscale grey levels as they are (blurry ink, as an 8x8 digit really is), no thresholding."""
    src = np.pad(crop_to_ink(glyph, 0.02), 1)
    scale = max(height, 4) / src.shape[0]
    size = (max(int(round(src.shape[1] * scale)), 3), max(int(round(src.shape[0] * scale)), 3))  # noqa: RUF046
    up = cv2.resize(src, size, interpolation=cv2.INTER_CUBIC)
    up = cv2.GaussianBlur(up, (0, 0), max(scale * blur, 0.5))
    return np.clip(up / max(float(up.max()), 1e-6), 0, 1).astype(np.float32)


def slant(mask: np.ndarray, shear: float, angle: float = 0.0) -> np.ndarray:
    """Shear (italic slant, dx = shear * dy) and rotate a mask, growing the canvas to fit."""
    h, w = mask.shape
    m = np.array([[1, -shear, shear * h / 2], [0, 1, 0]], dtype=np.float64)
    r = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    full = r @ np.vstack([m, [0, 0, 1]])
    corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], dtype=np.float64).T
    pts = full @ corners
    x0, y0 = pts[0].min(), pts[1].min()
    full[0, 2] -= x0
    full[1, 2] -= y0
    out_w, out_h = int(np.ceil(pts[0].max() - x0)) + 1, int(np.ceil(pts[1].max() - y0)) + 1
    out = cv2.warpAffine(mask, full, (out_w, out_h), flags=cv2.INTER_LINEAR, borderValue=0)
    return crop_to_ink(out, 0.02)


def compose_number(
    glyphs: list[np.ndarray], height: int, rng: np.random.Generator, gap_after: int | None, touching: bool,
    render: Callable[[np.ndarray, int], np.ndarray] | None = None,
) -> np.ndarray:
    """Write several digits on one line like a person would: sizes, baseline, slant and spacing vary.

    Args:
        glyphs: grey-level digits (white on black, any size).
        height: the nominal digit height in px.
        gap_after: index of the digit after which a wide gap (a space) is left, or None.
        touching: let neighbours overlap so their strokes touch.
        render: draws one digit at a height (default: MNIST's own stroke, `pen_mask`).
    Returns:
        The ink mask of the whole line.
    """
    shear = float(rng.normal(0.12, 0.12))
    weight = float(rng.uniform(0.3, 0.55))
    parts = []
    for g in glyphs:
        h = int(height * rng.uniform(0.85, 1.12))
        m = render(g, h) if render else pen_mask(g, h, weight)
        parts.append(slant(m, shear + float(rng.normal(0, 0.05)), float(rng.normal(0, 3))))
    total_h = int(height * 1.6)
    gaps = []
    for i in range(len(parts) - 1):
        if touching and rng.random() < 0.6:
            gaps.append(int(-height * rng.uniform(0.04, 0.12)))
        else:
            gaps.append(int(height * rng.uniform(0.05, 0.35)))
        if gap_after is not None and i == gap_after:
            gaps[-1] = int(height * rng.uniform(1.1, 1.6))
    width = sum(p.shape[1] for p in parts) + sum(gaps) + 4
    line = np.zeros((total_h, max(width, 8)), np.float32)
    x = 2
    base = int(height * 1.3)
    drift = float(rng.normal(0, 0.04))  # a baseline that climbs or sinks across the number
    for i, p in enumerate(parts):
        ph, pw = p.shape
        y = base - ph + int(rng.normal(0, height * 0.04) + drift * x)
        y = int(np.clip(y, 0, total_h - ph))
        x = max(x, 0)
        region = line[y : y + ph, x : x + pw]
        np.maximum(region, p[: region.shape[0], : region.shape[1]], out=region)
        x += pw + (gaps[i] if i < len(gaps) else 0)
    return crop_to_ink(line, 0.02)


def _thin(binary: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean image to one-pixel-wide centre lines."""
    img = binary.astype(np.uint8)
    while True:
        changed = False
        for step in (0, 1):
            p = np.pad(img, 1)
            p2, p3, p4 = p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:]
            p5, p6, p7 = p[2:, 2:], p[2:, 1:-1], p[2:, :-2]
            p8, p9 = p[1:-1, :-2], p[:-2, :-2]
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            b = sum(x.astype(np.int32) for x in ring[:-1])
            a = sum(((ring[i] == 0) & (ring[i + 1] == 1)).astype(np.int32) for i in range(8))
            first = step == 0
            cond = ((p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)) if first else ((p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0))
            kill = (img == 1) & (b >= 2) & (b <= 6) & (a == 1) & cond
            if kill.any():
                img[kill] = 0
                changed = True
        if not changed:
            return img.astype(bool)


def stroke_mask(glyph: np.ndarray, height: int, width: float) -> np.ndarray:
    """Redraw a digit along its centre line with a round pen `width` px wide.

    A person writing a 4 cm digit with a ballpoint leaves a line ~1/60 of its height, not the
    thick strokes of a 20 px MNIST digit scaled up; this keeps the shape and sets the pen.
    """
    work = 96
    src = np.pad(crop_to_ink(glyph), 2)
    s = work / src.shape[0]
    up = cv2.resize(src, (max(int(src.shape[1] * s), 3), work), interpolation=cv2.INTER_CUBIC)
    up = cv2.GaussianBlur(up, (0, 0), s * 0.4)
    skel = _thin(up > 0.4)
    pts, edges = _skeleton_graph(skel)
    if len(pts) < 2:
        return pen_mask(glyph, height, 0.4)
    pts -= pts.min(axis=0)
    # Scale so the drawn digit (centre line plus the pen's width) is `height` px tall.
    k = max(height - width, 2) / max(float(pts[:, 0].max()), 1.0)
    pad = int(width) + 2
    pts = pts * k + pad
    out = np.zeros((int(pts[:, 0].max()) + pad + 1, int(pts[:, 1].max()) + pad + 1), np.uint8)
    sh = 4  # sub-pixel precision for cv2 drawing
    t = max(round(width), 1)
    fix = (pts[:, ::-1] * 2**sh).astype(np.int32)
    for i, j in edges:
        cv2.line(out, (int(fix[i, 0]), int(fix[i, 1])), (int(fix[j, 0]), int(fix[j, 1])), 255, t, cv2.LINE_AA, sh)
    m = out.astype(np.float32) / 255.0
    if width < 1.0:  # a pen finer than a pixel leaves a fainter line, not a thinner one
        m *= width
    return crop_to_ink(m, 0.02)


def _skeleton_graph(skel: np.ndarray, prune: int = 3, smooth: int = 4) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Centre-line pixels as a graph: spurs pruned, staircase smoothed. Returns (points yx, edges)."""
    on = {(int(y), int(x)) for y, x in zip(*np.nonzero(skel), strict=True)}
    steps = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]

    def neighbours(p: tuple[int, int]) -> list[tuple[int, int]]:
        return [(p[0] + dy, p[1] + dx) for dy, dx in steps if (p[0] + dy, p[1] + dx) in on]

    for _ in range(prune):  # thinning leaves short forks at blunt stroke ends
        ends = [p for p in on if len(neighbours(p)) <= 1]
        if len(on) - len(ends) < 8:
            break
        on.difference_update(ends)
    index = {p: i for i, p in enumerate(sorted(on))}
    pts = np.array(sorted(on), dtype=np.float64).reshape(-1, 2)
    nbr = [[index[q] for q in neighbours(p)] for p in sorted(on)]
    edges = [(i, j) for i, ns in enumerate(nbr) for j in ns if i < j]
    for _ in range(smooth):
        new = pts.copy()
        for i, ns in enumerate(nbr):
            if len(ns) == 2:  # move only plain path points; ends and junctions stay put
                new[i] = 0.5 * pts[i] + 0.25 * (pts[ns[0]] + pts[ns[1]])
        pts = new
    return pts, edges
