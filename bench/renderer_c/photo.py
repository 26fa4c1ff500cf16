"""Phone photos of a page: desk, sheet in perspective, pen, light and camera.

`PhotoSpec` holds every choice for one photo; `sample_photo` draws ordinary values (a typical
upload) and a condition overrides the few it is about. `render_photo` turns a spec and an ink
mask into the JPEG/WebP/PNG bytes a phone would upload.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import cv2
import numpy as np
from PIL import Image

from . import textures

# pen: (colour, opacity, width in mm)
PENS: dict[str, tuple[tuple[float, float, float], float, float]] = {
    "ballpoint_blue": ((0.10, 0.16, 0.55), 0.88, 0.6),
    "ballpoint_black": ((0.08, 0.08, 0.10), 0.90, 0.6),
    "gel_black": ((0.03, 0.03, 0.04), 0.96, 0.8),
    "marker": ((0.04, 0.04, 0.05), 0.97, 2.5),
    "marker_colour": ((0.10, 0.30, 0.65), 0.95, 2.5),
    "red_pen": ((0.78, 0.10, 0.12), 0.92, 0.7),
    "pencil": ((0.28, 0.28, 0.31), 0.55, 0.6),
}

InkFn = Callable[[int, float], np.ndarray]  # (height px, pen width px) -> ink mask


@dataclass
class PhotoSpec:
    megapixels: float = 2.0
    aspect: float = 4 / 3
    portrait: bool = True
    desk: str = "wood"
    keyboard: bool = False
    paper: str = "white"
    pen: str = "ballpoint_blue"
    page_fill: float = 0.6  # share of the frame the sheet covers
    rotation: float = 0.0  # degrees, in the image plane
    tilt: float = 0.05  # perspective: how much the far edge shrinks
    cut: bool = False  # the sheet runs out of the frame
    cut_amount: tuple[float, float] = (0.15, 0.35)  # how far off-centre a cut sheet lies (share of frame)
    digit_height: float = 0.2  # ink height as a share of the frame's short side
    digit_pos: tuple[float, float] = (0.5, 0.45)  # where on the sheet (x, y in 0..1)
    light: list[str] = field(default_factory=list)  # glare, flash, soft_shadow, hard_shadow, low, cast
    defocus: float = 0.0  # blur sigma per 1000 px of short side
    motion: float = 0.0  # motion blur length per 1000 px of short side
    jpeg_quality: int = 88
    orientation: int = 1  # EXIF Orientation of the stored file
    fmt: str = "jpeg"


def sample_photo(rng: np.random.Generator, **over: Any) -> PhotoSpec:
    """An ordinary phone photo; keyword arguments override single fields."""
    spec = PhotoSpec(
        megapixels=float(rng.choice([0.5, 0.8, 1.2, 2.0, 3.0], p=[0.15, 0.25, 0.25, 0.25, 0.10])),
        aspect=float(rng.choice([4 / 3, 16 / 9, 1.0], p=[0.7, 0.2, 0.1])),
        portrait=bool(rng.random() < 0.7),
        desk=str(rng.choice(["wood", "coloured", "white", "cloth"], p=[0.45, 0.3, 0.15, 0.1])),
        paper=str(rng.choice(["white", "ruled", "squared", "recycled"], p=[0.6, 0.15, 0.15, 0.1])),
        pen=str(rng.choice(["ballpoint_blue", "ballpoint_black", "gel_black", "marker"], p=[0.35, 0.25, 0.25, 0.15])),
        page_fill=float(rng.uniform(0.4, 0.8)),
        rotation=float(rng.normal(0, 4)),
        tilt=float(abs(rng.normal(0, 0.06))),
        digit_height=float(rng.uniform(0.14, 0.35)),
        digit_pos=(float(rng.uniform(0.35, 0.65)), float(rng.uniform(0.3, 0.6))),
        light=["cast_mild"] if rng.random() < 0.25 else [],
        defocus=float(abs(rng.normal(0, 0.6))),
        jpeg_quality=int(rng.integers(75, 96)),
    )
    return replace(spec, **over)


def frame_size(spec: PhotoSpec) -> tuple[int, int]:
    """(width, height) in px for the spec's megapixels and aspect, on even numbers like a sensor."""
    long_ = np.sqrt(spec.megapixels * 1e6 * spec.aspect)
    short = long_ / spec.aspect
    w, h = (short, long_) if spec.portrait else (long_, short)
    return int(w) // 2 * 2, int(h) // 2 * 2


def render_photo(spec: PhotoSpec, ink: InkFn | None, rng: np.random.Generator) -> tuple[bytes, dict[str, Any]]:
    """Render one photo. `ink` None leaves the page blank (a no-digit upload)."""
    w, h = frame_size(spec)
    short = min(w, h)
    scene = textures.desk(rng, spec.desk, h, w)
    if spec.keyboard:
        scene = textures.add_keyboard(rng, scene)
    page_rgb, page_a, quad_page, digit_box = _make_page(spec, ink, rng, w, h)
    scene = _place_page(spec, scene, page_rgb, page_a, quad_page, digit_box, rng)
    scene = _light(spec, scene, rng)
    img = _camera(spec, scene, rng, short)
    data = _encode(spec, img)
    meta = {k: v for k, v in asdict(spec).items()}
    meta.update(width=w, height=h)
    return data, meta


def _make_page(
    spec: PhotoSpec, ink: InkFn | None, rng: np.random.Generator, w: int, h: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    aspect = 1.0 if spec.paper == "sticky" else 1.414
    if spec.paper != "sticky" and rng.random() < 0.2:
        aspect = 1 / 1.414  # a landscape sheet
    area = spec.page_fill * w * h
    pw = np.sqrt(area / aspect)
    ph = pw * aspect
    # Draw the sheet at about its size in the frame (capped: it gets resampled anyway).
    scale = min(1.0, 2600 / max(pw, ph))
    rw, rh = max(int(pw * scale), 32), max(int(ph * scale), 32)
    rgb, alpha = textures.paper(rng, spec.paper, rh, rw)
    offset_x = rgb.shape[1] - rw  # a spiral binding adds a margin on the left
    box = None
    if ink is not None:
        mm = rw / (76.0 if spec.paper == "sticky" else 148.0)
        colour, opacity, width_mm = PENS[spec.pen]
        pen_px = width_mm * mm * float(rng.uniform(0.8, 1.25))
        dh = spec.digit_height * min(w, h) * scale
        mask = ink(int(max(min(dh, rh * 0.75), 6)), pen_px)
        if mask.shape[1] > rw * 0.88:  # a long number is written smaller to fit the sheet
            f = rw * 0.88 / mask.shape[1]
            mask = cv2.resize(mask, (int(mask.shape[1] * f), max(int(mask.shape[0] * f), 3)), interpolation=cv2.INTER_AREA)
        mh, mw = mask.shape
        cx = np.clip(spec.digit_pos[0] * rw, mw / 2 + 2, rw - mw / 2 - 2) + offset_x
        cy = np.clip(spec.digit_pos[1] * rh, mh / 2 + 2, rh - mh / 2 - 2)
        x0, y0 = int(cx - mw / 2), int(cy - mh / 2)
        mh, mw = min(mh, rh - y0), min(mw, rgb.shape[1] - x0)
        mask = mask[:mh, :mw]
        if spec.pen == "pencil":  # graphite catches on the paper grain: broken, grey strokes
            grain = 0.55 + 0.45 * np.clip(textures.value_noise(rng, mh, mw, 1.2) + 0.4, 0, 1)
            mask = mask * grain
        elif spec.pen.startswith("ballpoint"):  # pressure varies along the stroke
            mask = mask * (0.85 + 0.15 * textures.value_noise(rng, mh, mw, max(mh / 6, 2)))
        a = (opacity * mask)[..., None]
        region = rgb[y0 : y0 + mh, x0 : x0 + mw]
        # Ink absorbs light: multiply (inks stack like filters) rather than paint over the paper.
        ink_rgb = np.asarray(colour, np.float32)
        rgb[y0 : y0 + mh, x0 : x0 + mw] = region * (1 - a) + region * ink_rgb * a
        box = np.array([[x0, y0], [x0 + mw, y0], [x0 + mw, y0 + mh], [x0, y0 + mh]], np.float32)
    quad = np.array([[offset_x, 0], [rgb.shape[1], 0], [rgb.shape[1], rh], [offset_x, rh]], np.float32)
    return rgb, alpha, quad, box


def _place_page(
    spec: PhotoSpec, scene: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, quad: np.ndarray,
    box: np.ndarray | None, rng: np.random.Generator,
) -> np.ndarray:
    """Warp the sheet into the frame: rotated, tilted, and (if `cut`) partly outside it."""
    h, w = scene.shape[:2]
    rw = rgb.shape[1]
    aspect = (quad[2, 1] - quad[0, 1]) / (quad[1, 0] - quad[0, 0])
    pw = np.sqrt(spec.page_fill * w * h / aspect)
    ph = pw * aspect
    for attempt in range(30):
        # The far edge is narrower (tilt); usually the top one, as a phone is held over the page.
        t = spec.tilt * float(rng.uniform(0.7, 1.3))
        far = int(rng.choice(4, p=[0.7, 0.1, 0.1, 0.1]))  # top, bottom, left, right
        sx = np.array([1 - t if far == 0 else 1, 1 - t if far == 0 else 1, 1 - t if far == 1 else 1, 1 - t if far == 1 else 1])
        sy = np.array([1 - t if far == 2 else 1, 1 - t if far == 3 else 1, 1 - t if far == 3 else 1, 1 - t if far == 2 else 1])
        corners = np.array([[-pw / 2, -ph / 2], [pw / 2, -ph / 2], [pw / 2, ph / 2], [-pw / 2, ph / 2]], np.float64)
        corners *= np.stack([sx, sy], axis=1)
        corners += rng.normal(0, 0.01 * max(pw, ph), corners.shape)
        ang = np.deg2rad(spec.rotation)
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        corners = corners @ rot.T
        shift = rng.normal(0, 0.04, 2) * (w, h)
        if spec.cut:
            side = rng.normal(0, 1, 2)
            shift = side / np.linalg.norm(side) * rng.uniform(*spec.cut_amount) * (w, h) * (1 - attempt / 40)
        corners += (w / 2 + shift[0], h / 2 + shift[1])
        # The paper quad inside the (possibly spiral-padded) sheet maps to these corners.
        hq = cv2.getPerspectiveTransform(quad.astype(np.float32), corners.astype(np.float32))
        if box is None:
            break
        b = cv2.perspectiveTransform(box[None], hq)[0]
        m = 0.02 * min(w, h)
        if b[:, 0].min() > m and b[:, 1].min() > m and b[:, 0].max() < w - m and b[:, 1].max() < h - m:
            break
    warped = cv2.warpPerspective(rgb, hq, (w, h), flags=cv2.INTER_AREA if pw < rw else cv2.INTER_LINEAR)
    a = cv2.warpPerspective(alpha, hq, (w, h), flags=cv2.INTER_LINEAR)
    # The sheet casts a faint soft shadow on the desk, offset away from the light.
    sh = cv2.GaussianBlur(a, (0, 0), max(min(w, h) / 120, 1))
    dx, dy = (rng.normal(0, 0.006, 2) * min(w, h)).astype(int)
    sh = np.roll(sh, (int(dy), int(dx)), axis=(0, 1))
    scene = scene * (1 - 0.3 * sh[..., None])
    return (scene * (1 - a[..., None]) + warped * a[..., None]).astype(np.float32)


def _light(spec: PhotoSpec, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    s = 8  # lighting fields are smooth: make them small and upscale
    yy, xx = np.mgrid[0:h // s + 1, 0:w // s + 1].astype(np.float32)
    yy, xx = yy * s / h - 0.5, xx * s / w - 0.5
    d = rng.normal(0, 1, 2)
    d /= np.linalg.norm(d)
    gain = 1 + rng.uniform(0.05, 0.2) * (xx * d[0] + yy * d[1]) - rng.uniform(0.05, 0.25) * (xx**2 + yy**2)
    add = np.zeros_like(gain)
    if "flash" in spec.light:
        cx, cy = rng.normal(0, 0.08, 2)
        r2 = (xx - cx) ** 2 + (yy - cy) ** 2
        gain = gain * (1.25 - 1.3 * r2)  # strong fall-off towards the corners
        add += rng.uniform(0.3, 0.8) * np.exp(-r2 / rng.uniform(0.002, 0.008))
    if "glare" in spec.light:
        cx, cy = rng.uniform(-0.3, 0.3, 2)
        sx, sy = rng.uniform(0.04, 0.18, 2)
        add += rng.uniform(0.3, 0.7) * np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2))
    for kind in ("soft_shadow", "hard_shadow"):
        if kind in spec.light:
            gain = gain * _shadow(rng, h, w, hard=kind == "hard_shadow")
    # float32 throughout: a float64 field here would drag the whole frame to float64.
    gain = cv2.resize(gain.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    img = img * gain[..., None]
    if add.any():
        # Glare is specular: it lifts everything towards white, ink included.
        add = cv2.resize(add.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        img = img + add[..., None] * (1 - 0.5 * img)
    if "cast" in spec.light or "cast_mild" in spec.light:
        # White balance the phone did not fully correct: tungsten, shade, fluorescent, sunset.
        casts = [(1.12, 1.0, 0.78), (0.85, 0.97, 1.18), (0.95, 1.08, 0.88), (1.08, 0.98, 0.9)]
        c = np.asarray(casts[int(rng.integers(len(casts)))], np.float32)
        strength = 1.0 if "cast" in spec.light else 0.35
        img = img * (1 + strength * (c - 1))
    if "low" in spec.light:
        img = img * rng.uniform(0.12, 0.3) * np.asarray((1.1, 1.0, 0.8), np.float32)
    return img.astype(np.float32)


def _shadow(rng: np.random.Generator, full_h: int, full_w: int, hard: bool) -> np.ndarray:
    """A shadow of a hand, a phone or a lamp arm: a blob or a straight-edged shape across the frame.

    Drawn on the 1/8 lighting grid; a hard edge then stays about 8 px wide after upscaling, as the
    penumbra of a phone held 20 cm over the page is.
    """
    h, w = full_h // 8 + 1, full_w // 8 + 1
    mask = np.zeros((h, w), np.float32)
    if hard or rng.random() < 0.5:
        # A straight edge through the frame (often across the page and the digit).
        ang = rng.uniform(0, 2 * np.pi)
        c = np.array([w, h]) * rng.uniform(0.3, 0.7, 2)
        n = np.array([np.cos(ang), np.sin(ang)])
        far = 3 * max(w, h)
        t = np.array([-n[1], n[0]])
        pts = np.array([c + t * far, c - t * far, c - t * far + n * far, c + t * far + n * far], np.int32)
        cv2.fillPoly(mask, [pts], 1.0)
    else:
        cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.9) * h
        axes = (int(rng.uniform(0.2, 0.5) * w), int(rng.uniform(0.15, 0.4) * h))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
    sigma = min(w, h) * (rng.uniform(0.002, 0.006) if hard else rng.uniform(0.04, 0.1))
    if sigma > 0.3:
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    depth = rng.uniform(0.35, 0.6) if hard else rng.uniform(0.25, 0.5)
    return 1 - depth * mask


def _camera(spec: PhotoSpec, img: np.ndarray, rng: np.random.Generator, short: int) -> np.ndarray:
    """Optics and sensor: blur, noise (worse in low light), auto exposure, sharpening, 8 bits."""
    k = short / 1000
    if spec.defocus > 0.05:
        img = cv2.GaussianBlur(img, (0, 0), spec.defocus * k)
    if spec.motion > 0.05:
        length = max(int(spec.motion * k), 2)
        kern = np.zeros((length, length), np.float32)
        kern[length // 2, :] = 1
        rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0)
        kern = cv2.warpAffine(kern, rot, (length, length))
        img = cv2.filter2D(img, -1, kern / max(kern.sum(), 1e-6))
    low = "low" in spec.light
    level = float(np.percentile(img[::7, ::7], 90))
    # Shot noise grows as the light drops; the phone then boosts gain to a normal exposure.
    sigma = rng.uniform(0.004, 0.012) + (rng.uniform(0.015, 0.03) if low else 0)
    target = rng.uniform(0.55, 0.75) if low else rng.uniform(0.82, 0.95)
    img = img * np.float32(target / max(level, 1e-3))
    img += rng.standard_normal(img.shape[:2], dtype=np.float32)[..., None] * np.float32(sigma)
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma * 0.4)
    u8 = cv2.convertScaleAbs(img, alpha=255.0)  # rounds and saturates to 0..255
    # Tone curve and sharpening in 8 bits, as the phone's pipeline does (and cheaper than floats).
    gamma = rng.uniform(1.0, 1.15)
    lut = np.clip((np.arange(256) / 255.0) ** (1 / gamma) * 255 + 0.5, 0, 255).astype(np.uint8)
    u8 = cv2.LUT(u8, lut)
    if rng.random() < 0.6:  # phones sharpen
        amount = rng.uniform(0.2, 0.6)
        u8 = cv2.addWeighted(u8, 1 + amount, cv2.GaussianBlur(u8, (0, 0), 1.2), -amount, 0)
    return u8


# How the stored pixels are turned so that applying the EXIF Orientation shows them upright.
_STORE = {1: None, 3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def _encode(spec: PhotoSpec, img: np.ndarray) -> bytes:
    pil = Image.fromarray(img, "RGB")
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "Phonecam"  # Make
    exif[0x0110] = "PC-1"  # Model
    if spec.orientation != 1:
        pil = pil.transpose(_STORE[spec.orientation])  # type: ignore[arg-type]
        exif[0x0112] = spec.orientation
    if spec.fmt == "jpeg":
        pil.save(buf, "JPEG", quality=spec.jpeg_quality, exif=exif.tobytes(), subsampling=2)
    elif spec.fmt == "webp":
        pil.save(buf, "WEBP", quality=spec.jpeg_quality)
    else:
        pil.save(buf, "PNG", compress_level=3)
    return buf.getvalue()
