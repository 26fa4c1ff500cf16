"""Render a digit as the file a user would really upload: a canvas export, a scan, a phone photo.

`render_upload(ink, condition, rng)` takes a white-on-black digit image (MNIST's 28x28, or any
size) and returns the encoded bytes of one upload of the named condition, with where the digit
lies in it. The conditions are the ones issue 8 lists; each has its own name so that a report can
say which of them a pipeline gets wrong.

How a photo is made, in the order the physics happens (so that effects combine the right way):

1. the digit is upscaled smoothly (cubic, blurred, re-thresholded) to its size on the page, and
   its stroke is set to a pen's width (thinned along the distance-transform ridge, or dilated);
2. a *reflectance* image of the page is built: off-white paper with fibre noise, optional ruling,
   grid or dots, then the ink on top (ink covers the ruling, as on real paper);
3. geometry: the page is rotated / put in perspective, onto a desk or a busy surface;
4. light multiplies the reflectance: a gradient, vignetting, shadows (soft or hard-edged), glare;
5. the camera: defocus or motion blur, sensor noise, then real JPEG compression with Pillow.

Everything random comes from the `rng` passed in, and OpenCV/Pillow are deterministic for a given
input, so the same seed gives the same bytes (the tests check it).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

Float = NDArray[np.float32]
Box = tuple[int, int, int, int]

CANVAS_CONDITIONS = ("canvas_black", "canvas_white", "canvas_colour", "canvas_thin", "canvas_thick", "canvas_opaque")
SCAN_CONDITIONS = ("scan_grey", "scan_colour")
PHOTO_CONDITIONS = (
    "photo_desk",
    "photo_busy",
    "photo_shadow_soft",
    "photo_shadow_hard",
    "photo_uneven",
    "photo_ruled",
    "photo_squared",
    "photo_dotted",
    "photo_pencil",
    "photo_ballpoint",
    "photo_blur",
    "photo_jpeg",
    "photo_exif",
    "photo_12mp",
)
DARK_CONDITIONS = ("chalkboard", "white_on_black", "whiteboard")
CONDITIONS: tuple[str, ...] = CANVAS_CONDITIONS + SCAN_CONDITIONS + PHOTO_CONDITIONS + DARK_CONDITIONS
"""Every condition, in report order: canvas, scans, phone photos, light on dark."""

FORMATS: dict[str, str] = {
    **{name: "PNG" for name in CANVAS_CONDITIONS},
    "scan_grey": "PNG",
    "scan_colour": "JPEG",
    **{name: "JPEG" for name in PHOTO_CONDITIONS + DARK_CONDITIONS},
}
"""The file format each condition is encoded in."""

MODES: dict[str, str] = {
    **{name: "RGBA" for name in CANVAS_CONDITIONS},
    "canvas_opaque": "RGB",
    "scan_grey": "L",
    **{name: "RGB" for name in ("scan_colour", *PHOTO_CONDITIONS, *DARK_CONDITIONS)},
}
"""The Pillow mode of each condition's decoded file."""

PHOTO_SIZES = ((1200, 1600), (1536, 2048), (1440, 1920), (1600, 1200), (2048, 1536), (1080, 1440))
"""Phone photos, (width, height): 1.5-3.1 MP, mostly portrait as a page is photographed."""

TWELVE_MP = (4032, 3024)
"""A 12 MP phone camera's full frame (4:3 landscape)."""

EXIF_ORIENTATION = 0x0112
"""The EXIF tag that tells a viewer how to rotate the stored pixels to show them upright."""

# Where the stored pixels are the upright image transposed by the first element, a viewer applying
# the tag (second) restores it: PIL's ImageOps.exif_transpose uses exactly this table.
_EXIF_ROTATIONS = ((Image.Transpose.ROTATE_180, 3), (Image.Transpose.ROTATE_90, 6), (Image.Transpose.ROTATE_270, 8))


@dataclass(frozen=True)
class Upload:
    """One rendered upload: the file's bytes and what is known about it.

    `width`, `height` and `digit_box` describe the image as a viewer shows it, i.e. after the EXIF
    orientation is applied (for `photo_exif` the stored pixels are rotated).
    """

    data: bytes
    condition: str
    format: str
    mode: str
    width: int
    height: int
    digit_box: Box
    """(x, y, w, h) of the digit's ink in the (upright) image, in pixels."""
    exif_orientation: int | None = None


# -- the digit as a pen stroke ------------------------------------------------------------------


def stroke_mask(ink: NDArray[np.uint8], height: int, width_frac: float, max_width: int | None = None) -> Float:
    """The digit as a soft-edged pen stroke `height` px tall, stroke width `width_frac` x height.

    A wide digit in a narrow image is made smaller (to at most `max_width` px wide) rather than
    cut off at the image's edge: a user frames what they wrote.

    MNIST digits are 20 px tall with a ~2.6 px (13%) stroke. Nearest or bilinear upscaling shows
    the pixels; cubic upscaling, a blur of about half a source pixel and a threshold give a smooth
    outline instead. The stroke is then re-drawn at the pen's width: thinner pens along the
    distance-transform ridge (the medial axis) plus an erosion, thicker ones by dilation, so that
    thin strokes do not break apart as plain erosion would make them.
    """
    grey = ink.astype(np.float32) / 255.0
    rows, cols = np.nonzero(grey > 0.1)
    if rows.size == 0:
        raise ValueError("the digit image holds no ink")
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    pad = 2
    crop = np.pad(grey[y0:y1, x0:x1], pad)
    scale = height / (y1 - y0)
    if max_width is not None and crop.shape[1] * scale > max_width:
        scale = max_width / crop.shape[1]
        height = max(4, round(scale * (y1 - y0)))
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    up = cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC)
    up = cv2.GaussianBlur(up, (0, 0), max(0.5, 0.45 * scale))
    binary = (up > 0.4).astype(np.uint8)
    if not binary.any():
        binary = (up > 0.5 * up.max()).astype(np.uint8)

    target = max(1.5, width_frac * height)
    distance = cv2.distanceTransform(binary, cv2.DIST_L2, 5)
    # For a band of width w, the distance to the edge is uniform over [0, w/2]: its mean is w/4.
    current = 4.0 * float(distance[binary > 0].mean())
    if target < 0.7 * current:
        # Thinner pen: the ridge (medial axis) redrawn at the pen's width, so no thin part breaks
        # away, united with the erosion, so that what is a filled blob in the source (the loop of a
        # blurred 8x8 "6") stays a blob and does not shrink to a dot on its ridge.
        ridge = (distance >= cv2.dilate(distance, np.ones((3, 3), np.uint8)) - 0.75) & (distance > 0.5)
        # Isolated ridge points (a corner's spur) would become specks: drop tiny pieces.
        _, labels, stats, _ = cv2.connectedComponentsWithStats(ridge.astype(np.uint8), connectivity=8)
        keep = stats[:, cv2.CC_STAT_AREA] >= 4
        keep[0] = False
        eroded = cv2.erode(binary, _disc(1.4 * current - target))  # only well above the mean width
        binary = cv2.dilate(keep[labels].astype(np.uint8), _disc(target)) | eroded
    elif target > current + 1:
        binary = cv2.dilate(binary, _disc(target - current + 1))
    elif current - target >= 2:
        binary = cv2.erode(binary, _disc(current - target))
    # Anti-aliased edge, as any pen and any camera give.
    soft = cv2.GaussianBlur(binary.astype(np.float32), (0, 0), max(0.6, target / 12))
    return np.asarray(np.clip(soft * 1.15, 0.0, 1.0), np.float32)


def _disc(diameter: float) -> NDArray[np.uint8]:
    """An elliptical structuring element of about this diameter (at least 1 px)."""
    side = max(1, round(diameter))
    return np.asarray(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)), np.uint8)


def _mask_box(mask: Float, x: int, y: int) -> Box:
    """The tight box of a stroke mask's visible ink, placed at (x, y)."""
    rows, cols = np.nonzero(mask > 0.25)
    return (x + int(cols.min()), y + int(rows.min()), int(cols.max() - cols.min() + 1), int(rows.max() - rows.min() + 1))


def place(mask: Float, width: int, height: int, rng: np.random.Generator, spread: float = 0.06) -> tuple[int, int]:
    """Top-left corner that puts the digit roughly, not exactly, at the centre of the image."""
    mh, mw = mask.shape
    cx = width * (0.5 + rng.normal(0, spread))
    cy = height * (0.5 + rng.normal(0, spread))
    margin_x, margin_y = max(0, (width - mw) // 20), max(0, (height - mh) // 20)
    x = int(np.clip(cx - mw / 2, margin_x, max(margin_x, width - mw - margin_x)))
    y = int(np.clip(cy - mh / 2, margin_y, max(margin_y, height - mh - margin_y)))
    return x, y


def draw_ink(page: Float, mask: Float, x: int, y: int, colour: NDArray[np.float32], opacity: Float | float) -> None:
    """Lay ink of reflectance `colour` over the page (in place): ink covers what is under it."""
    mh, mw = mask.shape
    region = page[y : y + mh, x : x + mw]
    alpha = (mask[: region.shape[0], : region.shape[1]] * opacity)[..., None]
    region *= 1.0 - alpha
    region += alpha * colour


# -- surfaces -----------------------------------------------------------------------------------


def smooth_noise(height: int, width: int, cell: int, rng: np.random.Generator) -> Float:
    """Zero-mean, unit-ish noise varying over about `cell` pixels (cheap: upscaled from a coarse grid)."""
    coarse = rng.standard_normal((max(2, height // cell + 2), max(2, width // cell + 2))).astype(np.float32)
    return np.asarray(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC), np.float32)


def paper(height: int, width: int, rng: np.random.Generator, *, white: float = 0.93) -> Float:
    """Off-white paper reflectance (H, W, 3): a slight warm or cool tint, blotches and fibres."""
    base = white + rng.uniform(-0.03, 0.04)
    # Paper is neutral to warm (cream), not pink or blue: one warmth, shared by red and green.
    warmth = rng.uniform(-0.005, 0.03)
    tint = np.array([1.0 + warmth, 1.0 + 0.6 * warmth, 1.0 - warmth], np.float32) + rng.normal(0, 0.004, 3).astype(np.float32)
    texture = 0.012 * smooth_noise(height, width, 48, rng) + 0.008 * smooth_noise(height, width, 4, rng)
    page = (base + texture)[..., None] * tint
    return np.clip(page, 0, 1).astype(np.float32)


def desk(height: int, width: int, rng: np.random.Generator) -> Float:
    """A darker desk or table top: wood grain, laminate or a dark mat."""
    palette = np.array(
        [[0.42, 0.27, 0.15], [0.30, 0.19, 0.11], [0.28, 0.28, 0.30], [0.13, 0.13, 0.14], [0.55, 0.40, 0.25]],
        np.float32,
    )
    colour = palette[rng.integers(len(palette))] * rng.uniform(0.8, 1.15)
    small_h, small_w = max(8, height // 4), max(8, width // 4)
    yy = np.arange(small_h, dtype=np.float32)[:, None]
    warp = 6.0 * smooth_noise(small_h, small_w, 40, rng)
    grain = np.sin(2 * np.pi * (yy + warp) / rng.uniform(6, 20)) * rng.uniform(0.03, 0.10)
    grain += 0.03 * smooth_noise(small_h, small_w, 10, rng)
    if rng.random() < 0.5:
        grain = grain.T if grain.shape[0] == grain.shape[1] else cv2.resize(grain.T, (small_w, small_h))
    shade = cv2.resize(grain.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    return np.asarray(np.clip(colour * (1 + shade[..., None]), 0, 1), np.float32)


def busy_surface(height: int, width: int, rng: np.random.Generator) -> Float:
    """A busy background: patterned cloth or a cluttered table with objects, cables and pens."""
    small_h, small_w = max(16, height // 4), max(16, width // 4)
    base = rng.uniform(0.2, 0.7, 3).astype(np.float32)
    surface = np.ones((small_h, small_w, 3), np.float32) * base
    if rng.random() < 0.5:  # a plaid / striped tablecloth
        for axis in (0, 1):
            period = rng.uniform(10, 40)
            n = small_h if axis == 0 else small_w
            stripes = (np.sin(2 * np.pi * np.arange(n) / period) > rng.uniform(-0.3, 0.5)).astype(np.float32)
            colour = rng.uniform(0.1, 0.9, 3).astype(np.float32)
            band = stripes[:, None, None] if axis == 0 else stripes[None, :, None]
            surface = surface * (1 - 0.5 * band) + 0.5 * band * colour
    for _ in range(int(rng.integers(15, 45))):  # clutter: objects, cables, pens, paper scraps
        paint = tuple(float(c) for c in rng.uniform(0.0, 1.0, 3))
        cx, cy = int(rng.integers(0, small_w)), int(rng.integers(0, small_h))
        kind = rng.integers(3)
        if kind == 0:
            axes = (int(rng.integers(3, small_w // 5 + 4)), int(rng.integers(3, small_h // 5 + 4)))
            cv2.ellipse(surface, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, paint, -1, cv2.LINE_AA)
        elif kind == 1:
            w, h = int(rng.integers(4, small_w // 3 + 5)), int(rng.integers(4, small_h // 3 + 5))
            cv2.rectangle(surface, (cx, cy), (cx + w, cy + h), paint, -1, cv2.LINE_AA)
        else:
            end = (cx + int(rng.integers(-small_w // 2, small_w // 2)), cy + int(rng.integers(-small_h // 2, small_h // 2)))
            cv2.line(surface, (cx, cy), end, paint, int(rng.integers(1, 4)), cv2.LINE_AA)
    surface += 0.04 * smooth_noise(small_h, small_w, 3, rng)[..., None]
    surface = cv2.GaussianBlur(surface, (0, 0), 0.8)
    return np.asarray(np.clip(cv2.resize(surface, (width, height), interpolation=cv2.INTER_LINEAR), 0, 1), np.float32)


def rule_page(page: Float, kind: str, spacing: float, rng: np.random.Generator) -> None:
    """Print ruled lines, a squared grid or a dot grid onto the page (in place), light blue or grey."""
    height, width = page.shape[:2]
    colour = np.array([0.55, 0.70, 0.93], np.float32) if rng.random() < 0.7 else np.array([0.65, 0.66, 0.68], np.float32)
    strength = rng.uniform(0.45, 0.8)
    thickness = max(1, round(max(height, width) / rng.uniform(700, 1100)))
    layer = np.zeros((height, width), np.float32)
    offset_y, offset_x = rng.uniform(0, spacing), rng.uniform(0, spacing)
    ys = np.arange(offset_y, height, spacing)
    xs = np.arange(offset_x, width, spacing)
    if kind in ("ruled", "squared"):
        for y in ys:
            cv2.line(layer, (0, round(y)), (width - 1, round(y)), 1.0, thickness, cv2.LINE_AA)
    if kind == "squared":
        for x in xs:
            cv2.line(layer, (round(x), 0), (round(x), height - 1), 1.0, thickness, cv2.LINE_AA)
    if kind == "dotted":
        radius = max(1, round(thickness * rng.uniform(1.0, 2.0)))
        for y in ys:
            for x in xs:
                cv2.circle(layer, (round(x), round(y)), radius, 1.0, -1, cv2.LINE_AA)
    alpha = (strength * layer)[..., None]
    page *= 1 - alpha
    page += alpha * colour * page.mean()
    if kind == "ruled" and rng.random() < 0.5:  # the red margin of an exercise book
        margin = np.zeros((height, width), np.float32)
        x = round(width * rng.uniform(0.06, 0.14))
        cv2.line(margin, (x, 0), (x, height - 1), 1.0, thickness + 1, cv2.LINE_AA)
        alpha = (0.6 * margin)[..., None]
        page *= 1 - alpha
        page += alpha * np.array([0.85, 0.35, 0.40], np.float32)


# -- light and camera ---------------------------------------------------------------------------


def illumination(height: int, width: int, rng: np.random.Generator, *, strength: float) -> Float:
    """Light falling on the scene (H, W): a linear gradient and vignetting; 0 = flat, 1 = strong."""
    small_h, small_w = 48, 64
    yy, xx = np.mgrid[0:small_h, 0:small_w].astype(np.float32)
    yy, xx = yy / (small_h - 1) - 0.5, xx / (small_w - 1) - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    gradient = 1.0 - strength * rng.uniform(0.15, 0.45) * (0.5 + np.cos(angle) * xx + np.sin(angle) * yy)
    cx, cy = rng.normal(0, 0.1, 2)
    radius2 = (xx - cx) ** 2 + (yy - cy) ** 2
    vignette = 1.0 - strength * rng.uniform(0.1, 0.6) * radius2 / 0.5
    light = (gradient * vignette).astype(np.float32)
    return np.asarray(cv2.resize(light, (width, height), interpolation=cv2.INTER_LINEAR), np.float32)


def shadow(height: int, width: int, rng: np.random.Generator, *, hard: bool) -> Float:
    """A shadow factor (H, W) in (0, 1]: a polygon over part of the image (a hand, a phone, a lamp).

    Hard shadows have a 1-3 px edge; soft ones a blur of 3-10% of the image.
    """
    scale = 1 if hard else 8  # soft shadows are drawn small and blurred there: same look, far faster
    small_h, small_w = height // scale, width // scale
    mask = np.zeros((small_h, small_w), np.float32)
    # A polygon that enters from one side of the image and covers 15-45% of it.
    side = rng.integers(4)
    depth = rng.uniform(0.2, 0.55)
    t0, t1 = sorted(rng.uniform(-0.2, 1.2, 2))
    points = []
    if side == 0:
        points = [(t0, -0.1), (t1, -0.1), (t1 + rng.normal(0, 0.1), depth), (t0 + rng.normal(0, 0.1), depth * rng.uniform(0.6, 1.3))]
    elif side == 1:
        points = [(-0.1, t0), (-0.1, t1), (depth, t1 + rng.normal(0, 0.1)), (depth * rng.uniform(0.6, 1.3), t0)]
    elif side == 2:
        points = [(t0, 1.1), (t1, 1.1), (t1 + rng.normal(0, 0.1), 1 - depth), (t0, 1 - depth * rng.uniform(0.6, 1.3))]
    else:
        points = [(1.1, t0), (1.1, t1), (1 - depth, t1), (1 - depth * rng.uniform(0.6, 1.3), t0 + rng.normal(0, 0.1))]
    polygon = np.array([(px * small_w, py * small_h) for px, py in points], np.int32)
    cv2.fillPoly(mask, [polygon], 1.0, cv2.LINE_AA)
    if hard:
        mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(0.7, 2.0))
        darkness = rng.uniform(0.35, 0.6)
    else:
        mask = cv2.GaussianBlur(mask, (0, 0), max(small_h, small_w) * rng.uniform(0.03, 0.10))
        darkness = rng.uniform(0.3, 0.55)
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.asarray(1.0 - darkness * mask, np.float32)


def blur(image: Float, rng: np.random.Generator, digit_height: int) -> Float:
    """Mild defocus (Gaussian) or motion blur (a line kernel), sized relative to the digit."""
    if rng.random() < 0.5:
        return np.asarray(cv2.GaussianBlur(image, (0, 0), digit_height * rng.uniform(0.008, 0.02)), np.float32)
    length = max(3, round(digit_height * rng.uniform(0.025, 0.06)))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), float(rng.uniform(0, 180)), 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (length, length))
    return np.asarray(cv2.filter2D(image, -1, kernel / kernel.sum()), np.float32)


def sensor_noise(image: Float, rng: np.random.Generator, sigma: float) -> Float:
    """Camera noise on a float image (scans): Gaussian, mostly luminance."""
    height, width = image.shape[:2]
    luma = rng.standard_normal((height, width), dtype=np.float32) * np.float32(sigma)
    return image + luma[..., None]


def develop(scene: Float, size: tuple[int, int], rng: np.random.Generator, *, levels: float) -> NDArray[np.uint8]:
    """From a scene rendered at reduced size to the camera's full-size 8-bit frame, with sensor noise.

    Scenes are rendered at half the photo's resolution (a phone photo's detail is no sharper than
    that, and it is four times less work), upscaled, and the noise (`levels` grey levels, mostly
    luminance) is added at full resolution in integers: it is what makes real photos' JPEGs large.
    """
    width, height = size
    full = cv2.resize(to_uint8(scene), (width, height), interpolation=cv2.INTER_CUBIC)
    noise = (rng.standard_normal((height, width), dtype=np.float32) * np.float32(levels)).astype(np.int16)
    tint = rng.normal(0, 0.15, 3)  # a little colour noise, one pattern for all channels: cheap
    out = full.astype(np.int16)
    for channel in range(3):
        out[..., channel] += (noise * (1 + tint[channel])).astype(np.int16)
    return np.asarray(np.clip(out, 0, 255), np.uint8)


def to_uint8(image: Float) -> NDArray[np.uint8]:
    """[0, 1] float to uint8, rounded."""
    return np.asarray(np.clip(image * 255.0 + 0.5, 0, 255), np.uint8)


def encode(pixels: NDArray[np.uint8], fmt: str, *, quality: int = 90, exif: Image.Exif | None = None) -> bytes:
    """Encode with Pillow, as a phone or a browser would (JPEG 4:2:0 subsampling; PNG zlib)."""
    image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    if fmt == "JPEG":
        kwargs: dict[str, object] = {"quality": quality}
        if exif is not None:
            kwargs["exif"] = exif
        image.save(buffer, "JPEG", **kwargs)
    else:
        image.save(buffer, "PNG")
    return buffer.getvalue()


def transform_box(box: Box, matrix: NDArray[np.float64], width: int, height: int) -> Box:
    """The box around a box's four corners after a 2x3 affine or 3x3 perspective map, clipped."""
    x, y, w, h = box
    corners = np.array([[[x, y]], [[x + w, y]], [[x, y + h]], [[x + w, y + h]]], np.float64)
    mapped = cv2.perspectiveTransform(corners, matrix if matrix.shape == (3, 3) else np.vstack([matrix, [0, 0, 1]]))
    x0, y0 = np.clip(mapped[:, 0, 0].min(), 0, width - 1), np.clip(mapped[:, 0, 1].min(), 0, height - 1)
    x1, y1 = np.clip(mapped[:, 0, 0].max(), 0, width - 1), np.clip(mapped[:, 0, 1].max(), 0, height - 1)
    return (int(x0), int(y0), max(1, math.ceil(x1 - x0)), max(1, math.ceil(y1 - y0)))


# -- inks ---------------------------------------------------------------------------------------

_PEN_INKS = np.array(
    [[0.08, 0.08, 0.10], [0.12, 0.16, 0.50], [0.05, 0.05, 0.07], [0.15, 0.20, 0.60], [0.70, 0.12, 0.13]],
    np.float32,
)
"""Reflectances of black, blue and red pens (ballpoint and felt tip)."""


def pen_ink(rng: np.random.Generator, *, red: bool = True) -> NDArray[np.float32]:
    """A random pen's reflectance: black or blue, or (when `red`) sometimes red."""
    choices = len(_PEN_INKS) if red else len(_PEN_INKS) - 1
    return np.asarray(_PEN_INKS[rng.integers(choices)] * rng.uniform(0.8, 1.2), np.float32)


def textured(mask: Float, rng: np.random.Generator, *, floor: float, grain: float) -> Float:
    """A grainy stroke (pencil graphite, chalk): coverage varies pixel to pixel and along the stroke."""
    height, width = mask.shape
    speckle = rng.random((height, width), dtype=np.float32)
    speckle = cv2.GaussianBlur(speckle, (0, 0), grain)
    speckle = (speckle - speckle.min()) / max(1e-6, float(speckle.max() - speckle.min()))
    along = 0.85 + 0.15 * np.tanh(smooth_noise(height, width, max(8, height // 6), rng))
    return np.asarray(mask * np.clip(floor + (1 - floor) * speckle * 1.3, 0, 1) * along, np.float32)


# -- the condition families ---------------------------------------------------------------------


@dataclass
class _Scene:
    """A rendered scene before encoding: float RGB pixels in [0, 1] and the digit's box."""

    pixels: Float
    box: Box


def _render_canvas(ink: NDArray[np.uint8], condition: str, rng: np.random.Generator) -> Upload:
    """A drawing exported from an HTML canvas: crisp anti-aliased strokes, no noise, often transparent."""
    side = int(rng.integers(300, 601))
    width = side if rng.random() < 0.6 else int(rng.integers(300, 601))
    height = side
    stroke = {"canvas_thin": rng.uniform(0.015, 0.04), "canvas_thick": rng.uniform(0.18, 0.28)}.get(
        condition, rng.uniform(0.06, 0.14)
    )
    # People fill a drawing pad: digits are larger on a canvas than on a page.
    mask = stroke_mask(ink, round(height * rng.uniform(0.35, 0.75)), stroke, max_width=width * 9 // 10)
    mask = mask[: height - 2, : width - 2]
    x, y = place(mask, width, height, rng, spread=0.08)
    box = _mask_box(mask, x, y)
    alpha = np.zeros((height, width), np.float32)
    alpha[y : y + mask.shape[0], x : x + mask.shape[1]] = mask[: height - y, : width - x]
    if condition == "canvas_opaque":
        colour = pen_ink(rng) if rng.random() < 0.3 else np.zeros(3, np.float32)
        rgb = 1.0 - alpha[..., None] * (1.0 - colour)
        data = encode(to_uint8(rgb.astype(np.float32)), "PNG")
        return Upload(data, condition, "PNG", "RGB", width, height, box)
    if condition == "canvas_white":
        colour = np.ones(3, np.float32)
    elif condition == "canvas_colour":
        hsv = np.array([[[rng.integers(0, 180), rng.integers(150, 256), rng.integers(120, 256)]]], np.uint8)
        colour = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0
    elif condition in ("canvas_thin", "canvas_thick"):
        colour = np.zeros(3, np.float32) if rng.random() < 0.7 else pen_ink(rng)
    else:
        colour = np.zeros(3, np.float32)
    # toDataURL keeps the stroke colour where anything was drawn and (0, 0, 0, 0) elsewhere.
    rgba = np.zeros((height, width, 4), np.float32)
    rgba[..., :3] = np.where(alpha[..., None] > 0, colour, 0.0)
    rgba[..., 3] = alpha
    data = encode(to_uint8(rgba), "PNG")
    return Upload(data, condition, "PNG", "RGBA", width, height, box)


def _render_scan(ink: NDArray[np.uint8], condition: str, rng: np.random.Generator) -> Upload:
    """A scanner crop or a screenshot: white paper, even light, slight noise and rotation."""
    width, height = int(rng.integers(400, 1101)), int(rng.integers(400, 1101))
    page = paper(height, width, rng, white=0.96)
    mask = stroke_mask(ink, round(height * rng.uniform(0.2, 0.5)), rng.uniform(0.05, 0.13), max_width=width * 9 // 10)
    x, y = place(mask, width, height, rng)
    draw_ink(page, mask, x, y, pen_ink(rng), rng.uniform(0.85, 1.0))
    box = _mask_box(mask, x, y)
    angle = rng.normal(0, 1.2)
    rotation = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    page = cv2.warpAffine(page, rotation, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    box = transform_box(box, rotation, width, height)
    page = sensor_noise(page, rng, rng.uniform(0.003, 0.012))
    if condition == "scan_grey":
        grey = cv2.cvtColor(to_uint8(page), cv2.COLOR_RGB2GRAY)
        return Upload(encode(grey, "PNG"), condition, "PNG", "L", width, height, box)
    data = encode(to_uint8(page), "JPEG", quality=int(rng.integers(85, 96)))
    return Upload(data, condition, "JPEG", "RGB", width, height, box)


def _page_scene(ink: NDArray[np.uint8], condition: str, rng: np.random.Generator, size: tuple[int, int]) -> _Scene:
    """A photo of a page: reflectance, geometry, light and blur; noise and encoding come after."""
    width, height = size
    on_surface = condition in ("photo_desk", "photo_busy", "photo_12mp")
    # Page size in the frame: a strip of surface shows around it, or the page fills the frame.
    page_scale = {"photo_desk": rng.uniform(0.72, 0.9), "photo_busy": rng.uniform(0.55, 0.8)}.get(
        condition, rng.uniform(0.78, 0.92) if on_surface else 1.0
    )
    page_w, page_h = round(width * page_scale), round(height * page_scale)
    page = paper(page_h, page_w, rng)
    digit_h = round(height * rng.uniform(0.15, 0.45))
    if condition in ("photo_ruled", "photo_squared", "photo_dotted"):
        divisor = rng.uniform(1.2, 2.8) if condition == "photo_ruled" else rng.uniform(1.5, 4.0)
        rule_page(page, condition.removeprefix("photo_"), digit_h / divisor, rng)

    if condition == "photo_pencil":
        width_frac, colour = rng.uniform(0.03, 0.07), np.full(3, rng.uniform(0.3, 0.5), np.float32)
    elif condition == "photo_ballpoint":
        width_frac, colour = rng.uniform(0.025, 0.07), pen_ink(rng)
    else:
        width_frac, colour = rng.uniform(0.04, 0.13), pen_ink(rng, red=False)
    mask = stroke_mask(ink, min(digit_h, page_h - 4), width_frac, max_width=page_w * 9 // 10)
    mask = mask[: page_h - 2, : page_w - 2]
    x, y = place(mask, page_w, page_h, rng)
    box = _mask_box(mask, x, y)
    if condition == "photo_pencil":
        mask = textured(mask, rng, floor=0.25, grain=0.8)
    draw_ink(page, mask, x, y, colour, rng.uniform(0.8, 1.0))

    if on_surface:
        # The page lies on the surface, rotated and seen slightly from the side.
        surface = busy_surface(height, width, rng) if condition == "photo_busy" else desk(height, width, rng)
        centre = np.array([width / 2, height / 2]) + rng.normal(0, 0.03, 2) * (width, height)
        angle = math.radians(rng.normal(0, 5))
        corners = np.array([[-page_w / 2, -page_h / 2], [page_w / 2, -page_h / 2], [page_w / 2, page_h / 2], [-page_w / 2, page_h / 2]])
        rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        quad = corners @ rotation.T + centre + rng.normal(0, 0.02, (4, 2)) * (page_w, page_h)
        source = np.array([[0, 0], [page_w, 0], [page_w, page_h], [0, page_h]], np.float32)
        matrix = cv2.getPerspectiveTransform(source, quad.astype(np.float32))
        warped = cv2.warpPerspective(page, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        coverage = cv2.warpPerspective(np.ones((page_h, page_w), np.float32), matrix, (width, height), flags=cv2.INTER_LINEAR)
        scene = surface * (1 - coverage[..., None]) + warped * coverage[..., None]
        box = transform_box(box, matrix, width, height)
    else:
        # Held over the page: a little perspective, the page beyond the frame on every side.
        source = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
        target = (source + rng.normal(0, 0.015, (4, 2)) * (width, height)).astype(np.float32)
        matrix = cv2.getPerspectiveTransform(source, target)
        scene = cv2.warpPerspective(page, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        box = transform_box(box, matrix, width, height)

    strength = rng.uniform(0.8, 1.0) if condition == "photo_uneven" else rng.uniform(0.1, 0.4)
    light = illumination(height, width, rng, strength=strength)
    if condition in ("photo_shadow_soft", "photo_shadow_hard"):
        light *= shadow(height, width, rng, hard=condition == "photo_shadow_hard")
    exposure = rng.uniform(0.85, 1.1) * (1 + rng.normal(0, 0.03, 3)).astype(np.float32)  # white balance
    scene = scene * (light[..., None] * exposure)
    if condition == "photo_blur":
        scene = blur(scene, rng, box[3])
    else:
        scene = cv2.GaussianBlur(scene, (0, 0), rng.uniform(0.3, 0.6))  # no phone photo is pin-sharp
    return _Scene(scene.astype(np.float32), box)


def _render_photo(ink: NDArray[np.uint8], condition: str, rng: np.random.Generator) -> Upload:
    """A phone photo of a page (JPEG): 1.5-3 MP, or the full 4032x3024 for `photo_12mp` (~2-4 MB)."""
    if condition == "photo_12mp":
        width, height = TWELVE_MP
        levels = rng.uniform(4.0, 6.0)  # with quality 88-94 this gives the 2-4 MB of real 12 MP JPEGs
    else:
        width, height = PHOTO_SIZES[rng.integers(len(PHOTO_SIZES))]
        levels = rng.uniform(1.5, 6.0)
    scene = _page_scene(ink, condition, rng, (width // 2, height // 2))
    pixels = develop(scene.pixels, (width, height), rng, levels=levels)
    box = _scale_box(scene.box, 2, width, height)
    quality = int(rng.integers(20, 36)) if condition == "photo_jpeg" else int(rng.integers(70, 93))
    if condition == "photo_12mp":
        quality = int(rng.integers(88, 95))
    if condition != "photo_exif":
        return Upload(encode(pixels, "JPEG", quality=quality), condition, "JPEG", "RGB", width, height, box)
    # The phone stores the sensor's pixels and says in EXIF how to turn them upright.
    transpose, orientation = _EXIF_ROTATIONS[rng.integers(len(_EXIF_ROTATIONS))]
    stored = np.asarray(Image.fromarray(pixels).transpose(transpose))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    data = encode(stored, "JPEG", quality=quality, exif=exif)
    return Upload(data, condition, "JPEG", "RGB", width, height, box, exif_orientation=orientation)


def _scale_box(box: Box, factor: int, width: int, height: int) -> Box:
    """A box from the half-size scene in full-size pixels, kept inside the image."""
    x, y, w, h = (factor * v for v in box)
    x, y = min(x, width - 1), min(y, height - 1)
    return (x, y, max(1, min(w, width - x)), max(1, min(h, height - y)))


def _render_dark(ink: NDArray[np.uint8], condition: str, rng: np.random.Generator) -> Upload:
    """Chalk on a board, white pen on black paper, marker on a whiteboard: photographed (JPEG)."""
    full_size = PHOTO_SIZES[rng.integers(len(PHOTO_SIZES))]
    width, height = full_size[0] // 2, full_size[1] // 2  # rendered at half size, as photos are
    digit_h = round(height * rng.uniform(0.15, 0.45))
    if condition == "chalkboard":
        board = np.array([0.16, 0.26, 0.20], np.float32) if rng.random() < 0.6 else np.array([0.11, 0.11, 0.12], np.float32)
        surface = board * rng.uniform(0.8, 1.2) * (1 + 0.06 * smooth_noise(height, width, 30, rng))[..., None]
        # Chalk dust: smudges and badly erased writing, light and soft.
        dust = np.clip(smooth_noise(height, width, max(40, height // 8), rng) - rng.uniform(0.5, 1.2), 0, None)
        surface += (0.12 * dust)[..., None]
        mask = textured(stroke_mask(ink, digit_h, rng.uniform(0.06, 0.12), width * 9 // 10), rng, floor=0.35, grain=1.0)
        colour, opacity = np.array([0.88, 0.89, 0.86], np.float32), rng.uniform(0.75, 0.95)
    elif condition == "white_on_black":
        surface = np.full((height, width, 3), rng.uniform(0.04, 0.12), np.float32)
        surface *= (1 + 0.05 * smooth_noise(height, width, 6, rng))[..., None]
        mask = stroke_mask(ink, digit_h, rng.uniform(0.035, 0.09), width * 9 // 10)
        colour, opacity = np.full(3, rng.uniform(0.8, 0.95), np.float32), rng.uniform(0.85, 1.0)
    else:
        surface = np.full((height, width, 3), 1.0, np.float32) * np.array([0.90, 0.92, 0.94], np.float32) * rng.uniform(0.9, 1.02)
        ghosts = np.clip(smooth_noise(height, width, max(30, height // 10), rng) - 1.0, 0, None)
        surface -= (0.05 * ghosts)[..., None]  # the grey haze of old, erased writing
        mask = stroke_mask(ink, digit_h, rng.uniform(0.08, 0.15), width * 9 // 10)
        marker = np.array([[0.08, 0.08, 0.1], [0.1, 0.2, 0.7], [0.75, 0.1, 0.1], [0.1, 0.5, 0.2]], np.float32)
        colour, opacity = marker[rng.integers(len(marker))], rng.uniform(0.85, 1.0)
    mask = mask[: height - 2, : width - 2]
    x, y = place(mask, width, height, rng)
    box = _mask_box(mask, x, y)
    draw_ink(surface, mask, x, y, colour, opacity)
    light = illumination(height, width, rng, strength=rng.uniform(0.2, 0.6))
    scene = surface * light[..., None]
    if condition == "whiteboard":
        # Glare: a bright elliptical reflection of a window or a lamp on the glossy surface.
        glare = np.zeros((height // 8, width // 8), np.float32)
        centre = (int(rng.integers(0, width // 8)), int(rng.integers(0, height // 8)))
        axes = (int(rng.integers(width // 40 + 1, width // 12 + 2)), int(rng.integers(height // 40 + 1, height // 12 + 2)))
        cv2.ellipse(glare, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        glare = cv2.GaussianBlur(glare, (0, 0), max(axes) * 0.6)
        glare = cv2.resize(glare / max(1e-6, float(glare.max())), (width, height), interpolation=cv2.INTER_LINEAR)
        scene = scene + (rng.uniform(0.15, 0.45) * glare)[..., None]
    scene = cv2.GaussianBlur(scene, (0, 0), rng.uniform(0.3, 0.6))
    pixels = develop(scene, full_size, rng, levels=rng.uniform(1.5, 6.0))
    data = encode(pixels, "JPEG", quality=int(rng.integers(70, 93)))
    return Upload(data, condition, "JPEG", "RGB", *full_size, _scale_box(box, 2, *full_size))


_RENDERERS: dict[str, Callable[[NDArray[np.uint8], str, np.random.Generator], Upload]] = {
    **{name: _render_canvas for name in CANVAS_CONDITIONS},
    **{name: _render_scan for name in SCAN_CONDITIONS},
    **{name: _render_photo for name in PHOTO_CONDITIONS},
    **{name: _render_dark for name in DARK_CONDITIONS},
}


def render_upload(ink: NDArray[np.uint8], condition: str, rng: np.random.Generator) -> Upload:
    """Render one upload of `condition` from a white-on-black digit image.

    Args:
        ink: (H, W) uint8, white digit on black (28x28 MNIST or any size).
        condition: one of `CONDITIONS`.
        rng: the only source of randomness; the same state gives the same bytes.

    Returns:
        The encoded file and what is known about it (format, mode, size, where the digit is).
    """
    if condition not in _RENDERERS:
        raise ValueError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")
    if ink.ndim != 2:
        raise ValueError(f"the digit image must be 2-D greyscale, not shape {ink.shape}")
    return _RENDERERS[condition](np.ascontiguousarray(ink, dtype=np.uint8), condition, rng)
