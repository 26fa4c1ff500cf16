"""Render one upload: a digit (or none) and a condition in, encoded file bytes out.

The order follows the physics of a photo: ink on paper (reflectance), the sheet's geometry onto the surface,
the light (multiplies reflectance; glare adds), then the camera (lens blur, resampling to the sensor's size,
sensor noise, the phone's sharpening, JPEG). Everything is drawn from the ``rng`` passed in, so one seed gives
the same bytes every time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image

from bench.renderer_b.conditions import PhotoSpec
from bench.renderer_b.materials import (
    F32,
    Pen,
    apply_ink,
    colourise,
    draw_keyboard,
    draw_pen,
    f32,
    make_paper,
    make_surface,
    paper_aspect,
    pen_coverage,
    restroke,
    spiral_coil_points,
    value_noise,
)
from bench.renderer_b.sources import Glyph

Rng = np.random.Generator

# The scene is drawn at most this many pixels, then resampled to the photo's size: a 12 MP photo is no sharper
# than its lens, and drawing every texture at 12 MP would cost seconds per file. A small digit gets more pixels,
# so that it is drawn at least MIN_DIGIT_PX tall before the resampling.
WORK_PIXELS = 0.75e6
MIN_DIGIT_PX = 64
EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


@dataclass
class Upload:
    """One rendered file and what is known about it (for the manifest)."""

    data: bytes
    fmt: str
    width: int  # as viewed, after the EXIF orientation
    height: int
    digit_box: tuple[int, int, int, int] | None  # x, y, w, h in the viewed image
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def ext(self) -> str:
        return EXT[self.fmt]


# ---------------------------------------------------------------------------------------------------------------
# Encoding


def encode(
    rgb: np.ndarray[Any, Any], fmt: str, quality: int, exif_orientation: int | None = None, rng: Rng | None = None
) -> bytes:
    """Encode a uint8 image (HxW grey, HxWx3 RGB or HxWx4 RGBA) as seen upright.

    With an EXIF orientation other than 1 the pixels are stored rotated and the tag says how to turn them back,
    as a phone held sideways writes its JPEGs.
    """
    img = Image.fromarray(rgb)
    buf = io.BytesIO()
    kwargs: dict[str, Any] = {}
    if exif_orientation is not None:
        # The inverse of the turn a viewer applies for the tag (ImageOps.exif_transpose's table).
        inverse = {1: None, 3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
        turn = inverse[exif_orientation]
        if turn is not None:
            img = img.transpose(turn)
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        exif[0x010F] = "Phone"  # Make
        kwargs["exif"] = exif.tobytes()
    if fmt == "JPEG":
        sub = 0 if (rng is not None and quality >= 90 and rng.random() < 0.3) else 2  # 4:4:4 or 4:2:0
        img.save(buf, "JPEG", quality=quality, subsampling=sub, **kwargs)
    elif fmt == "WEBP":
        img.save(buf, "WEBP", quality=quality, method=4)
    else:
        img.save(buf, "PNG", compress_level=3)
    return buf.getvalue()


def to_u8(img: F32) -> np.ndarray[Any, np.dtype[np.uint8]]:
    return np.asarray(np.clip(img * 255.0 + 0.5, 0, 255), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# Camera


def disk_kernel(radius: float) -> F32:
    r = max(0.5, radius)
    n = int(np.ceil(r)) * 2 + 1
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) - n // 2
    k = np.clip(r + 0.5 - np.sqrt(xx**2 + yy**2), 0, 1).astype(np.float32)
    return f32(k / k.sum())


def line_kernel(length: float, angle: float) -> F32:
    n = int(np.ceil(length)) | 1
    k = np.zeros((n, n), np.float32)
    c = n // 2
    dx, dy = np.cos(angle) * (length / 2), np.sin(angle) * (length / 2)
    cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1, cv2.LINE_AA)
    return k / max(float(k.sum()), 1e-6)


def lens(img: F32, blur_px: float, defocus_px: float, motion_px: float, rng: Rng) -> F32:
    """Optical blur at the working resolution: a little always, plus defocus (a disk) and camera shake (a line)."""
    if defocus_px > 0.7:
        img = f32(cv2.filter2D(img, -1, disk_kernel(defocus_px)))
    if motion_px > 1.0:
        img = f32(cv2.filter2D(img, -1, line_kernel(motion_px, float(rng.uniform(0, np.pi)))))
    if blur_px > 0.2:
        img = f32(cv2.GaussianBlur(img, (0, 0), blur_px))
    return img


def sensor(img: F32, noise: float, rng: Rng, chroma: float = 0.5) -> F32:
    """Photon and read noise: brighter pixels get more (std ~ sqrt(signal)); colour noise is blotchy."""
    h, w = img.shape[:2]
    lum = rng.standard_normal((h, w), dtype=np.float32)
    std = noise * np.sqrt(np.clip(f32(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)), 0.02, 1.5) / 0.5)
    out = img + (lum * std)[:, :, None]
    if chroma > 0:
        ch, cw = max(2, h // 4), max(2, w // 4)
        blot = f32(cv2.resize(rng.standard_normal((ch, cw, 3), dtype=np.float32), (w, h), interpolation=cv2.INTER_LINEAR))
        out = out + blot * (std * chroma)[:, :, None]
    return f32(out)


def wide_blur(img: F32, sigma: float) -> F32:
    """A Gaussian blur; a wide one is done at a lower resolution (the result is smooth anyway, and 10x faster)."""
    if sigma <= 6:
        return f32(cv2.GaussianBlur(img, (0, 0), max(0.3, sigma)))
    f = sigma / 3.0
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(2, int(w / f)), max(2, int(h / f))), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 3.0)
    return f32(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))


def unsharp(img: F32, amount: float, sigma: float = 1.2) -> F32:
    if amount <= 0.01:
        return img
    return img + amount * (img - f32(cv2.GaussianBlur(img, (0, 0), sigma)))


# ---------------------------------------------------------------------------------------------------------------
# Geometry


def frame_size(megapixels: float, aspect: float, portrait: bool) -> tuple[int, int]:
    long = np.sqrt(megapixels * 1e6 * aspect)
    short = long / aspect
    w, h = (short, long) if portrait else (long, short)
    return int(round(w / 2) * 2), int(round(h / 2) * 2)


def rotation(rz: float, rx: float, ry: float) -> F32:
    cz, sz = np.cos(rz), np.sin(rz)
    cx, sx = np.cos(rx), np.sin(rx)
    cy, sy = np.cos(ry), np.sin(ry)
    z = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    return f32(y @ x @ z)


def page_homography(
    pw: float, ph: float, anchor: tuple[float, float], target: tuple[float, float], spec: PhotoSpec, focal: float
) -> F32:
    """The map from page pixels to frame pixels: the sheet turned, seen by a tilted pinhole camera.

    ``anchor`` (a point on the page, e.g. the digit's centre) lands on ``target`` in the frame, at scale 1.
    """
    corners = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    local = corners - np.asarray(anchor, np.float32)
    pts = np.concatenate([local, np.zeros((4, 1), np.float32)], axis=1)
    r = rotation(np.radians(spec.rotation_deg), np.radians(spec.tilt_deg[0]), np.radians(spec.tilt_deg[1]))
    p3 = pts @ r.T
    z = focal + p3[:, 2]
    proj = focal * p3[:, :2] / z[:, None] + np.asarray(target, np.float32)
    return f32(cv2.getPerspectiveTransform(corners, proj.astype(np.float32)))


def map_points(hmat: F32, pts: np.ndarray[Any, Any]) -> F32:
    return f32(cv2.perspectiveTransform(np.asarray(pts, np.float32).reshape(-1, 1, 2), hmat)).reshape(-1, 2)


def outside_share(hmat: F32, pw: float, ph: float, w: int, h: int) -> float:
    """Share of the sheet that falls outside the frame (on a 24x24 grid of points)."""
    g = np.linspace(0.02, 0.98, 24)
    pts = np.stack(np.meshgrid(g * pw, g * ph), axis=-1).reshape(-1, 2)
    m = map_points(hmat, pts)
    inside = (m[:, 0] >= 0) & (m[:, 0] < w) & (m[:, 1] >= 0) & (m[:, 1] < h)
    return float(1.0 - inside.mean())


# ---------------------------------------------------------------------------------------------------------------
# Light


def smooth_field(h: int, w: int, fn: Any) -> F32:
    """Evaluate a smooth function of normalised coordinates at 1/8 resolution and upscale (lights are smooth)."""
    sh, sw = max(4, h // 8), max(4, w // 8)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    x = (xx + 0.5) / sw - 0.5
    y = (yy + 0.5) / sh - 0.5
    return f32(cv2.resize(f32(fn(x, y)), (w, h), interpolation=cv2.INTER_LINEAR))


def shadow_mask(h: int, w: int, hard: bool, near: tuple[float, float], scale: float, rng: Rng) -> F32:
    """A cast shadow: a hand, a phone or a head (a blob), or a straight-edged object, its edge near ``near``."""
    m = np.zeros((h, w), np.float32)
    cx, cy = near
    ang = rng.uniform(0, 2 * np.pi)
    # Shift the shape's edge so that it passes within about one digit of ``near``.
    d = scale * rng.uniform(-1.0, 1.0)
    if rng.random() < 0.5:
        rx, ry = rng.uniform(0.35, 0.8) * w, rng.uniform(0.35, 0.8) * h
        ex = cx + np.cos(ang) * (rx + d)
        ey = cy + np.sin(ang) * (ry + d)
        cv2.ellipse(m, (int(ex), int(ey)), (int(rx), int(ry)), float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    else:
        nx, ny = np.cos(ang), np.sin(ang)
        px, py = cx + nx * d, cy + ny * d
        big = 4 * max(w, h)
        tx, ty = -ny, nx
        poly = np.array([[px + tx * big, py + ty * big], [px - tx * big, py - ty * big],
                         [px - tx * big + nx * big, py - ty * big + ny * big],
                         [px + tx * big + nx * big, py + ty * big + ny * big]], np.int32)  # fmt: skip
        cv2.fillPoly(m, [poly], 1.0)
    sigma = (rng.uniform(0.0015, 0.005) if hard else rng.uniform(0.03, 0.08)) * max(w, h)
    return wide_blur(m, float(sigma))


# ---------------------------------------------------------------------------------------------------------------
# Photos


def _place_keyboard(img: F32, box: tuple[float, float, float, float] | None, rng: Rng) -> bool:
    """Lay a keyboard along one edge of the frame, never over the digit. False when no edge had room."""
    h, w = img.shape[:2]
    band = float(rng.uniform(0.12, 0.26))
    margin = 0.03 * min(w, h)
    sides = ["top", "bottom", "left", "right"]
    if box is not None:
        x0, y0, bw, bh = box
        room = {"top": y0 > band * h + margin, "bottom": y0 + bh < (1 - band) * h - margin,
                "left": x0 > band * w + margin, "right": x0 + bw < (1 - band) * w - margin}  # fmt: skip
        sides = [s for s in sides if room[s]]
    if not sides:
        return False
    side = sides[int(rng.integers(len(sides)))]
    # Draw it for the bottom edge of a canvas turned so that ``side`` is its bottom, then turn back.
    turns = {"bottom": 0, "right": 1, "top": 2, "left": 3}[side]
    canvas = np.rot90(img, -turns) if turns else img
    ch, cw = canvas.shape[:2]
    depth = int(band * ch)
    kb_w, kb_h = int(cw * 1.5), int(depth * 2.5)
    kb, _ = draw_keyboard(kb_w, kb_h, rng)
    kb_alpha = np.ones((kb_h, kb_w), np.float32)
    ang = float(rng.uniform(-6, 6))
    m = cv2.getRotationMatrix2D((kb_w / 2, 0), ang, 1.0)
    m[0, 2] += cw / 2 - kb_w / 2
    m[1, 2] += ch - depth
    layer = f32(cv2.warpAffine(kb, m, (cw, ch), flags=cv2.INTER_LINEAR))
    alpha = f32(cv2.warpAffine(kb_alpha, m, (cw, ch), flags=cv2.INTER_LINEAR))
    shade = wide_blur(alpha, max(2.0, 0.01 * cw))
    canvas = canvas * (1 - 0.35 * shade * (1 - alpha))[:, :, None]
    canvas = canvas * (1 - alpha)[:, :, None] + layer * alpha[:, :, None]
    img[...] = np.rot90(canvas, turns) if turns else canvas
    return True


def _draw_coil(img: F32, hmat: F32, page_h: int, mm_per_px: float, rng: Rng) -> None:
    """The spiral's wire loops, standing over the punched edge (drawn in the frame, over the page)."""
    metal = float(rng.uniform(0.55, 0.8))
    col = (metal, metal, metal * float(rng.uniform(0.95, 1.05)))
    thick = max(1, round(0.9 / mm_per_px * np.sqrt(abs(np.linalg.det(hmat[:2, :2])))))
    for xh, yh, xo, yo in spiral_coil_points(page_h, mm_per_px):
        t = np.linspace(0, 1, 12)
        xs = xh + (xo - xh) * t
        ys = yh + (yo - yh) * t - np.sin(np.pi * t) * (2.0 / mm_per_px)
        pts = map_points(hmat, np.stack([xs, ys], axis=1)).astype(np.int32)
        cv2.polylines(img, [pts + 2], False, (0.05, 0.05, 0.05), thick + 1, cv2.LINE_AA)
        cv2.polylines(img, [pts], False, col, thick, cv2.LINE_AA)


def render_photo(glyph: Glyph | None, spec: PhotoSpec, rng: Rng, empty: str | None = None) -> Upload:
    """A phone photo of a page with ``glyph`` written on it; ``glyph=None`` with ``empty`` for the no-digit family.

    ``empty``: "blank" (a page, no ink), "edge" (only a corner or edge of a page in the frame), "spiral" (a
    close-up of a notebook's binding) or "desk" (no page at all).
    """
    big_w, big_h = frame_size(spec.megapixels, spec.aspect, spec.portrait)
    s = min(1.0, max(float(np.sqrt(WORK_PIXELS / (big_w * big_h))), MIN_DIGIT_PX / max(1.0, spec.digit_share * big_h)))
    w, h = max(64, round(big_w * s)), max(64, round(big_h * s))
    img = make_surface(spec.surface, w, h, rng)
    facts: dict[str, Any] = {
        "surface": spec.surface, "paper": spec.paper, "pen": None, "rotation_deg": round(spec.rotation_deg, 1),
        "tilt_deg": [round(t, 1) for t in spec.tilt_deg], "shadow": spec.shadow, "glare": spec.glare,
        "flash": spec.flash, "low_light": spec.low_light, "cast": [round(c, 3) for c in spec.cast],
        "defocus": round(spec.defocus, 3), "motion": round(spec.motion, 3), "quality": spec.quality,
        "exif_orientation": spec.exif_orientation,
    }  # fmt: skip

    page_aspect = paper_aspect(spec.paper, rng)
    if spec.landscape_page:
        page_aspect = 1.0 / page_aspect
    area = spec.page_area * w * h
    if empty == "spiral":
        area *= float(rng.uniform(2.5, 5.0))
    pw = float(np.sqrt(area / page_aspect))
    ph = pw * page_aspect
    short_mm = 76.0 if spec.paper == "sticky" else spec.sheet_mm
    mm_per_px = short_mm / min(pw, ph)
    focal = 1.1 * max(w, h)
    digit_box: tuple[float, float, float, float] | None = None
    ink_mask: F32 | None = None

    if empty != "desk":
        ipw, iph = max(8, round(pw)), max(8, round(ph))
        page = make_paper(spec.paper, ipw, iph, rng, mm_per_px)
        rgb, alpha = page.rgb, page.alpha
        target = (w / 2 + spec.digit_offset[0] * w, h / 2 + spec.digit_offset[1] * h)
        pen: Pen | None = None
        if glyph is not None:
            dh = min(spec.digit_share * h, 0.6 * min(pw, ph))
            gh, gw0 = glyph.ink.shape
            dw = dh * gw0 / gh
            if dw > 0.75 * pw:
                dh *= 0.75 * pw / dw
                dw = 0.75 * pw
            pen = draw_pen(spec.pen, rng)
            width_frac = max(pen.width_frac, 1.3 / dh)  # at least 1.3 px wide on the photo: a human can read it
            ink = restroke(glyph.ink, width_frac * gh)
            idw, idh = max(2, round(dw)), max(2, round(dh))
            ink = f32(cv2.resize(ink, (idw, idh), interpolation=cv2.INTER_AREA))
            left = 16.0 / mm_per_px if spec.paper == "spiral" else 0.06 * pw  # clear of the punched holes
            top = 18.0 / mm_per_px if spec.paper == "sticky" else 0.06 * ph  # clear of the adhesive strip
            lo_x, hi_x = left + dw / 2, pw - 0.06 * pw - dw / 2
            lo_y, hi_y = top + dh / 2, ph - 0.06 * ph - dh / 2
            hi_x, hi_y = max(hi_x, lo_x), max(hi_y, lo_y)
            hmat = np.eye(3, dtype=np.float32)
            for _ in range(10):
                if spec.page_cut:
                    # The digit near one side of the sheet, the rest of the sheet running off the frame.
                    fx = float(rng.choice([rng.uniform(0.0, 0.2), rng.uniform(0.8, 1.0)]))
                    fy = float(rng.uniform(0.0, 1.0))
                    if rng.random() < 0.5:
                        fx, fy = fy, fx
                else:
                    fx, fy = float(np.clip(rng.normal(0.5, 0.15), 0, 1)), float(np.clip(rng.normal(0.45, 0.15), 0, 1))
                ax, ay = lo_x + fx * (hi_x - lo_x), lo_y + fy * (hi_y - lo_y)
                hmat = page_homography(pw, ph, (ax, ay), target, spec, focal)
                # Keep the whole digit inside the frame (shift the sheet if needed).
                quad = map_points(hmat, np.array([[ax - dw / 2, ay - dh / 2], [ax + dw / 2, ay - dh / 2],
                                                  [ax + dw / 2, ay + dh / 2], [ax - dw / 2, ay + dh / 2]]))  # fmt: skip
                margin = 0.03 * min(w, h)
                shift_x = max(0.0, margin - float(quad[:, 0].min())) - max(0.0, float(quad[:, 0].max()) - (w - margin))
                shift_y = max(0.0, margin - float(quad[:, 1].min())) - max(0.0, float(quad[:, 1].max()) - (h - margin))
                if shift_x or shift_y:
                    hmat = page_homography(pw, ph, (ax, ay), (target[0] + shift_x, target[1] + shift_y), spec, focal)
                if not spec.page_cut or outside_share(hmat, pw, ph, w, h) >= 0.12:
                    break
            cover = pen_coverage(ink, pen, rng)
            x0, y0 = round(ax - idw / 2), round(ay - idh / 2)
            x0, y0 = min(max(0, x0), ipw - idw), min(max(0, y0), iph - idh)
            patch = rgb[y0 : y0 + idh, x0 : x0 + idw]
            rgb[y0 : y0 + idh, x0 : x0 + idw] = apply_ink(patch, cover[: patch.shape[0], : patch.shape[1]], pen.colour)
            ink_page = np.zeros((iph, ipw), np.float32)
            ink_page[y0 : y0 + idh, x0 : x0 + idw] = cover[: patch.shape[0], : patch.shape[1]]
            ink_mask = f32(cv2.warpPerspective(ink_page, hmat, (w, h), flags=cv2.INTER_LINEAR))
            facts["pen"] = pen.kind
        else:
            hmat = _empty_homography(empty or "blank", pw, ph, w, h, spec, focal, rng)
        layer = f32(cv2.warpPerspective(np.dstack([rgb, alpha]), hmat, (w, h), flags=cv2.INTER_LINEAR))
        a = layer[:, :, 3]
        # The sheet's own shadow on the desk, a few px down and to the side (light from above, a little off).
        off = max(1.0, 0.004 * max(w, h))
        sh = f32(cv2.warpAffine(a, np.array([[1, 0, off], [0, 1, 1.5 * off]], np.float32), (w, h)))
        sh = wide_blur(sh, 2 * off)
        img = img * (1 - 0.3 * sh * (1 - a))[:, :, None]
        img = img * (1 - a)[:, :, None] + layer[:, :, :3] * a[:, :, None]
        if spec.paper == "spiral":
            _draw_coil(img, hmat, iph, mm_per_px, rng)
        page_alpha = a
    else:
        page_alpha = np.zeros((h, w), np.float32)

    if ink_mask is not None:
        ys, xs = np.nonzero(ink_mask > 0.2)
        if len(ys):
            digit_box = (float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1))
    facts["keyboard"] = bool(spec.keyboard and _place_keyboard(img, digit_box, rng))

    # --- Light -------------------------------------------------------------------------------------------------
    dh_px = digit_box[3] if digit_box else 0.2 * h
    centre = (digit_box[0] + digit_box[2] / 2, digit_box[1] + digit_box[3] / 2) if digit_box else (w / 2, h / 2)
    phi = float(rng.uniform(0, 2 * np.pi))
    exposure = spec.exposure
    cast = np.asarray(spec.cast, np.float32)

    def ambient(x: F32, y: F32) -> F32:
        r2 = (x**2 + y**2) * 2.0
        return f32((1 + spec.gradient * 2 * (np.cos(phi) * x + np.sin(phi) * y)) * (1 - spec.vignette * r2))

    light = smooth_field(h, w, ambient) * exposure
    spec_add = np.zeros((h, w), np.float32)
    if spec.flash:
        fx0, fy0 = float(rng.uniform(-0.1, 0.1)), float(rng.uniform(-0.1, 0.1))
        r0 = float(rng.uniform(0.35, 0.6))
        light = light * smooth_field(h, w, lambda x, y: 1.25 / (1 + ((x - fx0) ** 2 + (y - fy0) ** 2) / r0**2))
        cast = cast * np.asarray([0.96, 1.0, 1.05], np.float32)
        # The flash's reflection on matte paper: a broad, soft hotspot, away from the digit's centre.
        ang = rng.uniform(0, 2 * np.pi)
        hx, hy = centre[0] + np.cos(ang) * dh_px * rng.uniform(0.5, 1.5), centre[1] + np.sin(ang) * dh_px * rng.uniform(0.5, 1.5)
        spec_add += _blob(h, w, hx, hy, dh_px * rng.uniform(0.4, 0.9), dh_px * rng.uniform(0.4, 0.9), 0.0, float(rng.uniform(0.2, 0.5)))
    if spec.shadow != "none":
        m = shadow_mask(h, w, spec.shadow == "hard", centre, dh_px, rng)
        depth = float(rng.uniform(0.35, 0.6) if spec.shadow == "hard" else rng.uniform(0.3, 0.55))
        light = light * (1 - depth * m)
        facts["shadow_depth"] = round(depth, 3)
    if spec.glare:
        # A window or a lamp mirrored in the sheet: bright, elliptical, clipped at its core; kept off the
        # digit's centre so the digit stays readable, though it may wash out an end of a stroke.
        ang = rng.uniform(0, 2 * np.pi)
        dist = dh_px * rng.uniform(0.8, 1.4)
        gx, gy = centre[0] + np.cos(ang) * dist, centre[1] + np.sin(ang) * dist
        spec_add += _blob(h, w, gx, gy, dh_px * rng.uniform(0.3, 0.9), dh_px * rng.uniform(0.15, 0.5),
                          float(rng.uniform(0, 180)), float(rng.uniform(0.5, 1.2)))  # fmt: skip
    spec_add *= np.maximum(page_alpha, 0.3)  # paper is glossier than most desks
    img = img * (light[:, :, None] * cast[None, None, :]) + spec_add[:, :, None] * cast[None, None, :]

    # --- Camera ------------------------------------------------------------------------------------------------
    img = lens(img, spec.blur_px, spec.defocus * dh_px, spec.motion * dh_px, rng)
    # Noise is added at the working resolution and resampled with the image: a phone's noise, after demosaicing
    # and its denoiser, is grain a few pixels wide, not independent per pixel (and 12 MP of it would cost 1 s).
    if spec.low_light:
        # Too little light: the sensor sees a dim scene, its noise is then amplified with the gain; the phone's
        # denoiser smears what it can.
        dim = float(rng.uniform(0.06, 0.16))
        gain = float(rng.uniform(0.35, 0.6)) / dim
        img = sensor(img * dim, 0.004, rng, chroma=0.8) * gain
        img = f32(cv2.GaussianBlur(img, (0, 0), 0.6))
        img = img * np.asarray([1.08, 1.0, 0.85], np.float32)  # indoor light at night is warm
        facts["low_light_gain"] = round(gain, 2)
    else:
        img = sensor(img, spec.noise, rng)
    img = unsharp(img, spec.sharpen)  # the phone sharpens after denoising, so its halos ring around the grain too
    if (big_w, big_h) != (w, h):
        img = f32(cv2.resize(img, (big_w, big_h), interpolation=cv2.INTER_CUBIC))
    data = encode(to_u8(img), spec.fmt, spec.quality, spec.exif_orientation, rng)
    box = None
    if digit_box is not None:
        sx, sy = big_w / w, big_h / h
        box = (int(digit_box[0] * sx), int(digit_box[1] * sy), int(np.ceil(digit_box[2] * sx)), int(np.ceil(digit_box[3] * sy)))
    facts["page_share"] = round(float(page_alpha.mean()), 3)
    return Upload(data, spec.fmt, big_w, big_h, box, facts)


def _blob(h: int, w: int, cx: float, cy: float, rx: float, ry: float, angle_deg: float, peak: float) -> F32:
    """An elliptical Gaussian highlight of height ``peak``."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = np.radians(angle_deg)
    u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
    v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
    return f32(peak * np.exp(-0.5 * ((u / max(rx, 1.0)) ** 2 + (v / max(ry, 1.0)) ** 2)))


def _empty_homography(kind: str, pw: float, ph: float, w: int, h: int, spec: PhotoSpec, focal: float, rng: Rng) -> F32:
    """Where the sheet lies when there is no digit: whole (blank), mostly outside (edge), binding (spiral)."""
    if kind == "edge":
        hmat = np.eye(3, dtype=np.float32)
        for _ in range(20):
            corner = [(0.0, 0.0), (pw, 0.0), (pw, ph), (0.0, ph)][int(rng.integers(4))]
            spec.rotation_deg = float(rng.uniform(0, 360))
            target = (float(rng.uniform(0.15, 0.85)) * w, float(rng.uniform(0.15, 0.85)) * h)
            hmat = page_homography(pw, ph, corner, target, spec, focal)
            visible = 1.0 - outside_share(hmat, pw, ph, w, h)
            if 0.05 <= visible * pw * ph / (w * h) <= 0.35:
                break
        return hmat
    if kind == "spiral":
        spec.rotation_deg = float(rng.uniform(-20, 20)) + (90.0 if rng.random() < 0.4 else 0.0)
        anchor = (8.0 * pw / (76.0 if spec.paper == "sticky" else spec.sheet_mm), ph * float(rng.uniform(0.3, 0.7)))
        return page_homography(pw, ph, anchor, (w * float(rng.uniform(0.35, 0.65)), h / 2), spec, focal)
    return page_homography(pw, ph, (pw / 2, ph / 2), (w / 2, h / 2), spec, focal)


# ---------------------------------------------------------------------------------------------------------------
# Scans, canvases and clean images


def render_scan(glyph: Glyph, rng: Rng, colour: bool, native_pen: bool = False) -> Upload:
    """A flatbed scan of white paper with the digit: greyscale PNG or colour JPEG.

    A whole page at 100-200 dpi (the digit 1-3 cm tall, so a few percent of the image), or the region around
    the digit that the user selected in the scanner's preview. ``native_pen``: keep the glyph's own strokes
    (fonts) instead of redrawing them with a random pen.
    """
    dpi = float(rng.choice([100.0, 150.0, 200.0]))
    digit_mm = float(rng.uniform(10, 30))
    dh = digit_mm / 25.4 * dpi
    if rng.random() < 0.35:
        dpi = min(dpi, 150.0)  # whole pages: 100 or 150 dpi, as people scan documents to send
        dh = digit_mm / 25.4 * dpi
        w, h = int(210 / 25.4 * dpi), int(297 / 25.4 * dpi)
        region = "page"
    else:
        h = int(dh / rng.uniform(0.2, 0.6))
        w = int(h * rng.uniform(0.8, 1.5))
        region = "crop"
    white = float(rng.uniform(0.92, 0.98))
    tint = (1.0, 1.0, float(rng.uniform(0.96, 1.0))) if colour else (1.0, 1.0, 1.0)
    paper = colourise((white * (1 - 0.02 * value_noise(h, w, 6, rng))).astype(np.float32), tint)
    gh, gw0 = glyph.ink.shape
    dw = dh * gw0 / gh
    if dw > 0.8 * w:
        dh *= 0.8 * w / dw
        dw = 0.8 * w
    if native_pen:
        ink = glyph.ink
        pen = Pen("font", (0.1, 0.1, 0.12), 0.0, float(rng.uniform(0.85, 1.0)))
    else:
        pen = draw_pen(str(rng.choice(["ballpoint", "ballpoint", "gel", "marker", "pencil"])), rng)
        ink = restroke(glyph.ink, max(pen.width_frac, 1.5 / dh) * gh)
    # Small rotation of the glyph: the sheet lay skewed on the glass.
    skew = float(rng.uniform(-2.5, 2.5))
    idw, idh = max(2, round(dw)), max(2, round(dh))
    ink = f32(cv2.resize(ink, (idw, idh), interpolation=cv2.INTER_AREA))
    cx = w / 2 + rng.uniform(-0.25, 0.25) * (w - idw) if region == "crop" else rng.uniform(0.2, 0.8) * w
    cy = h / 2 + rng.uniform(-0.25, 0.25) * (h - idh) if region == "crop" else rng.uniform(0.15, 0.85) * h
    x0 = int(np.clip(cx - idw / 2, 0, w - idw))
    y0 = int(np.clip(cy - idh / 2, 0, h - idh))
    cover = np.zeros((h, w), np.float32)
    cover[y0 : y0 + idh, x0 : x0 + idw] = pen_coverage(ink, pen, rng)
    m = cv2.getRotationMatrix2D((x0 + idw / 2, y0 + idh / 2), skew, 1.0)
    cover = f32(cv2.warpAffine(cover, m, (w, h), flags=cv2.INTER_LINEAR))
    ys, xs = np.nonzero(cover > 0.004)
    by0, by1, bx0, bx1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    img = paper
    img[by0:by1, bx0:bx1] = apply_ink(paper[by0:by1, bx0:bx1], cover[by0:by1, bx0:bx1], pen.colour)
    if region == "page" and rng.random() < 0.5:
        # The lid did not cover the glass's far edge: a dark strip along one side.
        strip = int(rng.uniform(0.005, 0.02) * w)
        img[:, w - strip :] *= 0.25
    img = f32(cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 0.9))))
    img = sensor(img, 0.004, rng, chroma=0.2 if colour else 0.0)
    ys, xs = np.nonzero(cover > 0.2)
    box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
    facts = {"dpi": dpi, "region": region, "pen": pen.kind}
    if colour:
        return Upload(encode(to_u8(img), "JPEG", int(rng.integers(75, 96))), "JPEG", w, h, box, facts)
    grey = to_u8(img.mean(axis=2))
    return Upload(encode(grey, "PNG", 0), "PNG", w, h, box, facts)


CANVAS_SIZES = [(280, 280), (280, 280), (300, 300), (400, 400), (200, 200), (500, 300), (320, 240), (560, 560)]


def render_canvas(glyph: Glyph, rng: Rng, transparent: bool) -> Upload:
    """A digit drawn with a mouse or a finger on an HTML canvas and exported with ``toDataURL()``.

    Canvas strokes are a round pen of one width. Transparent: RGBA, the stroke's colour everywhere it was
    drawn and alpha carrying the coverage (0 elsewhere, RGB 0 there too, as browsers write it). Opaque: the
    page filled white first; written as RGB or as RGBA with alpha 255 (both happen).
    """
    w, h = CANVAS_SIZES[int(rng.integers(len(CANVAS_SIZES)))]
    share = float(rng.uniform(0.45, 0.85))
    dh = share * h
    gh, gw0 = glyph.ink.shape
    dw = dh * gw0 / gh
    if dw > 0.85 * w:
        dh *= 0.85 * w / dw
        dw = 0.85 * w
    pen_px = float(rng.uniform(8, 24)) * min(w, h) / 280
    ink = restroke(glyph.ink, pen_px * gh / dh)
    idw, idh = max(2, round(dw)), max(2, round(dh))
    ink = f32(cv2.resize(ink, (idw, idh), interpolation=cv2.INTER_AREA))
    ink = np.clip((ink - 0.5) * 1.6 + 0.5, 0, 1)  # canvas anti-aliasing is about one pixel wide
    x0 = int(np.clip(w / 2 - idw / 2 + rng.normal(0, 0.08) * w, 0, w - idw))
    y0 = int(np.clip(h / 2 - idh / 2 + rng.normal(0, 0.08) * h, 0, h - idh))
    a = np.zeros((h, w), np.float32)
    a[y0 : y0 + idh, x0 : x0 + idw] = ink
    colours = [(0, 0, 0), (0, 0, 0), (0, 0, 0), (30, 60, 200), (255, 255, 255), (220, 30, 40)]
    colour = colours[int(rng.integers(len(colours)))] if transparent else colours[int(rng.integers(4))]
    box = (x0, y0, idw, idh)
    facts: dict[str, Any] = {"stroke_rgb": list(colour), "pen_px": round(pen_px, 1)}
    if transparent:
        rgba = np.zeros((h, w, 4), np.uint8)
        on = a > 0
        rgba[on, :3] = colour
        rgba[:, :, 3] = to_u8(a)
        return Upload(encode(rgba, "PNG", 0), "PNG", w, h, box, facts)
    rgb = 1.0 - a[:, :, None] * (1.0 - np.asarray(colour, np.float32)[None, None, :] / 255.0)
    u8 = to_u8(f32(rgb))
    if rng.random() < 0.4:
        u8 = np.dstack([u8, np.full((h, w), 255, np.uint8)])
    facts["mode"] = "RGBA" if u8.shape[2] == 4 else "RGB"
    return Upload(encode(u8, "PNG", 0), "PNG", w, h, box, facts)


def render_clean(glyph: Glyph, rng: Rng) -> Upload:
    """A clean digital image of the digit (a smooth upscale of its source), greyscale PNG.

    Dark on white mostly; a share white on black, as people who know MNIST send.
    """
    size = int(rng.choice([64, 96, 128, 200, 256, 400, 512]))
    share = float(rng.uniform(0.55, 0.85))
    dh = share * size
    gh, gw0 = glyph.ink.shape
    dw = min(dh * gw0 / gh, 0.85 * size)
    idw, idh = max(2, round(dw)), max(2, round(dh))
    ink = f32(cv2.resize(glyph.ink, (idw, idh), interpolation=cv2.INTER_AREA))
    a = np.zeros((size, size), np.float32)
    x0, y0 = (size - idw) // 2, (size - idh) // 2
    a[y0 : y0 + idh, x0 : x0 + idw] = ink
    dark_on_white = bool(rng.random() < 0.65)
    img = 1.0 - a if dark_on_white else a
    return Upload(encode(to_u8(img), "PNG", 0), "PNG", size, size, (x0, y0, idw, idh),
                  {"polarity": "dark_on_white" if dark_on_white else "white_on_black"})  # fmt: skip
