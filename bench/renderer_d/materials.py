"""Desks, cloths, keyboards, paper and inks, as linear reflectance (float32 RGB, 0..1).

Everything here is drawn in plane coordinates (the desk's plane, `ppm` pixels per millimetre) so that
the camera's perspective applies to desk, page and ink alike.
"""

# mypy: disable-error-code="no-any-return"
from __future__ import annotations

import string
from typing import cast

import cv2
import numpy as np

Rng = np.random.Generator

SURFACES = ("wood", "laminate", "stone", "white")


def smooth_noise(h: int, w: int, cell_px: float, rng: Rng) -> np.ndarray:
    """Value noise in -1..1 whose features are about `cell_px` pixels wide."""
    gh, gw = max(2, int(h / max(cell_px, 1.0)) + 2), max(2, int(w / max(cell_px, 1.0)) + 2)
    grid = rng.uniform(-1.0, 1.0, (gh, gw)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def fbm(h: int, w: int, cell_px: float, rng: Rng, octaves: int = 4) -> np.ndarray:
    """Several octaves of value noise, roughly -1..1."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for _ in range(octaves):
        out += amp * smooth_noise(h, w, cell_px, rng)
        total += amp
        amp *= 0.5
        cell_px /= 2.0
        if cell_px < 1.5:
            break
    return out / total


def tint(base: np.ndarray, shade: np.ndarray) -> np.ndarray:
    """A colour (3,) times a per-pixel shade (h, w) -> (h, w, 3)."""
    return shade[..., None] * np.asarray(base, np.float32)[None, None, :]


def wood(h: int, w: int, ppm: float, rng: Rng, laminate: bool = False) -> np.ndarray:
    """Wood grain in planks: rings warped by noise, streaks along the grain, seams between planks."""
    palette = [(0.42, 0.25, 0.12), (0.20, 0.11, 0.05), (0.62, 0.45, 0.26), (0.55, 0.36, 0.20), (0.70, 0.58, 0.42)]
    base = np.asarray(palette[rng.integers(len(palette))], np.float32) * rng.uniform(0.85, 1.15)
    vertical = bool(rng.integers(2))
    hh, ww = (w, h) if vertical else (h, w)
    yy = np.arange(hh, dtype=np.float32)[:, None]
    period = rng.uniform(3.0, 9.0) * ppm
    warp = fbm(hh, ww, 40 * ppm, rng, 3) * rng.uniform(1.0, 3.0)
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (yy / period + warp))
    streak = cv2.resize(rng.uniform(-1, 1, (max(2, hh // 3), max(2, ww // int(max(8, 25 * ppm))))).astype(np.float32),
                        (ww, hh), interpolation=cv2.INTER_LINEAR)
    contrast = 0.08 if laminate else rng.uniform(0.12, 0.25)
    shade = 1.0 - contrast * rings + 0.06 * streak
    plank = rng.uniform(90, 200) * ppm
    seam_idx = np.floor(yy / plank)
    plank_shift = (np.sin(seam_idx * 12.9898 + rng.uniform(0, 6)) * 0.08).astype(np.float32)
    shade = shade * (1.0 + plank_shift)
    seam = (np.abs(yy % plank) < max(1.0, 0.4 * ppm)).astype(np.float32)
    shade = shade * (1.0 - 0.45 * seam)
    tex = tint(base, shade.astype(np.float32))
    if vertical:
        tex = np.ascontiguousarray(tex.transpose(1, 0, 2))
    return np.clip(tex, 0, 1)


def laminate(h: int, w: int, ppm: float, rng: Rng) -> np.ndarray:
    """Laminate: either a printed wood decor or a plain colour with a fine speckle."""
    if rng.random() < 0.5:
        return wood(h, w, ppm, rng, laminate=True)
    colours = [(0.55, 0.55, 0.55), (0.08, 0.08, 0.09), (0.72, 0.66, 0.55), (0.35, 0.40, 0.45), (0.80, 0.78, 0.74)]
    base = np.asarray(colours[rng.integers(len(colours))], np.float32)
    shade = 1.0 + 0.04 * fbm(h, w, 2 * ppm, rng, 2) + 0.03 * smooth_noise(h, w, 80 * ppm, rng)
    return np.clip(tint(base, shade), 0, 1)


def stone(h: int, w: int, ppm: float, rng: Rng) -> np.ndarray:
    """Granite (speckled grains) or marble (veins through a cloudy base)."""
    if rng.random() < 0.5:
        base = np.asarray([(0.35, 0.33, 0.32), (0.55, 0.50, 0.46), (0.15, 0.15, 0.16), (0.60, 0.58, 0.55)][rng.integers(4)], np.float32)
        shade = 1.0 + 0.25 * fbm(h, w, 3 * ppm, rng, 3)
        tex = tint(base, shade)
        for colour, share in (((0.05, 0.05, 0.05), 0.08), ((0.9, 0.88, 0.85), 0.05), ((0.5, 0.3, 0.25), 0.03)):
            grain = smooth_noise(h, w, max(1.5, 1.2 * ppm), rng)
            spots = (grain > 1.0 - 2 * share).astype(np.float32)[..., None]
            tex = tex * (1 - spots) + np.asarray(colour, np.float32) * spots
        return np.clip(tex, 0, 1)
    base = np.asarray([(0.85, 0.84, 0.82), (0.25, 0.25, 0.27), (0.78, 0.74, 0.68)][rng.integers(3)], np.float32)
    cloud = fbm(h, w, 60 * ppm, rng, 4)
    veins = np.abs(np.sin((np.arange(w, dtype=np.float32)[None, :] / (80 * ppm) + 3.0 * cloud) * np.pi))
    vein = cv2.GaussianBlur(np.clip(1.0 - veins / 0.08, 0, 1), (0, 0), max(0.8, 0.4 * ppm))
    shade = 1.0 + 0.06 * cloud - 0.2 * vein
    return np.clip(tint(base, shade), 0, 1)


def white_desk(h: int, w: int, ppm: float, rng: Rng) -> np.ndarray:
    """A white (or off-white) painted desk."""
    base = np.asarray([0.82, 0.82, 0.80], np.float32) * rng.uniform(0.9, 1.05)
    shade = 1.0 + 0.015 * fbm(h, w, 1.5 * ppm, rng, 2) + 0.02 * smooth_noise(h, w, 100 * ppm, rng)
    return np.clip(tint(base, shade), 0, 1)


def weave(h: int, w: int, ppm: float, rng: Rng) -> np.ndarray:
    """The over-under pattern of woven threads, as a shade around 1."""
    pitch = rng.uniform(0.4, 1.0) * ppm
    if pitch < 1.5:
        return 1.0 + 0.05 * fbm(h, w, 1.5, rng, 1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return 1.0 + 0.07 * np.sin(2 * np.pi * xx / pitch) * np.sin(2 * np.pi * yy / pitch) + 0.03 * fbm(h, w, 2.0, rng, 1)


def cloth(h: int, w: int, ppm: float, rng: Rng) -> np.ndarray:
    """A plain tablecloth or towel: one colour, weave and soft folds."""
    colours = [(0.55, 0.08, 0.08), (0.1, 0.2, 0.45), (0.15, 0.35, 0.18), (0.75, 0.7, 0.6), (0.4, 0.4, 0.42), (0.7, 0.5, 0.15)]
    base = np.asarray(colours[rng.integers(len(colours))], np.float32)
    folds = 1.0 + 0.12 * fbm(h, w, 70 * ppm, rng, 2)
    return np.clip(tint(base, weave(h, w, ppm, rng) * folds), 0, 1)


def gingham(h: int, w: int, ppm: float, rng: Rng) -> np.ndarray:
    """Gingham: white and coloured stripes both ways, darker where they cross."""
    colours = [(0.6, 0.05, 0.06), (0.08, 0.18, 0.55), (0.1, 0.4, 0.15), (0.05, 0.05, 0.05), (0.8, 0.45, 0.1)]
    colour = np.asarray(colours[rng.integers(len(colours))], np.float32)
    check = rng.uniform(4.0, 14.0) * ppm
    angle = rng.uniform(0, np.pi / 2)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    su = ((u / check) % 2.0 < 1.0).astype(np.float32)
    sv = ((v / check) % 2.0 < 1.0).astype(np.float32)
    if check > 4:
        su = cv2.GaussianBlur(su, (0, 0), 0.6)
        sv = cv2.GaussianBlur(sv, (0, 0), 0.6)
    amount = (0.5 * su + 0.5 * sv)[..., None]
    white = np.asarray([0.88, 0.87, 0.85], np.float32)
    tex = white * (1 - amount) + colour * amount
    folds = 1.0 + 0.10 * fbm(h, w, 70 * ppm, rng, 2)
    return np.clip(tex * (weave(h, w, ppm, rng) * folds)[..., None], 0, 1)


def desk(kind: str, h: int, w: int, ppm: float, rng: Rng) -> np.ndarray:
    """The named surface as an (h, w, 3) reflectance image."""
    makers = {"wood": wood, "laminate": laminate, "stone": stone, "white": white_desk, "cloth": cloth, "gingham": gingham}
    return makers[kind](h, w, ppm, rng).astype(np.float32)


def draw_keyboard(tex: np.ndarray, box: tuple[int, int, int, int], ppm: float, rng: Rng) -> dict[str, object]:
    """Draw a keyboard (letter legends only: no digits) into `tex` inside box = x0, y0, x1, y1."""
    x0, y0, x1, y1 = box
    dark = rng.random() < 0.7
    body = np.asarray((0.05, 0.05, 0.06) if dark else (0.75, 0.75, 0.74), np.float32)
    cap = np.asarray((0.09, 0.09, 0.10) if dark else (0.88, 0.88, 0.87), np.float32)
    ink = (0.75, 0.75, 0.75) if dark else (0.1, 0.1, 0.1)
    tex[y0:y1, x0:x1] = body
    pitch = 19.0 * ppm
    gap = 2.5 * ppm
    letters = string.ascii_uppercase
    rows = int((y1 - y0 - gap) // pitch)
    cols = int((x1 - x0 - gap) // pitch)
    font_scale = 4.5 * ppm / 22.0  # legends about 4.5 mm tall (Hershey simplex is 22 px at scale 1)
    for r in range(rows):
        offset = (r % 3) * 0.3 * pitch
        for c in range(cols):
            kx0 = int(x0 + gap + offset + c * pitch)
            ky0 = int(y0 + gap + r * pitch)
            kx1, ky1 = int(kx0 + pitch - gap), int(ky0 + pitch - gap)
            if kx1 >= x1 or ky1 >= y1:
                continue
            tex[ky0:ky1, kx0:kx1] = cap
            tex[ky0:ky0 + max(1, int(ppm)), kx0:kx1] = cap * 1.5
            letter = letters[int(rng.integers(len(letters)))]
            cv2.putText(tex, letter, (kx0 + int(3 * ppm), ky0 + int(8 * ppm)), cv2.FONT_HERSHEY_SIMPLEX,
                        font_scale, ink, max(1, int(0.4 * ppm)), cv2.LINE_AA)
    return {"keyboard_dark": dark, "keyboard_box_px": list(box)}


PAPER_SIZES_MM = {"a4": (210.0, 297.0), "a5": (148.0, 210.0), "a6": (105.0, 148.0), "sticky": (76.0, 76.0)}
PAPERS = ("white", "recycled", "sticky", "ruled", "squared", "dotted", "spiral")


def paper(kind: str, w_mm: float, h_mm: float, ppm: float, rng: Rng) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """A sheet: reflectance (h, w, 3), alpha (h, w; holes of a spiral binding are 0), and its details."""
    h, w = max(8, round(h_mm * ppm)), max(8, round(w_mm * ppm))
    meta: dict[str, object] = {"paper": kind}
    tooth = fbm(h, w, max(1.5, 0.3 * ppm), rng, 2)
    if kind == "recycled":
        base = np.asarray([0.74, 0.70, 0.62], np.float32) * rng.uniform(0.92, 1.05)
        shade = 1.0 + 0.03 * tooth + 0.04 * smooth_noise(h, w, 20 * ppm, rng)
        sheet = tint(base, shade)
        # Fibres and specks of the old paper: small dark dots, a few coloured ones.
        n = int(w_mm * h_mm * rng.uniform(0.05, 0.15))
        for _ in range(n):
            cx, cy = int(rng.integers(w)), int(rng.integers(h))
            r = max(1, int(rng.uniform(0.1, 0.35) * ppm))
            colour = tuple(float(v) for v in (base * rng.uniform(0.3, 0.8)))
            if rng.random() < 0.5:
                ex, ey = int(rng.normal(0, 0.8 * ppm)), int(rng.normal(0, 0.8 * ppm))
                cv2.line(sheet, (cx, cy), (cx + ex, cy + ey), colour, max(1, r // 2), cv2.LINE_AA)
            else:
                cv2.circle(sheet, (cx, cy), r, colour, -1, cv2.LINE_AA)
        meta["specks"] = n
    elif kind == "sticky":
        colours = [(0.95, 0.88, 0.35), (0.98, 0.65, 0.72), (0.65, 0.9, 0.6), (0.6, 0.82, 0.95), (0.98, 0.7, 0.35)]
        idx = int(rng.integers(len(colours)))
        sheet = tint(np.asarray(colours[idx], np.float32), 1.0 + 0.02 * tooth)
        # The glued strip at the top sits flatter and looks a touch darker.
        sheet[: max(1, int(0.2 * h))] *= 0.97
        meta["sticky_colour"] = idx
    else:
        base = np.asarray([0.88, 0.88, 0.86], np.float32) * rng.uniform(0.95, 1.03)
        sheet = tint(base, 1.0 + 0.015 * tooth)
    alpha = np.ones((h, w), np.float32)
    line_w = max(1, round(0.25 * ppm))
    if kind == "ruled":
        spacing = rng.choice([7.0, 8.0, 8.7]) * ppm
        y = 25 * ppm
        while y < h:
            cv2.line(sheet, (0, int(y)), (w, int(y)), (0.55, 0.68, 0.88), line_w, cv2.LINE_AA)
            y += spacing
        mx = int(rng.uniform(20, 32) * ppm)
        cv2.line(sheet, (mx, 0), (mx, h), (0.9, 0.45, 0.45), line_w, cv2.LINE_AA)
        meta["rule_mm"] = float(spacing / ppm)
    elif kind in ("squared", "dotted"):
        pitch = rng.choice([5.0, 5.0, 4.0, 10.0]) * ppm
        colour = (0.6, 0.72, 0.85) if rng.random() < 0.6 else (0.62, 0.62, 0.62)
        if kind == "squared":
            for x in np.arange(pitch / 2, w, pitch):
                cv2.line(sheet, (int(x), 0), (int(x), h), colour, line_w, cv2.LINE_AA)
            for y in np.arange(pitch / 2, h, pitch):
                cv2.line(sheet, (0, int(y)), (w, int(y)), colour, line_w, cv2.LINE_AA)
        else:
            dot = max(1, round(0.3 * ppm))
            for y in np.arange(pitch / 2, h, pitch):
                for x in np.arange(pitch / 2, w, pitch):
                    cv2.circle(sheet, (int(x), int(y)), dot, colour, -1, cv2.LINE_AA)
        meta["grid_mm"] = float(pitch / ppm)
    elif kind == "spiral":
        pitch = rng.uniform(6.0, 8.5) * ppm
        r = max(1, int(2.2 * ppm))
        for y in np.arange(pitch / 2, h, pitch):
            cv2.circle(alpha, (int(6 * ppm), int(y)), r, 0.0, -1, cv2.LINE_AA)
        meta["spiral_pitch_mm"] = float(pitch / ppm)
        # A perforated tear line beside the holes on many notebooks.
        cv2.line(sheet, (int(12 * ppm), 0), (int(12 * ppm), h), (0.8, 0.8, 0.78), 1, cv2.LINE_AA)
    return np.clip(sheet, 0, 1).astype(np.float32), alpha, meta


def draw_spiral_coils(tex: np.ndarray, page_to_plane: np.ndarray, h_mm: float, pitch_mm: float, ppm: float, rng: Rng) -> None:
    """Metal or plastic coils through the holes of a spiral page (page coords mapped by a 2x3 affine)."""
    colour = np.asarray([(0.55, 0.55, 0.58), (0.08, 0.08, 0.08), (0.7, 0.68, 0.6)][rng.integers(3)], np.float32)
    thick = max(1, int(0.8 * ppm))
    for y_mm in np.arange(pitch_mm / 2, h_mm, pitch_mm):
        # The front of one coil: out of the hole, over the sheet's edge, down behind it.
        t = np.linspace(0, np.pi, 16)
        pts_mm = np.stack([1.5 + 4.5 * np.cos(t), y_mm - 1.2 * np.sin(t) - 1.5 * t / np.pi], axis=1)
        pts = (np.hstack([pts_mm * ppm, np.ones((len(pts_mm), 1))]) @ page_to_plane.T).astype(np.int32)
        cv2.polylines(tex, [pts], False, tuple(float(c) for c in colour), thick, cv2.LINE_AA)
        hl = tuple(float(min(1.0, c * 1.6 + 0.1)) for c in colour)
        cv2.polylines(tex, [pts[3:8]], False, hl, max(1, thick // 3), cv2.LINE_AA)


# Ink: transmittance per channel (how much light a full-coverage stroke lets through) and its habits.
PENS: dict[str, dict[str, object]] = {
    "ballpoint_blue": {"t": (0.30, 0.35, 0.75), "width_frac": (0.025, 0.05), "skips": 0.25},
    "ballpoint_black": {"t": (0.18, 0.18, 0.22), "width_frac": (0.025, 0.05), "skips": 0.25},
    "gel_black": {"t": (0.08, 0.08, 0.10), "width_frac": (0.035, 0.06), "skips": 0.05},
    "marker_black": {"t": (0.04, 0.04, 0.05), "width_frac": (0.08, 0.16), "skips": 0.0},
    "marker_blue": {"t": (0.05, 0.12, 0.45), "width_frac": (0.08, 0.16), "skips": 0.0},
    "red_pen": {"t": (0.85, 0.15, 0.15), "width_frac": (0.03, 0.06), "skips": 0.15},
    "pencil": {"t": (0.45, 0.45, 0.47), "width_frac": (0.02, 0.045), "skips": 0.6},
}
EVERYDAY_PENS = ("ballpoint_blue", "ballpoint_black", "gel_black")


def apply_ink(sheet: np.ndarray, coverage: np.ndarray, pen: str, rng: Rng, ppm: float) -> dict[str, object]:
    """Lay ink `coverage` (same h, w as sheet) on the sheet in place."""
    spec = PENS[pen]
    t = np.asarray(spec["t"], np.float32)
    cov = coverage
    meta: dict[str, object] = {"pen": pen}
    if pen == "pencil":
        # Graphite: lighter or darker by hand pressure, broken by the paper's tooth.
        darkness = rng.uniform(0.35, 0.75)
        grain = np.clip(0.55 + 0.8 * fbm(cov.shape[0], cov.shape[1], max(1.5, 0.15 * ppm), rng, 2), 0, 1)
        cov = cov * grain * darkness
        t = t * rng.uniform(0.9, 1.2)
        meta["pencil_darkness"] = float(darkness)
    else:
        skips = float(spec["skips"])  # type: ignore[arg-type]
        if skips:
            cov = cov * (1.0 - skips * np.clip(fbm(cov.shape[0], cov.shape[1], max(2.0, 1.0 * ppm), rng, 2) + 0.3, 0, 1))
        if pen.startswith("marker"):
            cov = np.clip(cv2.GaussianBlur(cov, (0, 0), max(0.3, 0.1 * ppm)) * 1.1, 0, 1)
    sheet *= 1.0 - cov[..., None] * (1.0 - np.clip(t, 0, 1))[None, None, :]
    return meta


def pen_width_px(pen: str, digit_h_px: float, rng: Rng) -> float:
    """A stroke width for this pen, as a share of the digit's height, at least about a pixel."""
    lo, hi = cast(tuple[float, float], PENS[pen]["width_frac"])
    return float(max(1.1, digit_h_px * rng.uniform(lo, hi)))
