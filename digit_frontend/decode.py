"""Stage 1 of the front end: from an upload's bytes to a small, oriented greyscale or alpha plane.

This is the security-critical part: the file's framing is checked for what it would cost to decode
(`digit_frontend.structure`: JPEG scans, PNG chunks, ...), Pillow reads the header only and the
pixel limit is enforced before any pixel is decoded; large JPEGs are decoded at a reduced DCT scale
(1/2, 1/4, 1/8: libjpeg's own scaling, far cheaper than decoding 12 MP and resizing), the EXIF
orientation is applied and the rest is shrunk to at most `WORKING_SIDE` px with an area filter.
No per-pixel work ever runs at full resolution.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from digit_contract.errors import InvalidImage, TooManyPixels, UnsupportedImage
from digit_frontend.structure import check_structure

# Requests run in worker processes and threads of their own; OpenCV's thread pool would only
# oversubscribe the cores (and costs ~50 us per call to wake on small images).
cv2.setNumThreads(1)

SUPPORTED_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
"""Pillow decoders the service accepts; others (EPS, which would run Ghostscript, ...) are refused."""

WORKING_SIDE = 384
"""Longest side, in pixels, of the image the pipeline works on. A digit that fills a tenth of a
photo's height is still ~30 px tall here, larger than the 20 px it becomes; more only costs time."""

CANVAS_WORKING_SIDE = 256
"""The same for a transparent canvas, whose alpha channel is the ink, with no paper to clean."""

Box = tuple[int, int, int, int]
"""x, y, width, height in pixels of the (EXIF-oriented) original image."""


@dataclass(frozen=True)
class DecodedImage:
    """The first frame, oriented and at most `WORKING_SIDE` px, as arrays, and what the file was."""

    grey: npt.NDArray[np.uint8] | None
    """Luma of an opaque image; None for a transparent one."""
    alpha: npt.NDArray[np.uint8] | None
    """Opacity of a transparent image (a canvas export): where the strokes are."""
    format: str
    width: int
    height: int
    mode: str
    scale: float = 1.0
    """Original pixels per working pixel (after orientation)."""
    more_frames: bool = False
    """The file has frames after the first (an animated GIF, a multi-page TIFF): only the first was read."""

    def to_original(self, box: Box) -> Box:
        x, y, w, h = box
        s = self.scale
        return (round(x * s), round(y * s), max(1, round(w * s)), max(1, round(h * s)))


def decode_image(data: bytes, *, max_pixels: int) -> DecodedImage:
    """Open, size-check, decode (reduced for big JPEGs), orient and shrink an image file's first frame."""
    return decode_opened(open_image(data, max_pixels=max_pixels))


def open_image(data: bytes, *, max_pixels: int) -> Image.Image:
    """Check an image file's framing and read its header (not its pixels): the file opened, size-checked.

    Raises:
        InvalidImage, UnsupportedImage, TooManyPixels: as `prepare_image`.
        ImageTooComplex: the framing would cost far more to decode than any real image (422).
    """
    if not data:
        raise InvalidImage("the image file is empty")
    check_structure(data)  # before Pillow walks the header: its cost is in chunks and scans, not pixels
    try:
        # `formats` restricts the decoders tried; the header alone is read here, not the pixels.
        image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(f"the image declares too many pixels; the limit is {max_pixels:,}") from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedImage(
            "the file is not an image in a supported format (PNG, JPEG, BMP, GIF, WebP or TIFF): "
            "export or save it as a JPEG or PNG and send that"
        ) from exc
    except Exception as exc:  # Pillow raises assorted types on malformed headers
        raise InvalidImage("the image header is corrupt") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise TooManyPixels(f"the image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}")
    if width == 0 or height == 0:
        raise InvalidImage("the image has no pixels")
    return image


def decode_cost(image: Image.Image) -> int:
    """Pixels that decoding an opened image's first frame will produce: its size, or for a large JPEG
    the reduced size libjpeg decodes it at (`decode_opened`). What a request's decode budget counts.

    Every decoder but JPEG's produces the full image however small the result is wanted: a 4096x4096
    lossless WebP of a digit is ~860 bytes and 0.18 s of CPU.
    """
    width, height = image.size
    longest = max(width, height)
    if longest <= WORKING_SIDE or image.format != "JPEG":
        return width * height
    wanted = (max(1, width * WORKING_SIDE // longest), max(1, height * WORKING_SIDE // longest))
    for denominator in (8, 4, 2):  # the smallest of libjpeg's scales that is still at least `wanted`
        w, h = -(-width // denominator), -(-height // denominator)
        if w >= wanted[0] and h >= wanted[1]:
            return w * h
    return width * height


def has_more_frames(image: Image.Image) -> bool:
    """Whether an opened file has frames after its first (animated GIF, WebP or PNG, multi-page TIFF),
    which are never decoded. Asked before the first frame is loaded: `is_animated` looks for a second
    frame only, where `n_frames` would walk every frame."""
    try:
        return bool(getattr(image, "is_animated", False))
    except Exception:  # a corrupt second frame: the first is still what is read
        return False


def decode_opened(image: Image.Image) -> DecodedImage:
    """Decode an image `open_image` opened: its first frame, oriented, at most `WORKING_SIDE` px."""
    width, height = image.size
    source_format, source_mode = image.format or "unknown", image.mode
    more_frames = has_more_frames(image)
    longest = max(width, height)
    if longest > WORKING_SIDE and image.format == "JPEG":
        # libjpeg decodes straight to 1/2, 1/4 or 1/8 scale, never below the size asked for, and to
        # greyscale when that is all we need: a 12 MP photo costs ~1/10 of a full decode.
        wanted = (max(1, width * WORKING_SIDE // longest), max(1, height * WORKING_SIDE // longest))
        image.draft("L" if image.mode in ("L", "RGB", "YCbCr") else image.mode, wanted)
    try:
        image.load()
    except Exception as exc:  # truncated data, bad compression stream, ...: all the client's bytes
        raise InvalidImage("the image data is truncated or corrupt") from exc
    # In place: without it Pillow returns a copy of the whole decoded image even when there is nothing
    # to turn (67 MB for a 4096x4096 RGBA WebP). A broken EXIF block should not cost the prediction:
    # the stored orientation is used then.
    with contextlib.suppress(Exception):
        ImageOps.exif_transpose(image, in_place=True)
    oriented = image
    factor = max(oriented.size) // (2 * WORKING_SIDE)
    if factor >= 2:
        oriented = _reduce(oriented, factor)
    try:
        grey, alpha = _to_arrays(oriented)
    except (ValueError, OSError) as exc:  # a decoded image in a layout Pillow cannot convert
        raise InvalidImage("the image's pixel format cannot be read") from exc
    # A canvas's strokes are clean: they need no more pixels than it takes to frame them well.
    if grey is not None:
        grey = plane = shrink(grey, WORKING_SIDE)
    else:
        assert alpha is not None
        alpha = plane = shrink(alpha, CANVAS_WORKING_SIDE)
    # Orientation swaps the sides at most, so the longest side maps working pixels to the original's.
    scale = max(width, height) / max(plane.shape)
    return DecodedImage(grey, alpha, source_format, width, height, source_mode, scale=scale, more_frames=more_frames)


def _reduce(image: Image.Image, factor: int) -> Image.Image:
    """Shrink by an integer factor with a box filter in Pillow's C code, before any conversion.

    Pillow's `reduce` handles the common 8-bit and 32-bit modes only; the rare others (16-bit
    integer, say) are converted to 8-bit first, with the transparency kept where there is one.
    """
    try:
        return image.reduce(factor)
    except ValueError:
        pass
    try:
        if image.mode.startswith("I;16"):
            return image.convert("I").reduce(factor)  # 32-bit: the 16-bit values survive
        transparent = "A" in image.mode or "transparency" in image.info
        return image.convert("RGBA" if transparent else "L").reduce(factor)
    except (ValueError, OSError) as exc:
        raise InvalidImage("the image's pixel format cannot be read") from exc


def _to_arrays(image: Image.Image) -> tuple[npt.NDArray[np.uint8] | None, npt.NDArray[np.uint8] | None]:
    """(luma, None) for an opaque image, (None, alpha) for a transparent one; 8-bit either way."""
    mode = image.mode
    if mode == "La":
        # Greyscale with premultiplied alpha, which Pillow cannot convert: the alpha channel is
        # the opacity either way, and the grey is only needed when the image is opaque.
        planes = np.asarray(image.getchannel(0)), np.asarray(image.getchannel(1))
        if int(planes[1].min()) < 250:
            return None, np.ascontiguousarray(planes[1])
        return np.ascontiguousarray(planes[0]), None
    if mode in ("RGBA", "LA", "PA", "RGBa") or ("transparency" in image.info and mode in ("P", "L", "RGB")):
        rgba = np.asarray(image if mode == "RGBA" else image.convert("RGBA"))  # convert() would copy
        alpha = rgba[..., 3]
        if int(alpha.min()) < 250:
            return None, np.ascontiguousarray(alpha)
        return cv2.cvtColor(np.ascontiguousarray(rgba[..., :3]), cv2.COLOR_RGB2GRAY), None
    if mode == "L":
        return np.asarray(image), None
    if mode in ("I", "F") or mode.startswith("I;16"):
        values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = float(values.max()) if values.size else 0.0
        if mode == "F" and top <= 1.0:
            values = values * 255.0  # float images in [0, 1]
        elif top > 255.0:
            values = values / 257.0  # 16-bit samples: 65535 -> 255
        return np.clip(np.rint(values), 0, 255).astype(np.uint8), None
    # 1, RGB, P, CMYK, YCbCr, LAB, HSV: Pillow's ITU-R 601-2 luma.
    return np.asarray(image.convert("L")), None


def shrink(plane: npt.NDArray[np.uint8], side: int) -> npt.NDArray[np.uint8]:
    """`plane` with its longest side at most `side` px (area filter), or itself when it is that small."""
    longest = max(plane.shape)
    if longest <= side:
        return plane
    size = (max(1, plane.shape[1] * side // longest), max(1, plane.shape[0] * side // longest))
    shrunk: npt.NDArray[np.uint8] = cv2.resize(plane, size, interpolation=cv2.INTER_AREA)
    return shrunk
