"""Where the digits come from: MNIST test images, the UCI 8x8 test split, handwriting fonts.

Every source becomes a `Glyph`: something that can draw one digit as an ink-coverage mask
(float32, 0..1) at a requested height in pixels with a requested pen width. MNIST and UCI digits
are thinned to a centre line and redrawn with a round pen, so their stroke width is the pen's,
not the scanner's; fonts are drawn as the font designer drew them.
"""

# mypy: disable-error-code="no-any-return"
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

MNIST_DIR = Path(os.environ.get("RENDERER_D_MNIST", "/work/shared/datasets/mnist"))
FONT_DIRS = (Path("/usr/share/fonts"),)
# Fonts that look like handwriting (or a marker); symbol and print fonts are left out.
FONT_NAME_HINTS = ("kristi", "dancing", "comic", "dkg", "humor", "breip", "becausewe")


def read_idx(path: Path) -> np.ndarray:
    """Read a (possibly gzipped) IDX file into a numpy array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist_test(folder: Path = MNIST_DIR) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST test images (uint8, 28x28) and their labels."""

    def pick(stem: str) -> Path:
        plain = folder / stem
        return plain if plain.exists() else folder / f"{stem}.gz"

    images = read_idx(pick("t10k-images-idx3-ubyte"))
    labels = read_idx(pick("t10k-labels-idx1-ubyte"))
    return images, labels


def load_uci_test() -> tuple[np.ndarray, np.ndarray]:
    """The held-out 20% of scikit-learn's 8x8 digits (values 0..16) and their labels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    _, x_test, _, y_test = train_test_split(digits.images, digits.target, test_size=0.2, random_state=42)
    return np.asarray(x_test, dtype=np.float32), np.asarray(y_test, dtype=np.int64)


def thin_mask(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a boolean mask down to a one-pixel centre line."""
    padded = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            p = padded
            p2, p3, p4 = p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:]
            p5, p6, p7 = p[2:, 2:], p[2:, 1:-1], p[2:, :-2]
            p8, p9 = p[1:-1, :-2], p[:-2, :-2]
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            neighbours = sum(x.astype(np.int32) for x in ring[:8])
            transitions = sum(((ring[i] == 0) & (ring[i + 1] == 1)).astype(np.int32) for i in range(8))
            centre = p[1:-1, 1:-1] == 1
            base = centre & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1)
            if step == 0:
                drop = base & ((p2 * p4 * p6) == 0) & ((p4 * p6 * p8) == 0)
            else:
                drop = base & ((p2 * p4 * p8) == 0) & ((p2 * p6 * p8) == 0)
            if drop.any():
                padded[1:-1, 1:-1][drop] = 0
                changed = True
        if not changed:
            return padded[1:-1, 1:-1].astype(bool)


@dataclass
class Glyph:
    """One digit that can be drawn at any size.

    `segments` holds the centre line as (M, 4) rows x0, y0, x1, y1 in digit-height units around
    the digit's centre (y down). A font glyph has no centre line and keeps its mask instead.
    """

    digit: int
    source: str
    source_id: str
    segments: np.ndarray | None = None
    font_mask: np.ndarray | None = None
    meta: dict[str, object] = field(default_factory=dict)

    def draw(self, height_px: float, pen_px: float, rng: np.random.Generator, jitter: float = 1.0) -> np.ndarray:
        """Ink coverage (float32 0..1) with the digit `height_px` tall, in a patch with a margin."""
        # A writer's own hand: slant, small rotation and aspect change, drawn once per upload.
        shear = rng.normal(0.0, 0.12) * jitter
        angle = np.deg2rad(rng.normal(0.0, 4.0) * jitter)
        aspect = float(np.exp(rng.normal(0.0, 0.08) * jitter))
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        affine = rot @ np.array([[aspect, shear], [0.0, 1.0]])
        if self.segments is not None:
            return draw_centre_line(self.segments, affine, height_px, pen_px, rng)
        assert self.font_mask is not None
        return draw_font_mask(self.font_mask, affine, height_px, pen_px)


def draw_centre_line(
    segments: np.ndarray, affine: np.ndarray, height_px: float, pen_px: float, rng: np.random.Generator
) -> np.ndarray:
    """Draw centre-line segments with a round pen whose width wanders a little along the stroke."""
    pts = segments.reshape(-1, 2) @ affine.T
    span = pts[:, 1].max() - pts[:, 1].min()
    pts = pts / max(span, 1e-6) * height_px
    # Supersample so that thin pens keep fractional widths; cv2.line only takes whole pixels.
    ss = 4 if height_px < 160 else (2 if height_px < 480 else 1)
    margin = pen_px * 1.5 + 4
    lo = pts.min(axis=0) - margin
    size = np.ceil((pts.max(axis=0) - lo + margin) * ss).astype(int)
    canvas = np.zeros((int(size[1]), int(size[0])), dtype=np.uint8)
    local = (pts - lo) * ss
    phase = rng.uniform(0, 2 * np.pi, 4)
    freq = rng.uniform(1.5, 4.0, 2) / height_px
    shift = 4
    for row in local.reshape(-1, 4):
        mx, my = (row[0] + row[2]) / (2 * ss), (row[1] + row[3]) / (2 * ss)
        wobble = 0.5 * np.sin(mx * freq[0] * 6.28 + phase[0]) + 0.5 * np.sin(my * freq[1] * 6.28 + phase[1])
        width = max(1, round(pen_px * ss * (1.0 + 0.18 * wobble)))
        p0 = (round(row[0] * (1 << shift)), round(row[1] * (1 << shift)))
        p1 = (round(row[2] * (1 << shift)), round(row[3] * (1 << shift)))
        cv2.line(canvas, p0, p1, 255, width, cv2.LINE_AA, shift)
    out = canvas.astype(np.float32) / 255.0
    if ss > 1:
        out = cv2.resize(out, (max(1, canvas.shape[1] // ss), max(1, canvas.shape[0] // ss)), interpolation=cv2.INTER_AREA)
    return np.clip(out, 0.0, 1.0)


def draw_font_mask(mask: np.ndarray, affine: np.ndarray, height_px: float, pen_px: float) -> np.ndarray:
    """Warp a font's glyph mask to the requested height; pen_px only thickens or thins it slightly."""
    h = mask.shape[0]
    scale = height_px / h
    m = affine * scale
    corners = np.array([[0, 0], [mask.shape[1], 0], [0, h], [mask.shape[1], h]], dtype=np.float64)
    moved = corners @ m.T
    margin = 4 + pen_px
    lo = moved.min(axis=0) - margin
    size = np.ceil(moved.max(axis=0) - lo + margin).astype(int)
    mat = np.hstack([m, -lo[:, None]]).astype(np.float32)
    out = cv2.warpAffine(mask, mat, (int(size[0]), int(size[1])), flags=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0)


def centre_line_from_mask(mask: np.ndarray) -> np.ndarray:
    """Centre-line segments (x0, y0, x1, y1; digit-height units around the centre) of a digit mask."""
    skel = thin_mask(mask)
    ys, xs = np.nonzero(skel)
    if len(xs) == 0:
        raise ValueError("empty digit")
    index = {(y, x): i for i, (y, x) in enumerate(zip(ys.tolist(), xs.tolist(), strict=True))}
    links: list[tuple[int, int]] = []
    for (y, x), i in index.items():
        for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
            j = index.get((y + dy, x + dx))
            # Skip a diagonal when an L-shaped pair of orthogonal steps covers it already.
            if j is None or (dy and dx and ((y, x + dx) in index or (y + dy, x) in index)):
                continue
            links.append((i, j))
    pos = np.stack([xs, ys], axis=1).astype(np.float64)
    # The thinned line is a pixel staircase; a few rounds of neighbour averaging make it a pen line.
    if links:
        pairs = np.asarray(links)
        degree = np.bincount(pairs.ravel(), minlength=len(pos)).astype(np.float64)
        for _ in range(4):
            acc = pos.copy()
            np.add.at(acc, pairs[:, 0], pos[pairs[:, 1]])
            np.add.at(acc, pairs[:, 1], pos[pairs[:, 0]])
            smoothed = acc / (1.0 + degree)[:, None]
            keep = degree <= 1  # stroke ends stay where the writer stopped
            pos = np.where(keep[:, None], pos, smoothed)
    segs = [(*pos[i], *pos[j]) for i, j in links]
    for i in set(range(len(pos))) - {k for pair in links for k in pair}:
        segs.append((pos[i, 0], pos[i, 1], pos[i, 0] + 0.01, pos[i, 1]))
    arr = np.asarray(segs, dtype=np.float64)
    ys_all, xs_all = np.nonzero(mask)
    cy = (ys_all.min() + ys_all.max()) / 2
    cx = (xs_all.min() + xs_all.max()) / 2
    height = max(ys_all.max() - ys_all.min(), 1)
    arr[:, [0, 2]] -= cx
    arr[:, [1, 3]] -= cy
    return arr / height


def mnist_glyph(image: np.ndarray, label: int, index: int) -> Glyph:
    """An MNIST test digit as a centre line (upscaled 4x and smoothed before thinning)."""
    big = cv2.resize(image.astype(np.float32), (112, 112), interpolation=cv2.INTER_CUBIC)
    big = cv2.GaussianBlur(big, (0, 0), 1.6)
    mask = big > 0.42 * big.max()
    return Glyph(int(label), "mnist", f"mnist-test-{index}", segments=centre_line_from_mask(mask))


def uci_glyph(image: np.ndarray, label: int, index: int) -> Glyph:
    """A UCI 8x8 digit turned into a pen stroke: smooth upscale to 96 px, threshold, thin."""
    padded = np.pad(image, 1)
    big = cv2.resize(padded, (120, 120), interpolation=cv2.INTER_CUBIC)
    big = cv2.GaussianBlur(big, (0, 0), 4.0)
    mask = big > 0.45 * big.max()
    return Glyph(int(label), "uci", f"uci-test-{index}", segments=centre_line_from_mask(mask))


def font_files() -> list[Path]:
    """Handwriting-like font files installed here, sorted by path."""
    found: list[Path] = []
    for root in FONT_DIRS:
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() in (".ttf", ".otf") and any(h in path.name.lower() for h in FONT_NAME_HINTS):
                found.append(path)
    return found


def font_has_digits(path: Path) -> bool:
    """True when the font maps all ten digits to glyphs of their own (not .notdef)."""
    from fontTools.ttLib import TTFont

    try:
        font = TTFont(str(path), lazy=True)
        cmap = font.getBestCmap() or {}
        names = [cmap.get(ord(str(d))) for d in range(10)]
        glyf = font.get("glyf")
        if any(n is None for n in names) or len(set(names)) < 10:
            return False
        if glyf is not None and any(glyf[n].numberOfContours == 0 for n in names if n is not None):
            return False
    except Exception:
        return False
    return True


def font_glyph(path: Path, digit: int) -> Glyph:
    """A font's digit as a tight, 200 px tall mask."""
    font = ImageFont.truetype(str(path), 240)
    img = Image.new("L", (400, 400), 0)
    ImageDraw.Draw(img).text((80, 40), str(digit), font=font, fill=255)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    ys, xs = np.nonzero(arr > 0.05)
    if len(xs) == 0:
        raise ValueError(f"{path.name} draws no {digit}")
    crop = arr[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    scale = 200.0 / crop.shape[0]
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), 200), interpolation=cv2.INTER_AREA)
    return Glyph(digit, "font", f"font-{path.stem}-{digit}", font_mask=crop, meta={"font": path.name})


def usable_fonts() -> list[Path]:
    """Handwriting fonts that draw all ten digits, one file per distinct face."""
    return [p for p in font_files() if font_has_digits(p)]
