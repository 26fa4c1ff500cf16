"""Flat uploads: browser canvas exports, flatbed scans and clean upscaled 8x8 digits."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

from . import textures


def _png(arr: np.ndarray, mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, "PNG")
    return buf.getvalue()


def _place(mask: np.ndarray, h: int, w: int, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """Put a mask on an h x w field, centred give or take `jitter` of the free space."""
    out = np.zeros((h, w), np.float32)
    mh, mw = min(mask.shape[0], h), min(mask.shape[1], w)
    fy, fx = h - mh, w - mw
    y = int(np.clip(fy / 2 + rng.uniform(-jitter, jitter) * fy, 0, fy))
    x = int(np.clip(fx / 2 + rng.uniform(-jitter, jitter) * fx, 0, fx))
    out[y : y + mh, x : x + mw] = mask[:mh, :mw]
    return out


def canvas(mask: np.ndarray, h: int, w: int, transparent: bool, rng: np.random.Generator) -> bytes:
    """A browser canvas export: anti-aliased dark strokes, on white or on a transparent background."""
    a = _place(mask, h, w, rng, 0.35)
    if transparent:
        # toDataURL keeps the stroke colour where alpha > 0 and (0, 0, 0, 0) elsewhere.
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., 3] = (a * 255 + 0.5).astype(np.uint8)
        return _png(rgba, "RGBA")
    grey = int(rng.choice([0, 0, 17, 34]))
    rgb = (255 - a * (255 - grey) + 0.5).astype(np.uint8)
    return _png(np.repeat(rgb[..., None], 3, axis=2), "RGB")


def scan(mask: np.ndarray, h: int, w: int, rng: np.random.Generator, noise: float = 3.0) -> bytes:
    """A greyscale flatbed scan: off-white paper, dark ink, a little skew, blur and sensor noise."""
    a = _place(mask, h, w, rng, 0.25)
    skew = rng.normal(0, 1.5)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), skew, 1.0)
    a = cv2.warpAffine(a, m, (w, h), flags=cv2.INTER_LINEAR)
    paper = rng.uniform(225, 250) + 4 * textures.value_noise(rng, h, w, max(h, w) / 3)
    ink = rng.uniform(15, 70)
    img = paper * (1 - a) + ink * a
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), rng.uniform(0.4, 0.8))
    img = img + rng.normal(0, noise, (h, w))
    return _png(np.clip(img + 0.5, 0, 255).astype(np.uint8), "L")


def uci_clean(image8: np.ndarray, blocks: bool, rng: np.random.Generator) -> bytes:
    """An 8x8 digit scaled up to fill most of the image, black on white: smooth or as blocks."""
    side = int(rng.choice([128, 200, 256, 320]))
    margin = int(side * rng.uniform(0.0, 0.12))
    inner = side - 2 * margin
    v = image8.astype(np.float32) / 16.0
    interp = cv2.INTER_NEAREST if blocks else cv2.INTER_CUBIC
    up = np.clip(cv2.resize(v, (inner, inner), interpolation=interp), 0, 1)
    out = np.full((side, side), 255, np.uint8)
    out[margin : margin + inner, margin : margin + inner] = (255 - up * 255 + 0.5).astype(np.uint8)
    return _png(out, "L")
