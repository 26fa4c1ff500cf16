"""What is written: one digit, or a number of several digits on one line."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from bench.renderer_d.sources import Glyph

Rng = np.random.Generator
Patch = tuple[np.ndarray, dict[str, object]]
WriteFn = Callable[[float, float, Rng], Patch]


def write_digit(glyph: Glyph) -> WriteFn:
    """A writing callback that draws one digit."""

    def write(height_px: float, pen_px: float, rng: Rng) -> Patch:
        return glyph.draw(height_px, pen_px, rng), {"pen_px_asked": round(pen_px, 2)}

    return write


def row_extents(mask: np.ndarray, threshold: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the first and last inked column (-1 where the row is empty)."""
    ink = mask > threshold
    any_ink = ink.any(axis=1)
    first = np.where(any_ink, ink.argmax(axis=1), -1)
    last = np.where(any_ink, mask.shape[1] - 1 - ink[:, ::-1].argmax(axis=1), -1)
    return first, last


def compose_number(
    glyphs: list[Glyph], height_px: float, pen_px: float, rng: Rng, touch_p: float = 0.18, allow_touch: bool = True
) -> Patch:
    """Write the glyphs left to right on one line, the way a person writes a number.

    Sizes, baselines and slants vary a little from digit to digit around the writer's own habit.
    The gap to the previous digit is measured ink to ink on the same rows (as the eye spaces
    writing); with probability `touch_p` it is negative, so the two digits' ink touches.
    """
    slant = rng.normal(0.0, 0.1)
    parts: list[np.ndarray] = []
    for g in glyphs:
        sub = np.random.default_rng(rng.integers(1 << 31))
        h = height_px * float(np.exp(rng.normal(0, 0.06)))
        patch = g.draw(h, pen_px, sub, jitter=0.5)
        if abs(slant) > 0.01:
            m = np.array([[1, -slant, max(slant, 0.0) * patch.shape[0]], [0, 1, 0]], np.float32)
            patch = cv2.warpAffine(patch, m, (patch.shape[1] + int(abs(slant) * patch.shape[0]) + 1, patch.shape[0]))
        parts.append(patch)
    pad = int(height_px * 0.6) + 4
    total_h = int(max(p.shape[0] for p in parts) + 2 * pad)
    total_w = int(sum(p.shape[1] for p in parts) + height_px * 0.6 * len(parts) + 2 * pad)
    canvas = np.zeros((total_h, total_w), np.float32)
    boxes: list[list[int]] = []
    gaps: list[float] = []
    touching: list[bool] = []
    x_cursor = pad
    for i, p in enumerate(parts):
        baseline_shift = int(rng.normal(0, 0.04) * height_px)
        top = (total_h - p.shape[0]) // 2 + baseline_shift
        top = int(np.clip(top, 0, total_h - p.shape[0]))
        if i == 0:
            left = x_cursor
        else:
            touch = allow_touch and rng.random() < touch_p
            gap = -rng.uniform(0.3, 0.9) * pen_px if touch else height_px * rng.uniform(0.08, 0.35)
            # Where would p's ink start and the line so far end, row by row, if p sat at x = 0?
            first_p, _ = row_extents(p)
            _, last_c = row_extents(canvas[top : top + p.shape[0]])
            both = (first_p >= 0) & (last_c >= 0)
            reach = np.max(last_c[both] - first_p[both]) + 1 if both.any() else x_cursor
            left = int(np.ceil(reach + gap))
            touching.append(bool(touch and both.any()))
            gaps.append(round(float(gap), 2))
        left = int(np.clip(left, 0, total_w - p.shape[1]))
        region = canvas[top : top + p.shape[0], left : left + p.shape[1]]
        np.maximum(region, p, out=region)
        ys, xs = np.nonzero(p > 0.25)
        boxes.append([left + int(xs.min()), top + int(ys.min()), left + int(xs.max()) + 1, top + int(ys.max()) + 1])
        x_cursor = left + p.shape[1]
    ys, xs = np.nonzero(canvas > 0.02)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    margin = int(pen_px) + 3
    y0, x0 = max(0, y0 - margin), max(0, x0 - margin)
    out = canvas[y0 : y1 + margin, x0 : x1 + margin]
    boxes = [[b[0] - x0, b[1] - y0, b[2] - x0, b[3] - y0] for b in boxes]
    meta: dict[str, object] = {
        "slant": round(float(slant), 3),
        "gaps_px": gaps,
        "touching_pairs": [i for i, t in enumerate(touching) if t],
        "digit_boxes_px": boxes,
        "pen_px_asked": round(pen_px, 2),
    }
    return out, meta


def write_number(glyphs: list[Glyph], allow_touch: bool = True) -> WriteFn:
    """A writing callback that draws a number; `height_px` is one digit's height."""

    def write(height_px: float, pen_px: float, rng: Rng) -> Patch:
        return compose_number(glyphs, height_px, pen_px, rng, allow_touch=allow_touch)

    return write

