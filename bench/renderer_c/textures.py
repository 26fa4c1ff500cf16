"""Procedural surfaces: desks, cloths, a keyboard, and paper of several kinds.

Everything is float32 RGB in [0, 1]. Low-frequency patterns are drawn small and upscaled, which
keeps a 12 MP scene cheap to make.
"""

from __future__ import annotations

import cv2
import numpy as np

RGB = tuple[float, float, float]


def value_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth noise in [-1, 1] with features about `cell` px wide."""
    gh, gw = max(int(h / cell) + 2, 2), max(int(w / cell) + 2, 2)
    small = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def fbm(rng: np.random.Generator, h: int, w: int, cell: float, octaves: int = 3) -> np.ndarray:
    out = np.zeros((h, w), np.float32)
    amp = 1.0
    for _ in range(octaves):
        out += amp * value_noise(rng, h, w, max(cell, 2.0))
        cell /= 2
        amp /= 2
    return out / 1.75


def _tint(base: RGB, shade: np.ndarray) -> np.ndarray:
    return np.clip(shade[..., None] * np.asarray(base, np.float32), 0, 1)


def wood(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Planks of wood: grain rings warped by noise, fine streaks, darker joints."""
    s = 2  # drawn at half size: grain is soft in a photo anyway
    hh, ww = max(h // s, 8), max(w // s, 8)
    base = [(0.72, 0.54, 0.35), (0.45, 0.29, 0.18), (0.82, 0.67, 0.47), (0.58, 0.42, 0.30), (0.62, 0.60, 0.55)]
    colour = base[int(rng.integers(len(base)))]
    along_x = rng.random() < 0.5
    a, b = (hh, ww) if along_x else (ww, hh)
    y = np.arange(a, dtype=np.float32)[:, None]
    warp = value_noise(rng, a, b, b / 3) * a / 8 + value_noise(rng, a, b, a / 10) * a / 30
    period = a / rng.uniform(12, 40)
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (y + warp) / period)
    streak = cv2.resize(rng.uniform(-1, 1, (a, max(b // 40, 2))).astype(np.float32), (b, a))
    shade = 0.88 + 0.10 * rings**3 + 0.05 * streak
    plank = a / rng.uniform(1.5, 4)
    joint = (np.mod(y, plank) < max(a / 400, 1)).astype(np.float32)
    shade = shade * (1 - 0.35 * joint) + 0.06 * np.floor(y / plank) % 2 * 0.5
    if not along_x:
        shade = shade.T
    img = _tint(colour, np.ascontiguousarray(shade))
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)


def laminate(rng: np.random.Generator, h: int, w: int, colour: RGB | None = None) -> np.ndarray:
    """A coloured desk: flat colour, faint mottling and speckles."""
    palette = [(0.35, 0.38, 0.42), (0.20, 0.30, 0.45), (0.25, 0.40, 0.30), (0.12, 0.12, 0.13), (0.55, 0.22, 0.20),
               (0.70, 0.62, 0.50), (0.45, 0.45, 0.45)]
    colour = colour or palette[int(rng.integers(len(palette)))]
    shade = 1 + 0.06 * fbm(rng, h, w, min(h, w) / 4) + 0.03 * value_noise(rng, h, w, 3)
    return _tint(colour, shade)


def white_desk(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A white or very light desk: the page barely stands out from it."""
    c = float(rng.uniform(0.82, 0.95))
    colour = (c, c * rng.uniform(0.98, 1.01), c * rng.uniform(0.95, 1.01))
    return laminate(rng, h, w, colour)


def cloth(rng: np.random.Generator, h: int, w: int, gingham: bool) -> np.ndarray:
    """A woven cloth with folds; gingham lays a two-colour check over it."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # Cloth is not flat: warp the weave coordinates with slow noise.
    dx = value_noise(rng, h, w, min(h, w) / 2) * min(h, w) * 0.03
    dy = value_noise(rng, h, w, min(h, w) / 2) * min(h, w) * 0.03
    ang = rng.uniform(-0.4, 0.4)
    u = (xx + dx) * np.cos(ang) - (yy + dy) * np.sin(ang)
    v = (xx + dx) * np.sin(ang) + (yy + dy) * np.cos(ang)
    thread = max(min(h, w) / rng.uniform(250, 500), 1.6)
    weave = 0.5 + 0.25 * (np.sin(2 * np.pi * u / thread) + np.sin(2 * np.pi * v / thread))
    folds = 1 + 0.12 * fbm(rng, h, w, min(h, w) / 3, 2)
    if gingham:
        colours = [(0.75, 0.10, 0.12), (0.12, 0.25, 0.60), (0.10, 0.45, 0.20), (0.08, 0.08, 0.08), (0.85, 0.45, 0.10)]
        c = np.asarray(colours[int(rng.integers(len(colours)))], np.float32)
        period = min(h, w) / rng.uniform(5, 16)
        a = (np.mod(u, period) < period / 2).astype(np.float32)
        b = (np.mod(v, period) < period / 2).astype(np.float32)
        a = cv2.GaussianBlur(a, (0, 0), 0.8)
        b = cv2.GaussianBlur(b, (0, 0), 0.8)
        white = np.asarray((0.95, 0.94, 0.92), np.float32)
        mid = 0.5 * (white + c)
        img = (white * ((1 - a) * (1 - b))[..., None] + mid * (a * (1 - b) + b * (1 - a))[..., None]
               + c * (a * b)[..., None])
    else:
        colours = [(0.80, 0.75, 0.65), (0.30, 0.35, 0.50), (0.55, 0.15, 0.20), (0.40, 0.45, 0.35), (0.85, 0.85, 0.85)]
        img = np.broadcast_to(np.asarray(colours[int(rng.integers(len(colours)))], np.float32), (h, w, 3))
    img = img * (0.9 + 0.12 * weave)[..., None] * folds[..., None]
    return np.clip(img, 0, 1).astype(np.float32)


def add_keyboard(rng: np.random.Generator, scene: np.ndarray) -> np.ndarray:
    """Lay a keyboard along one edge of the frame (partly outside it)."""
    h, w = scene.shape[:2]
    kb_h = int(h * rng.uniform(0.18, 0.32))
    kb_w = int(w * rng.uniform(0.9, 1.4))
    dark = rng.random() < 0.6
    body = (0.10, 0.10, 0.11) if dark else (0.75, 0.76, 0.78)
    key = (0.17, 0.17, 0.18) if dark else (0.93, 0.93, 0.94)
    mark = (0.85, 0.85, 0.85) if dark else (0.2, 0.2, 0.2)
    kb = np.empty((kb_h, kb_w, 3), np.float32)
    kb[:] = body
    rows = 5
    pitch = kb_h / (rows + 0.6)
    for r in range(rows):
        y0 = int(pitch * 0.3 + r * pitch)
        x = pitch * 0.3 + (r % 3) * pitch * 0.25
        while x < kb_w - pitch:
            kw = pitch * (2.2 if rng.random() < 0.06 else 1.0)
            x1, y1 = int(x + kw - pitch * 0.12), int(y0 + pitch * 0.88)
            cv2.rectangle(kb, (int(x), y0), (x1, y1), key, -1)
            cx, cy = int(x + kw * 0.35), int(y0 + pitch * 0.4)
            s = max(int(pitch * 0.12), 1)
            cv2.line(kb, (cx, cy - s), (cx + s, cy + s), mark, max(s // 3, 1))
            x += kw
    kb = kb * (1 + 0.04 * value_noise(rng, kb_h, kb_w, kb_h / 3))[..., None]  # type: ignore[assignment]
    ang = rng.uniform(-8, 8)
    edge = int(rng.integers(4))  # 0 top, 1 bottom, 2 left, 3 right
    if edge >= 2:
        kb = np.ascontiguousarray(np.rot90(kb))
    kh, kw2 = kb.shape[:2]
    alpha = np.ones((kh, kw2), np.float32)
    m = cv2.getRotationMatrix2D((kw2 / 2, kh / 2), ang, 1.0)
    # Where the keyboard sits: centred on the chosen edge, a little outside the frame.
    off = {0: (w / 2, kh * 0.35), 1: (w / 2, h - kh * 0.35), 2: (kw2 * 0.35, h / 2), 3: (w - kw2 * 0.35, h / 2)}[edge]
    m[0, 2] += off[0] - kw2 / 2
    m[1, 2] += off[1] - kh / 2
    kb_w_ = cv2.warpAffine(kb, m, (w, h), flags=cv2.INTER_LINEAR)
    a = cv2.warpAffine(alpha, m, (w, h), flags=cv2.INTER_LINEAR)
    shadow = cv2.GaussianBlur(a, (0, 0), max(h, w) / 150)
    scene = scene * (1 - 0.4 * shadow[..., None])
    return (scene * (1 - a[..., None]) + kb_w_ * a[..., None]).astype(np.float32)


def desk(rng: np.random.Generator, kind: str, h: int, w: int) -> np.ndarray:
    """A background by name: wood, coloured, white, cloth, gingham (keyboard is added on top)."""
    if kind == "wood":
        return wood(rng, h, w)
    if kind == "coloured":
        return laminate(rng, h, w)
    if kind == "white":
        return white_desk(rng, h, w)
    if kind in ("cloth", "gingham"):
        return cloth(rng, h, w, gingham=kind == "gingham")
    raise ValueError(kind)


PAPER_KINDS = ["white", "recycled", "sticky", "ruled", "squared", "dotted", "spiral"]


def paper(rng: np.random.Generator, kind: str, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A sheet `h` x `w` px: (RGB, alpha). Alpha is 0 in spiral punch holes.

    Ruling is scaled to a page of about A5 (148 mm wide) so line pitch looks like real stationery.
    """
    mm = w / 148.0
    alpha = np.ones((h, w), np.float32)
    if kind == "recycled":
        c = rng.uniform(0.74, 0.86)
        base = (c, c * 0.97, c * rng.uniform(0.86, 0.93))
    elif kind == "sticky":
        base = [(0.99, 0.93, 0.45), (0.99, 0.70, 0.78), (0.70, 0.90, 0.70), (0.65, 0.85, 0.98), (1.0, 0.80, 0.45)][
            int(rng.integers(5))]
        mm = w / 76.0  # a 76 mm square note
    else:
        c = rng.uniform(0.92, 0.99)
        base = (c, c, c * rng.uniform(0.97, 1.0))
    shade = 1 + 0.015 * fbm(rng, h, w, min(h, w) / 3) + 0.012 * value_noise(rng, h, w, 1.5)
    img = _tint(base, shade)
    if kind == "recycled":
        img = _fibres(rng, img, mm)
    ink = (0.55, 0.70, 0.90)
    if kind == "ruled":
        pitch = mm * rng.uniform(7, 8.5)
        y = rng.uniform(mm * 15, mm * 25)
        while y < h:
            cv2.line(img, (0, int(y)), (w, int(y)), ink, max(int(mm * 0.25), 1), cv2.LINE_AA)
            y += pitch
        x = int(mm * rng.uniform(18, 28))
        cv2.line(img, (x, 0), (x, h), (0.90, 0.45, 0.45), max(int(mm * 0.3), 1), cv2.LINE_AA)
    elif kind in ("squared", "dotted"):
        pitch = mm * 5
        col = (0.62, 0.70, 0.82) if rng.random() < 0.6 else (0.68, 0.68, 0.68)
        xs = np.arange(rng.uniform(0, pitch), w, pitch)
        ys = np.arange(rng.uniform(0, pitch), h, pitch)
        if kind == "squared":
            for x in xs:  # type: ignore[assignment]
                cv2.line(img, (int(x), 0), (int(x), h), col, max(int(mm * 0.15), 1), cv2.LINE_AA)
            for y in ys:
                cv2.line(img, (0, int(y)), (w, int(y)), col, max(int(mm * 0.15), 1), cv2.LINE_AA)
        else:
            r = max(int(mm * 0.3), 1)
            for y in ys:
                for x in xs:  # type: ignore[assignment]
                    cv2.circle(img, (int(x), int(y)), r, col, -1, cv2.LINE_AA)
    elif kind == "sticky":
        # The adhesive strip curls a little: a soft band of shade along the top.
        band = np.clip(1 - np.arange(h, dtype=np.float32) / (h * 0.2), 0, 1)[:, None, None]
        img = img * (1 - 0.08 * band)
    if kind == "spiral":
        img, alpha = _spiral(rng, img, alpha, mm)
    return np.clip(img, 0, 1).astype(np.float32), alpha


def _fibres(rng: np.random.Generator, img: np.ndarray, mm: float) -> np.ndarray:
    """Recycled paper: short dark and light fibres and specks."""
    h, w = img.shape[:2]
    n = int(h * w / (mm * mm) * 0.08)
    layer = np.zeros((h, w), np.float32)
    for _ in range(min(n, 6000)):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        ang, ln = rng.uniform(0, np.pi), rng.uniform(0.5, 3) * mm
        x2, y2 = x + ln * np.cos(ang), y + ln * np.sin(ang)
        cv2.line(layer, (int(x), int(y)), (int(x2), int(y2)), float(rng.choice([-1.0, 0.6])), 1, cv2.LINE_AA)
    for _ in range(min(n // 2, 3000)):
        cv2.circle(layer, (int(rng.uniform(0, w)), int(rng.uniform(0, h))), max(int(mm * 0.2), 1), -1.2, -1)
    return img * (1 + 0.10 * layer)[..., None]


def _spiral(rng: np.random.Generator, img: np.ndarray, alpha: np.ndarray, mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Punch holes along the left edge (alpha 0) and metal coils through them."""
    h, w = img.shape[:2]
    pad = int(mm * 6)  # the coils stick out past the paper edge
    big = np.zeros((h, w + pad, 3), np.float32)
    big[:, pad:] = img
    a = np.zeros((h, w + pad), np.float32)
    a[:, pad:] = alpha
    pitch = mm * rng.uniform(6, 8.5)
    r = max(int(mm * 1.4), 2)
    metal = (0.55, 0.56, 0.60) if rng.random() < 0.7 else (0.1, 0.1, 0.1)
    y = pitch / 2
    while y < h - pitch / 4:
        cx, cy = pad + int(mm * 4), int(y)
        cv2.circle(a, (cx, cy), r, 0.0, -1, cv2.LINE_AA)
        cv2.circle(big, (cx, cy), r, (0.0, 0.0, 0.0), -1, cv2.LINE_AA)
        # The coil: a thick arc from the hole round the paper edge.
        axes = (int(mm * 4.5), int(mm * 1.6))
        th = max(int(mm * 0.8), 1)
        cv2.ellipse(big, (pad + int(mm * 0.8), cy - int(mm * 0.6)), axes, -25, 100, 330, metal, th, cv2.LINE_AA)
        cv2.ellipse(a, (pad + int(mm * 0.8), cy - int(mm * 0.6)), axes, -25, 100, 330, 1.0, th, cv2.LINE_AA)
        y += pitch
    return big, a
