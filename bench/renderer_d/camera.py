"""A phone photo of a desk: plane scene -> perspective -> light -> lens -> sensor -> JPEG.

The scene is drawn on the desk's plane (page, ink, desk texture, spiral coils), then one homography
puts it in the frame. Light is multiplicative (gradient, vignette, shadows, flash falloff) plus
additive specular glare; the lens blurs in linear light; the sensor adds signal-dependent noise
before the tone curve, sharpening and the encoder.
"""

# mypy: disable-error-code="no-any-return"
from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from bench.renderer_d import materials as mat
from bench.renderer_d.flat import place

Rng = np.random.Generator
# Writing: (height_px, pen_px, rng) -> coverage patch and what was drawn.
Writing = Callable[[float, float, Rng], tuple[np.ndarray, dict[str, object]]]

RENDER_CAP_PX = 2.2e6  # larger photos are rendered at this size and upscaled, as a phone's ISP would
PLANE_CAP_PX = 4.5e6


@dataclass
class PhotoSpec:
    """Every choice a photo condition can force; the defaults are an ordinary, well-lit photo."""

    scene: str = "page"  # page | desk_only | page_edge | spiral_closeup | keyboard
    surfaces: tuple[str, ...] = mat.SURFACES
    papers: tuple[str, ...] = ("white", "white", "ruled", "squared")
    page_sizes: tuple[str, ...] = ("a4", "a5", "a6", "sticky")
    pens: tuple[str, ...] = mat.EVERYDAY_PENS
    fill: tuple[float, float] = (0.3, 0.95)
    rot: tuple[float, float] = (0.0, 8.0)
    tilt: float = 15.0
    tilt_min: float = 0.0
    digit_frac: tuple[float, float] = (0.22, 0.55)
    small: bool = False
    off_centre: bool = False
    page_cut: bool = False
    keyboard_edge: bool = False
    effects: tuple[str, ...] = ()
    jpeg_q: tuple[int, int] = (70, 95)
    mp: tuple[float, float] = (0.3, 3.0)
    fmt: str = "jpeg"  # jpeg | webp | png
    exif_rotate: bool = False
    extra: dict[str, object] = field(default_factory=dict)


def frame_size(mp: float, rng: Rng) -> tuple[int, int]:
    """Width and height of a photo of about `mp` megapixels in a phone's aspect ratio."""
    aspect = float(rng.choice([4 / 3, 4 / 3, 4 / 3, 16 / 9, 1.0]))
    h = np.sqrt(mp * 1e6 / aspect)
    w, h = round(h * aspect), round(h)
    if rng.random() < 0.6:  # most phone photos of a page are portrait
        w, h = h, w
    return int(w) // 2 * 2, int(h) // 2 * 2


def perspective(tilt_min: float, tilt_deg: float, focal: float, rng: Rng) -> tuple[np.ndarray, dict[str, float]]:
    """A homography around the principal point for a camera tilted by `tilt_min` to `tilt_deg`."""
    tilt = np.deg2rad(rng.uniform(tilt_min, tilt_deg))
    direction = rng.uniform(0, 2 * np.pi)
    px, py = np.tan(tilt) * np.cos(direction) / focal, np.tan(tilt) * np.sin(direction) / focal
    return np.array([[1, 0, 0], [0, 1, 0], [px, py, 1]], np.float64), {"tilt_deg": float(np.rad2deg(tilt)), "tilt_dir_deg": float(np.rad2deg(direction))}


def apply_h(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Map (N, 2) points through a homography."""
    ph = np.hstack([pts, np.ones((len(pts), 1))]) @ h.T
    return ph[:, :2] / ph[:, 2:3]


def render_photo(spec: PhotoSpec, writing: Writing | None, rng: Rng) -> tuple[bytes, str, dict[str, object]]:
    """Render one photo; returns the file bytes, its extension and every choice made."""
    meta: dict[str, object] = {"kind": "photo"}
    mp = float(np.exp(rng.uniform(np.log(spec.mp[0]), np.log(spec.mp[1]))))
    out_w, out_h = frame_size(mp, rng)
    scale = min(1.0, np.sqrt(RENDER_CAP_PX / (out_w * out_h)))
    rw, rh = int(out_w * scale) // 2 * 2, int(out_h * scale) // 2 * 2
    meta.update(width=out_w, height=out_h, megapixels=round(out_w * out_h / 1e6, 2), render_scale=round(scale, 3))
    short = min(rw, rh)
    focal = max(rw, rh) / (2 * np.tan(np.deg2rad(rng.uniform(30, 36))))
    persp, pmeta = perspective(spec.tilt_min, spec.tilt, focal, rng)
    meta.update(pmeta)

    surface = str(rng.choice(spec.surfaces))
    paper_kind = str(rng.choice(spec.papers))
    size_name = "sticky" if paper_kind == "sticky" else str(rng.choice([s for s in spec.page_sizes if s != "sticky"] or ["a5"]))
    pw_mm, ph_mm = mat.PAPER_SIZES_MM[size_name]
    if rng.random() < 0.3 and size_name != "sticky":
        pw_mm, ph_mm = ph_mm, pw_mm  # landscape sheet
    fill = rng.uniform(*spec.fill)
    ppm = float(np.sqrt(fill * rw * rh / (pw_mm * ph_mm)))
    theta = float(rng.uniform(*spec.rot) * rng.choice([-1, 1]))
    meta.update(surface=surface, paper=paper_kind, page_size=size_name, page_fill_nominal=round(fill, 3), page_rot_deg=round(theta, 2))

    # Where the writing sits: in the frame, and on the page.
    patch: np.ndarray | None = None
    if writing is not None:
        pen = str(rng.choice(spec.pens))
        frac = rng.uniform(0.1, 0.2) if spec.small else rng.uniform(*spec.digit_frac)
        digit_mm = float(np.clip(frac * short / ppm, 8.0, 0.7 * min(pw_mm, ph_mm)))
        digit_px = digit_mm * ppm
        pen_px = mat.pen_width_px(pen, digit_px, rng)
        patch, wmeta = writing(digit_px, pen_px, rng)
        # A long number must fit across the page and the frame.
        max_w = min(0.85 * pw_mm * ppm, 0.8 * min(rw, rh) if spec.small else 0.85 * rw)
        if patch.shape[1] > max_w:
            shrink = max_w / patch.shape[1]
            digit_px *= shrink
            pen_px = max(1.1, pen_px * shrink)
            patch, wmeta = writing(digit_px, pen_px, rng)
        meta.update(wmeta)
        meta.update(pen=pen, pen_px=round(pen_px, 2), digit_mm=round(digit_px / ppm, 1))
        if spec.off_centre:
            ang = rng.uniform(0, 2 * np.pi)
            dist = rng.uniform(0.22, 0.36)
            target = np.array([0.5 + dist * np.cos(ang) * rh / max(rw, rh), 0.5 + dist * np.sin(ang) * rw / max(rw, rh)])
        else:
            target = 0.5 + rng.normal(0, 0.04, 2)
        target_img = target * np.array([rw, rh])
        # The digit's place on the page: near the middle, away from the edges.
        half = np.array([patch.shape[1], patch.shape[0]]) / 2 / ppm
        room = np.maximum(np.array([pw_mm, ph_mm]) / 2 - half - 5, 0)
        on_page = np.array([pw_mm, ph_mm]) / 2 + rng.uniform(-0.5, 0.5, 2) * room
    else:
        target_img = np.array([rw, rh]) * (0.5 + rng.normal(0, 0.05, 2))
        on_page = np.array([pw_mm, ph_mm]) / 2 + rng.normal(0, 0.1, 2) * np.array([pw_mm, ph_mm])
        if spec.scene == "page_edge":
            # Push the page's centre out of the frame so only an edge or corner shows.
            ang = rng.uniform(0, 2 * np.pi)
            target_img = np.array([rw, rh]) * (0.5 + 0.5 * np.array([np.cos(ang), np.sin(ang)]) * rng.uniform(0.9, 1.3))
            on_page = np.array([pw_mm, ph_mm]) / 2
        if spec.scene == "spiral_closeup":
            on_page = np.array([6.0, ph_mm * rng.uniform(0.3, 0.7)])
            target_img = np.array([rw, rh]) * np.array([rng.uniform(0.35, 0.65), 0.5])

    # Plane -> image: a similarity with image px = plane px / k at the principal point, then perspective.
    centre = np.array([rw / 2, rh / 2])
    inv_p = np.linalg.inv(persp)
    corners_img = np.array([[0, 0], [rw, 0], [rw, rh], [0, rh]], np.float64) - centre
    corners_flat = apply_h(inv_p, corners_img)
    span = corners_flat.max(axis=0) - corners_flat.min(axis=0)
    k = float(min(1.0, np.sqrt(PLANE_CAP_PX / (span[0] * span[1]))))
    plane_w, plane_h = int(np.ceil(span[0] * k)) + 2, int(np.ceil(span[1] * k)) + 2
    origin = corners_flat.min(axis=0)
    # Flat coords f = plane / k + origin; image = persp(f) + centre. Where the writing should land:
    target_flat = apply_h(inv_p, (target_img - centre)[None, :])[0]
    pppm = ppm * k  # plane pixels per mm
    to_img = np.array([[1, 0, centre[0]], [0, 1, centre[1]], [0, 0, 1]]) @ persp @ np.array([[1 / k, 0, origin[0]], [0, 1 / k, origin[1]], [0, 0, 1]])
    plane_target = (target_flat - origin) * k

    tex = mat.desk(surface, plane_h, plane_w, pppm, rng)
    show_page = spec.scene in ("page", "page_edge", "spiral_closeup", "keyboard") and not (spec.scene == "keyboard" and rng.random() < 0.5)
    if spec.scene == "desk_only":
        show_page = False
    meta["page_shown"] = show_page
    digit_box_img: np.ndarray | None = None
    if show_page:
        sheet, alpha, paper_meta = mat.paper(paper_kind, pw_mm, ph_mm, pppm, rng)
        meta.update(paper_meta)
        if patch is not None:
            pk: np.ndarray = cv2.resize(patch, (max(1, round(patch.shape[1] * k)), max(1, round(patch.shape[0] * k))), interpolation=cv2.INTER_AREA) if k < 1 else patch
            cx, cy = on_page * pppm
            cov = place((sheet.shape[0], sheet.shape[1]), pk, (float(cx), float(cy)))
            meta.update(mat.apply_ink(sheet, cov, str(meta["pen"]), rng, pppm))
        # Page -> plane: rotate by theta about the page point that must land on the target.
        rot = cv2.getRotationMatrix2D((float(on_page[0] * pppm), float(on_page[1] * pppm)), -theta, 1.0)
        rot[:, 2] += plane_target - on_page * pppm
        if patch is not None:
            hw = np.array([patch.shape[1], patch.shape[0]]) * k / 2
            box_page = np.array([on_page * pppm + s * hw for s in ([-1, -1], [1, -1], [1, 1], [-1, 1])])
            box_plane = np.hstack([box_page, np.ones((4, 1))]) @ rot.T
            digit_box_img = apply_h(to_img, box_plane)
        page_rgb = cv2.warpAffine(sheet, rot, (plane_w, plane_h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        page_a = cv2.warpAffine(alpha, rot, (plane_w, plane_h), flags=cv2.INTER_LINEAR, borderValue=0)
        # The sheet's own shadow on the desk, a touch offset from the light.
        sh = cv2.GaussianBlur(page_a, (0, 0), max(0.8, 1.2 * pppm))
        sh = np.roll(sh, (int(0.8 * pppm) + 1, int(0.8 * pppm) + 1), axis=(0, 1))
        tex *= (1.0 - 0.35 * sh)[..., None]
        # Paper is never quite flat: a gentle curl in brightness.
        curl = 1.0 + 0.04 * mat.smooth_noise(plane_h, plane_w, 60 * pppm, rng)
        tex = tex * (1 - page_a[..., None]) + page_rgb * (page_a * curl)[..., None]
        if paper_kind == "spiral":
            mat.draw_spiral_coils(tex, rot, ph_mm, float(paper_meta["spiral_pitch_mm"]), pppm, rng)  # type: ignore[arg-type]
        page_corners = apply_h(to_img, np.hstack([np.array([[0, 0], [pw_mm, 0], [pw_mm, ph_mm], [0, ph_mm]]) * pppm, np.ones((4, 1))]) @ rot.T)
        inside = (page_corners[:, 0] >= 0) & (page_corners[:, 0] < rw) & (page_corners[:, 1] >= 0) & (page_corners[:, 1] < rh)
        meta["page_cut_by_frame"] = bool(not inside.all())
        meta["page_fill_actual"] = round(float(cv2.contourArea(page_corners.astype(np.float32))) / (rw * rh), 3)
        # The share of the frame the sheet covers (the sheet's area can exceed the frame's).
        grid = np.zeros((100, 100), np.uint8)
        cv2.fillPoly(grid, [np.rint(page_corners / np.array([rw, rh]) * 100).astype(np.int32)], 1)
        meta["page_in_frame_frac"] = round(float(grid.mean()), 3)

    img = cv2.warpPerspective(tex, to_img, (rw, rh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    del tex
    if spec.keyboard_edge or spec.scene == "keyboard":
        img = place_keyboard(img, digit_box_img, spec.scene == "keyboard", pppm / k, rng, meta)
    if digit_box_img is not None:
        lo, hi = digit_box_img.min(axis=0), digit_box_img.max(axis=0)
        meta["digit_box_frac"] = [round(float(v), 3) for v in (lo[0] / rw, lo[1] / rh, hi[0] / rw, hi[1] / rh)]
        meta["digit_area_frac"] = round(float((hi - lo).prod()) / (rw * rh), 4)
        meta["digit_height_frac"] = round(float(hi[1] - lo[1]) / rh, 3)
        meta["digit_in_frame"] = bool(lo.min() >= 0 and hi[0] <= rw and hi[1] <= rh)
    radiance = light(img, spec.effects, digit_box_img, rng, meta)
    del img
    height_frac = meta.get("digit_height_frac", 0.3)
    radiance = lens(radiance, spec.effects, float(height_frac) * rh if isinstance(height_frac, float) else 0.3 * rh, rng, meta)
    if scale < 1.0:
        radiance = cv2.resize(radiance, (out_w, out_h), interpolation=cv2.INTER_CUBIC)
    rgb8 = sensor(radiance, spec.effects, rng, meta)
    del radiance
    data, ext = encode_photo(rgb8, spec, rng, meta)
    return data, ext, meta


def place_keyboard(img: np.ndarray, digit_box: np.ndarray | None, fill_frame: bool, ppm: float, rng: Rng, meta: dict[str, object]) -> np.ndarray:
    """A keyboard along the frame edge farthest from the digit (or across much of the frame)."""
    h, w = img.shape[:2]
    if fill_frame:
        band = int(rng.uniform(0.4, 0.75) * h)
        edge = str(rng.choice(["top", "bottom"]))
    else:
        # The edge with the most room between it and the digit.
        lo, hi = (digit_box.min(axis=0), digit_box.max(axis=0)) if digit_box is not None else (np.array([w / 2, h / 2]),) * 2
        room = {"top": lo[1], "bottom": h - hi[1], "left": lo[0], "right": w - hi[0]}
        edge = max(room, key=lambda e: room[e])
        size = h if edge in ("top", "bottom") else w
        band = int(min(room[edge] - 0.03 * size, rng.uniform(0.1, 0.25) * size))
        if band < 0.04 * size:
            meta["keyboard"] = "no room"
            return img
    # Draw the keyboard upright in its own canvas, then turn it to the chosen edge.
    long_side = w if edge in ("top", "bottom") else h
    kb = np.zeros((band + int(0.1 * band), long_side + 40, 3), np.float32)
    kmeta = mat.draw_keyboard(kb, (0, 0, kb.shape[1], kb.shape[0]), max(0.8, ppm * rng.uniform(0.8, 1.2)), rng)
    angle = rng.uniform(-4, 4)
    rotm = cv2.getRotationMatrix2D((kb.shape[1] / 2, kb.shape[0] / 2), angle, 1.0)
    kb = cv2.warpAffine(kb, rotm, (kb.shape[1], kb.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    kb = kb[: band, 20 : 20 + long_side]
    turns = {"bottom": 0, "top": 2, "left": 1, "right": 3}[edge]
    kb = np.ascontiguousarray(np.rot90(kb, turns))
    # A soft shadow where the keyboard's edge lifts off the desk.
    if edge == "bottom":
        img[h - band :, :] = kb
        img[max(0, h - band - 8) : h - band] *= 0.7
    elif edge == "top":
        img[:band, :] = kb
        img[band : band + 8] *= 0.7
    elif edge == "left":
        img[:, :band] = kb
        img[:, band : band + 8] *= 0.7
    else:
        img[:, w - band :] = kb
        img[:, max(0, w - band - 8) : w - band] *= 0.7
    meta.update(kmeta)
    meta.update(keyboard_edge=edge, keyboard_band_frac=round(band / (h if edge in ("top", "bottom") else w), 3))
    return img


def blob_mask(h: int, w: int, rng: Rng) -> np.ndarray:
    """A shadow-caster's outline entering from one side: a hand, a phone, a mug, a lamp's edge."""
    mask = np.zeros((h, w), np.float32)
    shape = rng.integers(3)
    if shape == 0:  # straight edge (a lamp shade, a shelf)
        ang = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        d = (xx - w * rng.uniform(0.3, 0.7)) * np.cos(ang) + (yy - h * rng.uniform(0.3, 0.7)) * np.sin(ang)
        mask = (d > 0).astype(np.float32)
    elif shape == 1:  # a big ellipse (head, hand)
        c = (int(rng.uniform(-0.2, 1.2) * w), int(rng.uniform(-0.2, 1.2) * h))
        axes = (int(rng.uniform(0.3, 0.7) * w), int(rng.uniform(0.2, 0.5) * h))
        cv2.ellipse(mask, c, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    else:  # a phone-and-arm polygon from an edge
        x0 = rng.uniform(0.2, 0.8) * w
        wd = rng.uniform(0.15, 0.35) * w
        yb = rng.uniform(0.3, 0.7) * h
        pts = np.array([[x0 - wd / 2, h + 10], [x0 + wd / 2, h + 10], [x0 + wd / 2 + rng.normal(0, 0.05 * w), yb], [x0 - wd / 2, yb + rng.normal(0, 0.05 * h)]], np.int32)
        cv2.fillPoly(mask, [pts], 1.0)
        if rng.random() < 0.5:
            mask = mask[::-1].copy()
    return mask


def light(albedo: np.ndarray, effects: tuple[str, ...], digit_box: np.ndarray | None, rng: Rng, meta: dict[str, object]) -> np.ndarray:
    """Radiance = albedo x illumination x white balance (+ specular glare)."""
    h, w = albedo.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xn, yn = (xx - w / 2) / max(h, w), (yy - h / 2) / max(h, w)
    ang = rng.uniform(0, 2 * np.pi)
    grad_amt = rng.uniform(0.05, 0.3)
    illum = 1.0 + grad_amt * (xn * np.cos(ang) + yn * np.sin(ang)) * 2
    vig = rng.uniform(0.1, 0.35)
    illum *= 1.0 - vig * (xn**2 + yn**2) * 2.0
    exposure = rng.uniform(0.85, 1.1)
    wb = np.asarray(rng.normal(1.0, 0.04, 3), np.float32)
    add = np.zeros((h, w), np.float32)
    diag = float(np.hypot(h, w))
    meta.update(gradient=round(grad_amt, 3), vignette=round(vig, 3))
    if "soft_shadow" in effects or "hard_shadow" in effects:
        hard = "hard_shadow" in effects
        mask = blob_mask(h, w, rng)
        sigma = diag * (rng.uniform(0.002, 0.006) if hard else rng.uniform(0.03, 0.08))
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)
        strength = rng.uniform(0.4, 0.7) if hard else rng.uniform(0.3, 0.6)
        illum *= 1.0 - strength * mask
        meta.update(shadow="hard" if hard else "soft", shadow_strength=round(strength, 2), shadow_sigma_px=round(sigma, 1))
    if "flash" in effects:
        cx, cy = w / 2 + rng.normal(0, 0.05 * w), h / 2 + rng.normal(0, 0.05 * h)
        r0 = rng.uniform(0.35, 0.7) * diag
        falloff = 1.0 / (1.0 + ((xx - cx) ** 2 + (yy - cy) ** 2) / r0**2) ** 2
        ambient = rng.uniform(0.05, 0.3)
        illum = ambient * illum + (1.0 - ambient) * 1.15 * falloff
        wb = wb * np.asarray([0.97, 1.0, 1.06], np.float32)
        if rng.random() < 0.6:  # the flash's own reflection on the paper
            hx, hy = cx + rng.normal(0, 0.1 * w), cy + rng.normal(0, 0.1 * h)
            hs = rng.uniform(0.02, 0.06) * diag
            add += rng.uniform(0.4, 1.5) * np.exp(-((xx - hx) ** 2 + (yy - hy) ** 2) / (2 * hs**2))
        meta.update(flash_ambient=round(ambient, 2))
    if "glare" in effects:
        # A ceiling light mirrored in the paper's sheen, placed near the writing.
        if digit_box is not None:
            c = digit_box.mean(axis=0) + rng.normal(0, 1, 2) * (digit_box.max(axis=0) - digit_box.min(axis=0)) * 0.6
        else:
            c = np.array([w, h]) * rng.uniform(0.2, 0.8, 2)
        su, sv = rng.uniform(0.04, 0.15) * diag, rng.uniform(0.02, 0.08) * diag
        a = rng.uniform(0, np.pi)
        u = (xx - c[0]) * np.cos(a) + (yy - c[1]) * np.sin(a)
        v = -(xx - c[0]) * np.sin(a) + (yy - c[1]) * np.cos(a)
        peak = rng.uniform(0.35, 1.0)
        add += peak * np.exp(-(u**2 / (2 * su**2) + v**2 / (2 * sv**2)))
        add += 0.08 * peak  # veiling glare over the whole frame
        meta.update(glare_peak=round(peak, 2))
    if "low_light" in effects:
        exposure *= rng.uniform(0.06, 0.18)
        wb = wb * np.asarray([1.15, 1.0, 0.75], np.float32)
    if "cast" in effects:
        casts = {"tungsten": (1.3, 1.0, 0.6), "fluorescent": (0.9, 1.12, 0.85), "shade": (0.82, 0.95, 1.3), "sunset": (1.3, 0.95, 0.7)}
        name = str(rng.choice(list(casts)))
        wb = wb * np.asarray(casts[name], np.float32)
        meta.update(cast=name)
    meta.update(exposure=round(float(exposure), 3), white_balance=[round(float(v), 3) for v in wb])
    radiance = albedo * (illum * exposure)[..., None] * wb[None, None, :] + (add * exposure)[..., None]
    return radiance.astype(np.float32)


def disk_kernel(radius: float) -> np.ndarray:
    """A normalised, anti-aliased disk (the defocus point-spread function)."""
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float32)
    k = np.clip(radius + 0.5 - np.hypot(xx, yy), 0, 1)
    return k / k.sum()


def line_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised straight-line kernel (camera shake during the exposure)."""
    n = int(np.ceil(length)) | 1
    k = np.zeros((n, n), np.float32)
    c = n // 2
    dx, dy = np.cos(angle) * length / 2, np.sin(angle) * length / 2
    p0 = (int(np.rint(c * 16 - dx * 16)), int(np.rint(c * 16 - dy * 16)))
    p1 = (int(np.rint(c * 16 + dx * 16)), int(np.rint(c * 16 + dy * 16)))
    cv2.line(k, p0, p1, 1.0, 1, cv2.LINE_AA, 4)
    return k / max(k.sum(), 1e-6)


def lens(img: np.ndarray, effects: tuple[str, ...], digit_h: float, rng: Rng, meta: dict[str, object]) -> np.ndarray:
    """Optical blur: always a little, plus defocus or shake when asked."""
    base = rng.uniform(0.3, 0.8)
    img = cv2.GaussianBlur(img, (0, 0), base)
    meta["optics_sigma_px"] = round(base, 2)
    if "defocus" in effects:
        radius = max(1.5, digit_h * rng.uniform(0.02, 0.06))
        img = cv2.filter2D(img, -1, disk_kernel(radius), borderType=cv2.BORDER_REPLICATE)
        meta["defocus_radius_px"] = round(radius, 1)
    if "motion" in effects:
        length = max(3.0, digit_h * rng.uniform(0.04, 0.14))
        angle = rng.uniform(0, np.pi)
        img = cv2.filter2D(img, -1, line_kernel(length, angle), borderType=cv2.BORDER_REPLICATE)
        meta.update(motion_px=round(length, 1), motion_angle_deg=round(float(np.rad2deg(angle)), 1))
    return img


def sensor(radiance: np.ndarray, effects: tuple[str, ...], rng: Rng, meta: dict[str, object]) -> np.ndarray:
    """Shot and read noise, auto-exposure gain, sRGB tone curve, sharpening, 8-bit quantisation."""
    low = "low_light" in effects
    full_well = rng.uniform(40, 150) if low else rng.uniform(1500, 6000)
    read = rng.uniform(0.004, 0.01) if low else rng.uniform(0.001, 0.003)
    signal = np.clip(radiance, 0, None)
    sigma = np.sqrt(signal / full_well + read**2)
    noise = rng.standard_normal(signal.shape, dtype=np.float32) * sigma
    # Demosaicking correlates neighbouring pixels' noise a little.
    noise = cv2.GaussianBlur(noise, (0, 0), 0.6) * 1.6
    raw = signal + noise
    del noise, sigma
    if low:
        # The phone brightens the dark frame, but not all the way.
        gain = rng.uniform(0.35, 0.6) / max(float(np.percentile(raw[::7, ::7], 95)), 1e-3)
        raw = raw * gain
        raw = cv2.GaussianBlur(raw, (0, 0), rng.uniform(0.4, 0.9))  # the ISP's noise reduction
        meta["gain"] = round(float(gain), 2)
    meta.update(full_well=round(float(full_well)), read_noise=round(float(read), 4))
    srgb = np.where(raw <= 0.0031308, 12.92 * raw, 1.055 * np.power(np.clip(raw, 0.0031308, None), 1 / 2.4) - 0.055)
    amount = rng.uniform(0.2, 0.8)
    srgb = srgb + amount * (srgb - cv2.GaussianBlur(srgb, (0, 0), 1.2))
    meta["sharpen"] = round(amount, 2)
    return np.clip(srgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def exif_bytes(orientation: int, rng: Rng) -> bytes:
    """EXIF with a phone's make, model and the given orientation tag."""
    exif = Image.Exif()
    make, model = [("Apple", "iPhone 12"), ("samsung", "SM-G991B"), ("Google", "Pixel 7"), ("Xiaomi", "Redmi Note 9")][int(rng.integers(4))]
    exif[0x010F] = make
    exif[0x0110] = model
    exif[0x0112] = orientation
    return exif.tobytes()


def store_rotated(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """Pixels as a sensor stores them so that a viewer honouring `orientation` shows `rgb` upright."""
    # 6: the viewer turns the stored image 90 degrees clockwise; 8: counter-clockwise; 3: half a turn.
    turns = {1: 0, 3: 2, 6: 1, 8: 3}[orientation]
    return np.ascontiguousarray(np.rot90(rgb, turns))


def encode_photo(rgb8: np.ndarray, spec: PhotoSpec, rng: Rng, meta: dict[str, object]) -> tuple[bytes, str]:
    """Encode as the phone (or a messenger app) would."""
    orientation = int(rng.choice([6, 8, 3])) if spec.exif_rotate else 1
    fmt = spec.fmt
    buf = io.BytesIO()
    if fmt == "jpeg":
        q = int(rng.integers(spec.jpeg_q[0], spec.jpeg_q[1] + 1))
        img = Image.fromarray(store_rotated(rgb8, orientation))
        img.save(buf, "JPEG", quality=q, subsampling=2 if q < 90 else int(rng.choice([0, 2])), exif=exif_bytes(orientation, rng))
        meta.update(format="jpeg", jpeg_quality=q, exif_orientation=orientation)
        return buf.getvalue(), "jpg"
    # A WebP or PNG photo has usually been through a JPEG once already (shared, then saved).
    q = int(rng.integers(70, 93))
    tmp = io.BytesIO()
    Image.fromarray(rgb8).save(tmp, "JPEG", quality=q)
    img = Image.open(io.BytesIO(tmp.getvalue())).convert("RGB")
    if fmt == "webp":
        wq = int(rng.integers(60, 91))
        img.save(buf, "WEBP", quality=wq)
        meta.update(format="webp", webp_quality=wq, first_jpeg_quality=q)
        return buf.getvalue(), "webp"
    img.save(buf, "PNG", optimize=False, compress_level=6)
    meta.update(format="png", first_jpeg_quality=q)
    return buf.getvalue(), "png"
