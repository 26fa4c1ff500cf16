"""From an uploaded image file to model input, the way MNIST itself was made.

Users send photos and canvas drawings (dark ink on light paper, big, off-centre, any mode), not
MNIST tensors. `prepare_image` turns one into a 28x28 white-on-black digit:

1. decode with Pillow from the bytes (the client's content type is not trusted), refusing images
   over the pixel limit from their header, before any pixel is decoded;
2. apply the EXIF orientation, take the first frame, reduce very large images;
3. greyscale; transparency is composited onto a background that contrasts with the ink, so black
   ink and white ink on a transparent canvas both work;
4. invert when the border (the background) is light;
5. subtract the background level, stretch the contrast, clear faint noise, crop to the ink;
6. thicken strokes that are much thinner than MNIST's pen, relative to the digit's size;
7. scale the longest side to 20 px keeping the aspect ratio (antialiased), and paste into 28x28 so
   the centre of mass sits at pixel (14, 14), as in MNIST;
8. `service.digit_input.normalize_pixels`, the normalisation training used.

An image that already is an MNIST digit (28x28, dark background) skips steps 4-7 and its pixels
go through unchanged, so the MNIST test set sent as PNG files gets exactly its raw predictions.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from service.digit_input import IMAGE_SIDE, normalize_pixels
from service.errors import InvalidImage, NoInk, TooManyPixels, UnsupportedImage

SUPPORTED_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
"""Pillow decoders the service accepts; others (EPS, which would run Ghostscript, ...) are refused."""

DIGIT_BOX = 20
"""MNIST fits each digit's longest side to 20 px before centring it in 28x28."""

CENTRE = 14.0
"""Where MNIST puts the centre of mass (row, column): the mean over MNIST is (13.99, 14.01)."""

WORKING_SIDE = 512
"""Larger images are box-reduced to about this size first: 20 px is the goal, memory is not free."""

MIN_CONTRAST = 40.0
"""Ink must differ from the background by this many grey levels (of 255), or there is no digit."""

NOISE_FLOOR = 0.2
"""After stretching, grey levels below this fraction of the darkest ink are paper, not ink."""

MNIST_STROKE = 2.6
"""Typical MNIST stroke width in pixels (median over the test sample: 2.65); much thinner strokes,
measured at the 20 px scale, get thickened."""

Method = Literal["passthrough", "mnist"]


@dataclass(frozen=True)
class PreparedImage:
    """One upload turned into a white-on-black 28x28 digit, and what was done to get there."""

    pixels: npt.NDArray[np.uint8]
    """(28, 28) uint8, white digit on black: what `normalize_pixels` receives."""
    format: str
    width: int
    height: int
    mode: str
    method: Method
    """`passthrough` for an image that already is an MNIST digit, else `mnist` (the full pipeline)."""
    inverted: bool


def prepare_image(data: bytes, *, max_pixels: int) -> PreparedImage:
    """Decode an image file and make it an MNIST-style digit.

    Raises:
        UnsupportedImage: not an image in a supported format (415).
        InvalidImage: a supported format, but empty, truncated or corrupt (400).
        TooManyPixels: the header declares more than `max_pixels` pixels (413).
        NoInk: nothing in the image could be a digit (422).
    """
    decoded = decode_image(data, max_pixels=max_pixels)
    grey = to_greyscale(decoded.image)
    source = (decoded.format, decoded.width, decoded.height, decoded.mode)
    if is_mnist_like(grey):
        if grey.max() < MIN_CONTRAST:
            raise NoInk("no ink found: the image is blank")
        pixels = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
        return PreparedImage(pixels, *source, method="passthrough", inverted=False)
    pixels, inverted = make_mnist_digit(grey)
    return PreparedImage(pixels, *source, method="mnist", inverted=inverted)


def to_model_input(images: Sequence[PreparedImage]) -> npt.NDArray[np.float32]:
    """Stack prepared digits into one (N, 28, 28, 1) float32 batch via the training normalisation."""
    return normalize_pixels(np.stack([image.pixels for image in images]))


# -- decoding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodedImage:
    """A decoded first frame in a canonical mode (L, RGB, RGBA, I or F), and what the file was."""

    image: Image.Image
    format: str
    width: int
    height: int
    mode: str


def decode_image(data: bytes, *, max_pixels: int) -> DecodedImage:
    """Open, size-check, decode, orient and (if very large) reduce an image file's first frame."""
    if not data:
        raise InvalidImage("the image file is empty")
    try:
        # `formats` restricts the decoders tried; the header alone is read here, not the pixels.
        image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(f"the image declares too many pixels; the limit is {max_pixels:,}") from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedImage(
            "the file is not an image in a supported format (PNG, JPEG, BMP, GIF, WebP or TIFF)"
        ) from exc
    except Exception as exc:  # Pillow raises assorted types on malformed headers
        raise InvalidImage("the image header is corrupt") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise TooManyPixels(f"the image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}")
    if width == 0 or height == 0:
        raise InvalidImage("the image has no pixels")
    source_format, source_mode = image.format or "unknown", image.mode
    longest = max(width, height)
    if longest > 2 * WORKING_SIDE:
        # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: much faster and smaller for photos.
        image.draft(image.mode, (max(1, width * WORKING_SIDE // longest), max(1, height * WORKING_SIDE // longest)))
    try:
        image.load()
    except Exception as exc:  # truncated data, bad compression stream, ...: all the client's bytes
        raise InvalidImage("the image data is truncated or corrupt") from exc
    try:
        oriented = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not cost the prediction: use the stored orientation
        oriented = image
    oriented = _canonical_mode(oriented)
    factor = max(oriented.size) // WORKING_SIDE
    if factor >= 2:
        oriented = oriented.reduce(factor)  # box filter: antialiased and fast
    return DecodedImage(oriented, source_format, width, height, source_mode)


def _canonical_mode(image: Image.Image) -> Image.Image:
    """Convert the many Pillow modes to one of L, RGB, RGBA, I or F (all of which reduce/convert)."""
    mode = image.mode
    has_transparency = "transparency" in image.info
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (has_transparency and mode in ("P", "L", "RGB")):
        return image.convert("RGBA")
    if mode in ("L", "RGB", "I", "F"):
        return image
    if mode.startswith("I;16"):
        return image.convert("I")
    if mode in ("1", "P"):
        return image.convert("L" if mode == "1" else "RGB")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def to_greyscale(image: Image.Image) -> npt.NDArray[np.float64]:
    """Grey levels 0-255 (float) of a canonical-mode image, transparency composited away."""
    if image.mode == "L":
        return np.asarray(image, dtype=np.float64)
    if image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = float(values.max()) if values.size else 0.0
        if image.mode == "F" and top <= 1.0:
            return values * 255.0  # float images in [0, 1]
        if top > 255.0:
            return np.clip(values / 257.0, 0.0, 255.0)  # 16-bit samples: 65535 -> 255
        return np.clip(values, 0.0, 255.0)
    rgb = np.asarray(image, dtype=np.float64)
    # ITU-R 601-2 luma, the weights of Pillow's own convert("L").
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    if image.mode != "RGBA":
        return luma
    alpha = rgb[..., 3] / 255.0
    if alpha.min() >= 0.98:
        return luma
    coverage = float(alpha.sum())
    if coverage < 1.0:
        raise NoInk("no ink found: the image is fully transparent")
    # Composite onto the opposite of the ink: dark strokes onto white, light strokes onto black.
    ink_luma = float((luma * alpha).sum() / coverage)
    background = 255.0 if ink_luma < 128.0 else 0.0
    return luma * alpha + background * (1.0 - alpha)


# -- the MNIST recipe ------------------------------------------------------------------------


def border_pixels(grey: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The outer ring of the image (about 2% of its side, at least one pixel): the background."""
    height, width = grey.shape
    ring = max(1, round(0.02 * min(height, width)))
    mask = np.ones_like(grey, dtype=bool)
    mask[ring : height - ring, ring : width - ring] = False
    ring_values: npt.NDArray[np.float64] = grey[mask]
    return ring_values


def is_mnist_like(grey: npt.NDArray[np.float64]) -> bool:
    """A 28x28 image on a dark background is taken to be an MNIST digit already."""
    return grey.shape == (IMAGE_SIDE, IMAGE_SIDE) and float(np.median(border_pixels(grey))) < 128.0


def make_mnist_digit(grey: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.uint8], bool]:
    """Steps 4-7 of the recipe: (28, 28) uint8 white-on-black digit, and whether it was inverted."""
    background = float(np.median(border_pixels(grey)))
    inverted = background > 127.5
    if inverted:
        grey, background = 255.0 - grey, 255.0 - background
    ink = np.clip(grey - background, 0.0, None)
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise NoInk("no ink found: the image is blank or has too little contrast to hold a digit")
    # Stretch so the darkest ink is 1, then clear paper texture and noise below the floor.
    ink = np.clip((ink / peak - NOISE_FLOOR) / (1.0 - NOISE_FLOOR), 0.0, 1.0)
    rows, cols = np.flatnonzero(ink.max(axis=1) > 0), np.flatnonzero(ink.max(axis=0) > 0)
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    ink = thicken_strokes(ink)
    digit = scale_to_box(ink, DIGIT_BOX)
    return centre_by_mass(digit), inverted


def stroke_width(ink: npt.NDArray[np.float64]) -> float:
    """Mean stroke width in pixels: twice the inked area over its outline length."""
    solid = ink > 0.5
    area = int(solid.sum())
    if area == 0:
        return 0.0
    padded = np.pad(solid, 1)
    interior = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    outline = area - int(interior.sum())
    return 2.0 * area / max(outline, 1)


def thicken_strokes(ink: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Dilate strokes much thinner than MNIST's pen (thin canvas lines would vanish at 20 px)."""
    scale = DIGIT_BOX / max(ink.shape)
    target = MNIST_STROKE / scale
    width = stroke_width(ink)
    grow = round((target - width) / 2.0) if width < 0.6 * target else 0
    if grow <= 0:
        return ink
    # A square max-filter of radius `grow`, separable: a few whole-array maxima, no Python loop per pixel.
    out: npt.NDArray[np.float64] = np.pad(ink, grow)
    for axis in (0, 1):
        source = out.copy()
        length = out.shape[axis]
        for shift in range(1, grow + 1):
            lead = [slice(None), slice(None)]
            trail = [slice(None), slice(None)]
            lead[axis], trail[axis] = slice(shift, length), slice(0, length - shift)
            np.maximum(out[tuple(lead)], source[tuple(trail)], out=out[tuple(lead)])
            np.maximum(out[tuple(trail)], source[tuple(lead)], out=out[tuple(trail)])
    return out


def scale_to_box(ink: npt.NDArray[np.float64], box: int) -> npt.NDArray[np.float64]:
    """Resize so the longest side is `box` pixels, keeping the aspect ratio (Lanczos, antialiased)."""
    height, width = ink.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float64), 0.0, None)


def centre_by_mass(digit: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
    """Paste into 28x28 with the centre of mass at (14, 14), and stretch the ink to 0-255."""
    height, width = digit.shape
    total = float(digit.sum())
    rows, cols = np.arange(height), np.arange(width)
    centre_row = float((digit.sum(axis=1) * rows).sum() / total) if total else (height - 1) / 2
    centre_col = float((digit.sum(axis=0) * cols).sum() / total) if total else (width - 1) / 2
    # Whole-pixel shifts, as MNIST (its centres of mass spread about +-0.3 px around 14), kept in frame.
    top = min(max(round(CENTRE - centre_row), 0), IMAGE_SIDE - height)
    left = min(max(round(CENTRE - centre_col), 0), IMAGE_SIDE - width)
    canvas = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float64)
    canvas[top : top + height, left : left + width] = digit
    peak = float(canvas.max())
    if peak <= 0:
        raise NoInk("no ink found: the image is blank or has too little contrast to hold a digit")
    return np.clip(np.rint(canvas / peak * 255.0), 0, 255).astype(np.uint8)
