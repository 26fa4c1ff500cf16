"""Uploads without a camera: canvas exports, flatbed scans and clean upscales."""

from __future__ import annotations

import io
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image

from bench.renderer_d import materials as mat

Rng = np.random.Generator
Writing = Callable[[float, float, Rng], tuple[np.ndarray, dict[str, object]]]


def place(cov_shape: tuple[int, int], patch: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    """A full-size coverage map with `patch` centred at `centre` (x, y), clipped at the edges."""
    cov = np.zeros(cov_shape, np.float32)
    x0, y0 = int(np.rint(centre[0] - patch.shape[1] / 2)), int(np.rint(centre[1] - patch.shape[0] / 2))
    ys0, xs0 = max(0, -y0), max(0, -x0)
    ys1, xs1 = min(patch.shape[0], cov_shape[0] - y0), min(patch.shape[1], cov_shape[1] - x0)
    if ys1 > ys0 and xs1 > xs0:
        cov[y0 + ys0 : y0 + ys1, x0 + xs0 : x0 + xs1] = patch[ys0:ys1, xs0:xs1]
    return cov


def render_canvas(writing: Writing | None, transparent: bool, rng: Rng, wide: bool = False, source_clean: bool = False) -> tuple[bytes, str, dict[str, object]]:
    """A drawing app's PNG export: a round brush on white, or on a transparent background."""
    size = int(rng.integers(280, 401))
    h = size
    meta: dict[str, object] = {"kind": "canvas", "transparent": transparent}
    brush = float(size * rng.uniform(0.03, 0.08))
    if source_clean:
        brush = float(size * rng.uniform(0.04, 0.08))
    digit_h = size * rng.uniform(0.5, 0.8)
    patch: np.ndarray | None = None
    if writing is not None:
        if wide:
            digit_h = size * rng.uniform(0.4, 0.65)
        patch, wmeta = writing(digit_h, brush, rng)
        meta.update(wmeta)
    w = size
    if wide and patch is not None:
        w = int(max(size, patch.shape[1] + size * rng.uniform(0.15, 0.5)))
    meta.update(width=w, height=h, brush_px=round(brush, 1), digit_px=round(digit_h, 1))
    if patch is not None:
        off = rng.uniform(-0.1, 0.1, 2) * np.array([min(w - patch.shape[1], size) / 2, size / 2]).clip(0)
        cov = place((h, w), patch, (w / 2 + off[0], h / 2 + off[1]))
    else:
        cov = np.zeros((h, w), np.float32)
    colours = [(0, 0, 0), (0, 0, 0), (20, 20, 20), (30, 60, 200), (200, 30, 30)]
    colour = np.asarray(colours[int(rng.integers(2 if source_clean else len(colours)))], np.float32)
    meta["ink_rgb"] = colour.astype(int).tolist()
    buf = io.BytesIO()
    if transparent:
        # Canvas exports keep the colour everywhere and the stroke in alpha; untouched pixels are 0,0,0,0.
        rgba = np.zeros((h, w, 4), np.uint8)
        inked = cov > 0
        rgba[inked, :3] = colour.astype(np.uint8)
        rgba[..., 3] = np.clip(cov * 255 + 0.5, 0, 255).astype(np.uint8)
        Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    else:
        rgb = 255.0 * (1 - cov[..., None]) + colour[None, None, :] * cov[..., None]
        Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8), "RGB").save(buf, "PNG")
    meta["format"] = "png"
    return buf.getvalue(), "png", meta


def render_scan(writing: Writing | None, rng: Rng, pens: tuple[str, ...] = mat.EVERYDAY_PENS, number: bool = False) -> tuple[bytes, str, dict[str, object]]:
    """A flatbed scan: even light, a slightly tilted sheet, paper texture, 150-300 dpi."""
    dpi = int(rng.choice([150, 200, 300, 240]))
    ppm = dpi / 25.4
    meta: dict[str, object] = {"kind": "scan", "dpi": dpi}
    # Scan area: what the user cropped the scan to (a note card, a half page, a sticky note).
    area_mm = [(148.0, 105.0), (105.0, 148.0), (127.0, 76.0), (90.0, 90.0), (148.0, 210.0)][int(rng.integers(5))]
    if number:
        area_mm = (float(rng.uniform(150, 210)), float(rng.uniform(70, 110)))
    w_mm, h_mm = area_mm
    paper_kind = str(rng.choice(["white", "white", "recycled", "ruled", "squared"]))
    sheet, _, pmeta = mat.paper(paper_kind, w_mm, h_mm, ppm, rng)
    meta.update(pmeta)
    meta.update(scan_mm=[w_mm, h_mm])
    h, w = sheet.shape[:2]
    if writing is not None:
        pen = str(rng.choice(pens))
        digit_mm = rng.uniform(12, 30) if number else rng.uniform(15, min(55.0, 0.7 * min(w_mm, h_mm)))
        digit_px = digit_mm * ppm
        pen_px = mat.pen_width_px(pen, digit_px, rng)
        patch, wmeta = writing(digit_px, pen_px, rng)
        if patch.shape[1] > 0.9 * w:
            s = 0.9 * w / patch.shape[1]
            digit_px *= s
            patch, wmeta = writing(digit_px, max(1.1, pen_px * s), rng)
        meta.update(wmeta)
        off = rng.uniform(-0.25, 0.25, 2) * np.array([max(0, w - patch.shape[1]), max(0, h - patch.shape[0])])
        cov = place((h, w), patch, (w / 2 + off[0], h / 2 + off[1]))
        meta.update(mat.apply_ink(sheet, cov, pen, rng, ppm))
        meta.update(digit_mm=round(digit_px / ppm, 1), pen_px=round(pen_px, 2))
    # The sheet lies a little crooked on the glass; the lid (white or black) shows past its edges.
    tilt = float(rng.uniform(-3, 3))
    lid = (0.9, 0.9, 0.9) if rng.random() < 0.7 else (0.05, 0.05, 0.05)
    shift = rng.uniform(-0.03, 0.03, 2) * np.array([w, h])
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), tilt, 1.0)
    rot[:, 2] += shift
    img = cv2.warpAffine(sheet, rot, (w, h), flags=cv2.INTER_LINEAR, borderValue=lid)
    # Scanner light: nearly flat, a touch darker where the page lifts at the edge.
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    img = img * (1.0 - 0.04 * xx**8)[..., None] * rng.uniform(1.0, 1.12)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 0.8))
    img = img + rng.normal(0, rng.uniform(0.003, 0.01), img.shape).astype(np.float32)
    srgb = np.power(np.clip(img, 0, 1), 1 / 2.2)
    grey = rng.random() < 0.5
    meta.update(tilt_deg=round(tilt, 2), lid=lid[0], greyscale=grey, width=w, height=h)
    arr = np.clip(srgb * 255 + 0.5, 0, 255).astype(np.uint8)
    pil = Image.fromarray(arr).convert("L") if grey else Image.fromarray(arr)
    buf = io.BytesIO()
    if rng.random() < 0.5:
        q = int(rng.integers(80, 96))
        pil.save(buf, "JPEG", quality=q, dpi=(dpi, dpi))
        meta.update(format="jpeg", jpeg_quality=q)
        return buf.getvalue(), "jpg", meta
    pil.save(buf, "PNG", dpi=(dpi, dpi))
    meta.update(format="png")
    return buf.getvalue(), "png", meta
