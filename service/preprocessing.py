"""From an uploaded image file to model input: read the uploads people really send the MNIST way.

Users send phone photos of paper, scans and canvas drawings, not MNIST tensors: a page on a desk,
shadows, ruled paper, pencil, chalk on a board. `prepare_image` finds the digit in such an image
and frames it exactly as MNIST framed its digits. The stages, each a function below:

1. **decode** (`decode_image`): the file's framing is checked for what it would cost to decode
   (`service.image_structure`: JPEG scans, PNG chunks, ...), Pillow reads the header only,
   refuses images over the pixel limit, then decodes large JPEGs at a reduced DCT scale (1/2, 1/4,
   1/8: libjpeg's own scaling, far cheaper than decoding 12 MP and resizing), applies the EXIF
   orientation and shrinks the rest to at most `WORKING_SIDE` px with an area filter. No per-pixel
   work ever runs at full resolution.
2. **ink map** (`ink_map`): a transparent canvas's alpha channel *is* the ink. Otherwise greyscale,
   then the polarity (dark ink on light paper or chalk on a board) from which of the two
   morphological hats (black-hat: thin dark structures; top-hat: thin light ones) is stronger,
   then the illumination: the paper's brightness is estimated at a coarse scale by a closing
   (which erases strokes but keeps shadow edges and the page border) and each pixel is divided by
   it, so shadows, gradients and vignetting vanish and a desk around the page reads as no ink.
3. **binarise** (`binarise`): a threshold relative to the strongest ink found and to the noise
   of the paper, so pencil and chalk count and paper grain does not.
4. **lines** (`remove_lines`): ruling, grid lines and page edges are long, thin and straight;
   probabilistic Hough finds them and they are erased, and digit strokes they crossed are rejoined.
5. **the digit** (`find_digit`): connected components; specks, filled blobs and regions touching
   the border are dropped or discounted, pieces of one digit are merged by proximity, and the most
   central and largest group wins; other digit-sized groups are counted and reported.
6. **framing** (`frame_digit`): the MNIST recipe on the digit's binary mask (MNIST digits were
   binary NIST scans too): stroke width brought near MNIST's pen, longest side to 20 px with an
   anti-aliasing area filter, centre of mass at pixel (14, 14) of 28x28.

An image that already is an MNIST digit (28x28, dark background) skips stages 2-6 and its pixels go
through unchanged, so the MNIST test set sent as PNG files gets exactly its raw predictions.

OpenCV does the per-pixel work: its morphology, resizing, Hough and component labelling are
vectorised C++ and run in well under a millisecond at the working size, where the same steps in
NumPy cost several (and scikit-image, built on NumPy and SciPy, sits in between). Pillow stays for
decoding, which it does as fast as OpenCV, with the header-first checks and EXIF handling we need.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from digit_contract.inputs import IMAGE_SIDE, normalize_pixels
from service.errors import InvalidImage, NoInk, TooManyPixels, UnsupportedImage
from service.image_structure import check_structure

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

COARSE_SIDE = 96
"""Longest side of the image the paper's illumination is estimated on."""

POLARITY_SIDE = 192
"""Longest side of the image the polarity (dark ink or light ink) is decided on."""

POLARITY_SHARE = 0.02
"""The strongest 2% of thin-structure responses vote on the polarity: about a digit's share of a photo."""

BACKGROUND_KERNEL = 0.12
"""Closing kernel for the illumination, as a fraction of the coarse side: wider than any stroke
(a thick marker on a canvas is up to ~12% of the side), narrower than shadows and lighting."""

BLANK_LEVEL = 40
"""An MNIST-style image (or pixel input, x 255) whose brightest pixel is below this holds no digit."""

MIN_CONTRAST = 0.16
"""Ink must darken the paper by this fraction of its brightness (light ink: brighten the board by
this fraction of the headroom), or there is no digit. Pencil on paper is ~0.3-0.5, ballpoint ~0.7."""

INK_RELATIVE = 0.4
"""Pixels darker than this fraction of the strongest ink are ink: faint ruling and paper grain stay out."""

DIGIT_BOX = 20
"""MNIST fits each digit's longest side to 20 px before centring it in 28x28."""

CENTRE = 14.0
"""Where MNIST puts the centre of mass (row, column): the mean over MNIST is (13.99, 14.01)."""

MNIST_STROKE = 2.6
"""Typical MNIST stroke width in pixels at the 20 px scale (median over the test sample: 2.65)."""

Method = Literal["passthrough", "mnist"]
Box = tuple[int, int, int, int]
"""x, y, width, height in pixels of the (EXIF-oriented) original image."""


@dataclass(frozen=True)
class PreparedImage:
    """One upload's digit as the front end found it (stages 1-5), and what was done to get there.

    Each input encoding frames `strokes` its own way: `pixels` is MNIST's 28x28 framing (stage 6),
    `uci_blocks` the UCI 8x8 block counts; each is computed once, when first asked for.
    """

    strokes: npt.NDArray[np.uint8]
    """For `passthrough`, the 28x28 grey image itself (white on black); else the digit's stroke
    mask (0/1) inside its box, at working size."""
    format: str
    width: int
    height: int
    mode: str
    method: Method
    """`passthrough` for an image that already is an MNIST digit, else `mnist` (the full pipeline)."""
    inverted: bool
    """Whether the ink was darker than its background (dark ink on paper), so the image was inverted."""
    box: Box = (0, 0, 0, 0)
    """Where the digit was found, in the original image (after EXIF orientation)."""
    other_digits: int = 0
    """How many other digit-sized groups of ink the image held (the answer is for the central one)."""
    lines_removed: int = 0
    """Long straight lines (ruling, grid, page edges) erased before the digit was looked for."""

    @cached_property
    def pixels(self) -> npt.NDArray[np.uint8]:
        """(28, 28) uint8, white digit on black, framed as MNIST did: what `normalize_pixels` receives.

        Raises:
            NoInk: the digit is too small to frame.
        """
        return self.strokes if self.method == "passthrough" else frame_digit(self.strokes)

    @cached_property
    def uci_blocks(self) -> npt.NDArray[np.uint8]:
        """(8, 8) uint8 counts 0-16 of ink pixels in the 4x4 blocks of the 32x32 bitmap, as the UCI set."""
        return uci_blocks(self.strokes)

    def png_base64(self) -> str:
        """The 28x28 image the model saw, as a base64 PNG (for `?explain=true`)."""
        return png_base64(self.pixels)


def png_base64(pixels: npt.NDArray[np.uint8]) -> str:
    """A uint8 greyscale image as a base64 PNG."""
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:  # pragma: no cover - encoding a valid uint8 array cannot fail
        raise RuntimeError("PNG encoding failed")
    return base64.b64encode(encoded.tobytes()).decode("ascii")


def prepare_image(data: bytes, *, max_pixels: int) -> PreparedImage:
    """Decode an image file and make it an MNIST-style digit.

    Raises:
        UnsupportedImage: not an image in a supported format (415).
        InvalidImage: a supported format, but empty, truncated or corrupt (400).
        TooManyPixels: the header declares more than `max_pixels` pixels (413).
        NoInk: nothing in the image could be a digit (422).
    """
    prepared = find_digit_in(decode_image(data, max_pixels=max_pixels))
    prepared.pixels  # noqa: B018 - framed now, so that its NoInk is this function's
    return prepared


def find_digit_in(decoded: DecodedImage) -> PreparedImage:
    """Stages 2-5 on a decoded image: the digit's strokes, not yet framed for any model.

    Raises:
        NoInk: nothing in the image could be a digit (422).
    """
    source = (decoded.format, decoded.width, decoded.height, decoded.mode)
    if decoded.grey is not None and is_mnist_like(decoded.grey):
        if int(decoded.grey.max()) < BLANK_LEVEL:
            raise NoInk("no ink found: the image is blank")
        whole = (0, 0, IMAGE_SIDE, IMAGE_SIDE)
        return PreparedImage(decoded.grey.copy(), *source, method="passthrough", inverted=False, box=whole)
    ink, inverted, page = ink_map(decoded)
    strokes = binarise(ink)
    # A canvas export (ink from its alpha channel) has no ruling or page edges to remove.
    cleaned, lines = remove_lines(strokes) if decoded.grey is not None else (strokes, 0)
    try:
        found = find_digit(cleaned, page, ink)
    except NoInk:
        if not lines:
            raise
        found, lines = find_digit(strokes, page, ink), 0  # the "lines" were the digit
    return PreparedImage(
        found.mask,
        *source,
        method="mnist",
        inverted=inverted,
        box=decoded.to_original(found.box),
        other_digits=found.others,
        lines_removed=lines,
    )


def to_model_input(images: Sequence[PreparedImage]) -> npt.NDArray[np.float32]:
    """Stack prepared digits into one (N, 28, 28, 1) float32 batch via the training normalisation."""
    return normalize_pixels(np.stack([image.pixels for image in images]))


# -- 1. decoding -------------------------------------------------------------------------------


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
            "the file is not an image in a supported format (PNG, JPEG, BMP, GIF, WebP or TIFF)"
        ) from exc
    except Exception as exc:  # Pillow raises assorted types on malformed headers
        raise InvalidImage("the image header is corrupt") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise TooManyPixels(f"the image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}")
    if width == 0 or height == 0:
        raise InvalidImage("the image has no pixels")
    return image


def decode_opened(image: Image.Image) -> DecodedImage:
    """Decode an image `open_image` opened: its first frame, oriented, at most `WORKING_SIDE` px."""
    width, height = image.size
    source_format, source_mode = image.format or "unknown", image.mode
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
    try:
        oriented = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not cost the prediction: use the stored orientation
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
        grey = plane = _shrink(grey, WORKING_SIDE)
    else:
        assert alpha is not None
        alpha = plane = _shrink(alpha, CANVAS_WORKING_SIDE)
    # Orientation swaps the sides at most, so the longest side maps working pixels to the original's.
    scale = max(width, height) / max(plane.shape)
    return DecodedImage(grey, alpha, source_format, width, height, source_mode, scale=scale)


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


# -- 2. the ink map ----------------------------------------------------------------------------


def is_mnist_like(grey: npt.NDArray[np.uint8]) -> bool:
    """A 28x28 image on a dark background is taken to be an MNIST digit already."""
    return grey.shape == (IMAGE_SIDE, IMAGE_SIDE) and float(np.median(_outer_ring(grey, 1))) < 128.0


def _outer_ring(grey: npt.NDArray[np.uint8], width: int) -> npt.NDArray[np.uint8]:
    """The pixels within `width` of the image's edge (corners counted twice: they barely move a median)."""
    return np.concatenate(
        [grey[:width].ravel(), grey[-width:].ravel(), grey[:, :width].ravel(), grey[:, -width:].ravel()]
    )


def ink_map(decoded: DecodedImage) -> tuple[npt.NDArray[np.float32], bool, npt.NDArray[np.uint8] | None]:
    """Per-pixel ink in [0, 1] (1: full ink) at working size, whether the ink was dark on light, and
    the page (1 on it) when the photo shows one on a darker surface."""
    if decoded.grey is None:
        assert decoded.alpha is not None
        alpha = decoded.alpha.astype(np.float32) / 255.0
        if float(alpha.max()) < MIN_CONTRAST:
            raise NoInk("no ink found: the image is fully transparent")
        return alpha, False, None  # whatever colour the strokes are, a canvas's ink is where it is opaque
    grey = decoded.grey
    level = _uniform_surround(grey)
    if level is not None:
        # A scan or a canvas export: the flat surround is the paper, one level, and says the
        # polarity, however bold the digit (a closing would take a blot of ink wider than its
        # kernel for paper, and a bold digit can fill the middle of the frame).
        dark_ink = level >= 128
        if not dark_ink:
            grey, level = 255 - grey, 255 - level
        ink = np.clip(1.0 - grey.astype(np.float32) / max(level, 1.0), 0.0, 1.0)
        return ink, dark_ink, None
    coarse = _shrink(grey, COARSE_SIDE)
    dark_ink = _dark_ink_wins(grey)
    if not dark_ink:
        grey, coarse = 255 - grey, 255 - coarse
    # The paper as it would look without ink: strokes closed over at the coarse scale, then a median
    # to drop what the closing left of specks, back at working size.
    kernel = _kernel(BACKGROUND_KERNEL * max(coarse.shape))
    paper = cv2.medianBlur(cv2.morphologyEx(coarse, cv2.MORPH_CLOSE, kernel), 3)
    paper = cv2.resize(paper, (grey.shape[1], grey.shape[0]), interpolation=cv2.INTER_LINEAR)
    # Division, not subtraction: ink in a shadow darkens the paper by the same ratio as in the light.
    ratio = grey.astype(np.float32) / np.maximum(paper.astype(np.float32), 1.0)
    ink = np.clip(1.0 - ratio, 0.0, 1.0)
    # Where the "paper" itself is near black (a desk, a board's frame), ratios are noise.
    ink[paper < 24] = 0.0
    page = page_mask(coarse, grey.shape)
    if page is not None:
        ink[page == 0] = 0.0
    return ink, dark_ink, page


UNIFORM_SPREAD = 16
"""Grey levels between the 5th and 95th percentile of the image's outer ring under which the
surround is one flat paper (a scan, a canvas export), not a photo's light, desk or shadow."""


def _uniform_surround(grey: npt.NDArray[np.uint8]) -> float | None:
    """The surround's grey level when the image's outer ring is flat and most of the image is at
    that level, else None."""
    height, width = grey.shape
    ring = max(2, round(0.03 * min(height, width)))
    if height <= 2 * ring or width <= 2 * ring:
        return None
    low, median, high = np.percentile(_outer_ring(grey, ring), (5, 50, 95))
    if high - low > UNIFORM_SPREAD:
        return None
    # And it must be what most of the image is: a flat desk around a sheet of paper is not the paper.
    if abs(float(np.median(grey[::4, ::4])) - median) > UNIFORM_SPREAD:
        return None
    return float(median)


PAGE_MIN_SHARE, PAGE_MAX_SHARE = 0.12, 0.97
"""A bright region covering this share of the image, with darker surroundings, is the page."""

PAGE_MIN_STEP = 40
"""Grey levels between the page and what surrounds it (a white sheet on a wooden desk: ~80-150)."""

PAGE_RIM = 0.03
"""Ink within this share of the side of the page's outline touches the page's edge."""

RIM_SHARE = 0.3
"""A component with more than this share of its pixels in the page's rim lies along the page's edge."""

PAGE_MIN_EDGE = 30
"""Median grey-level step across the page's outline, over 3 coarse pixels: paper has an edge, glare does not."""


def page_mask(coarse: npt.NDArray[np.uint8], shape: tuple[int, ...]) -> npt.NDArray[np.uint8] | None:
    """1 on the page and 0 around it, at working size, when the photo shows a page on a darker surface.

    The page is the largest bright region of the coarse image (Otsu's threshold), filled as its
    convex hull (so a shadow or the digit itself cannot cut holes in it) and shrunk a little, so
    the page's edge, the desk's texture and whatever lies on the desk are not ink. None when the
    whole image is the page (a scan, a canvas, a close-up).
    """
    _, bright = cv2.threshold(coarse, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if not bright.any() or bright.all():
        return None
    if float(coarse[bright > 0].mean()) - float(coarse[bright == 0].mean()) < PAGE_MIN_STEP:
        return None
    # An opening first, so bright things on the desk that touch the page do not join it.
    bright = cv2.morphologyEx(bright, cv2.MORPH_OPEN, _kernel(0.06 * max(coarse.shape)))
    if not bright.any():
        return None
    _, labels, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=4)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    contours, _ = cv2.findContours((labels == largest).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(np.concatenate(contours))
    filled = np.zeros_like(bright)
    cv2.fillConvexPoly(filled, hull, 1)
    share = float(filled.mean())
    if not PAGE_MIN_SHARE <= share <= PAGE_MAX_SHARE:
        return None
    # A sheet of paper ends in a sharp edge; glare on a whiteboard or a vignetted scan fades out.
    # Measure the step across the region's outline (inside the frame: the image edge is no edge).
    rim = (cv2.dilate(filled, _kernel(3)) - cv2.erode(filled, _kernel(3))).astype(bool)
    rim[[0, -1], :] = False
    rim[:, [0, -1]] = False
    step = cv2.dilate(coarse, _kernel(3)) - cv2.erode(coarse, _kernel(3))
    if not rim.any() or float(np.median(step[rim])) < PAGE_MIN_EDGE:
        return None
    # Shrink by ~1.5% of the side: the page edge's own shading and the closing's halo stay outside.
    filled = cv2.erode(filled, _kernel(max(3.0, 0.03 * max(coarse.shape))))
    mask: npt.NDArray[np.uint8] = cv2.resize(filled, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return mask


def _dark_ink_wins(grey: npt.NDArray[np.uint8]) -> bool:
    """Whether the strongest departures from the background are darker or lighter than it.

    The background is the median of the middle of the frame, measured at `POLARITY_SIDE`, where a
    pencil line is still a couple of pixels wide: people put the digit in the middle and writing is
    a minority of any region, so the median there is the paper or the board, however thick the pen;
    the desk around a page and its edge (which depart both ways) are mostly outside it. The
    strongest `POLARITY_SHARE` of departures vote. Morphological hats do not work here: the paper
    between two close strokes is as much a "thin light structure" as the strokes are thin dark ones.
    """
    mid = _shrink(grey, POLARITY_SIDE).astype(np.int16)
    h, w = mid.shape
    middle = mid[h // 5 : h - h // 5, w // 5 : w - w // 5]
    darker, lighter = _strongest_departures(middle - np.int16(np.median(middle)))
    if max(darker, lighter) < 20:  # nothing written in the middle: the whole frame decides
        darker, lighter = _strongest_departures(mid - np.int16(np.median(mid)))
    return darker >= lighter


def _strongest_departures(departure: npt.NDArray[np.int16]) -> tuple[float, float]:
    """Mean of the strongest `POLARITY_SHARE` darker and lighter departures, in grey levels."""
    flat = departure.ravel()
    if flat.size < 2:  # a one-pixel image: nothing to partition
        value = float(flat[0]) if flat.size else 0.0
        return max(0.0, -value), max(0.0, value)
    k = min(flat.size - 1, max(1, round(POLARITY_SHARE * flat.size)))
    darker = -float(np.partition(flat, k)[:k].astype(np.int64).sum()) / k
    lighter = float(np.partition(flat, flat.size - k)[-k:].astype(np.int64).sum()) / k
    return darker, lighter


def _shrink(plane: npt.NDArray[np.uint8], side: int) -> npt.NDArray[np.uint8]:
    longest = max(plane.shape)
    if longest <= side:
        return plane
    size = (max(1, plane.shape[1] * side // longest), max(1, plane.shape[0] * side // longest))
    shrunk: npt.NDArray[np.uint8] = cv2.resize(plane, size, interpolation=cv2.INTER_AREA)
    return shrunk


def _kernel(diameter: float) -> npt.NDArray[np.uint8]:
    size = max(3, round(diameter) | 1)
    kernel: npt.NDArray[np.uint8] = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return kernel


# -- 3. binarisation ---------------------------------------------------------------------------


def binarise(ink: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """Stroke mask (0/1) of an ink map: ink stronger than the paper's noise and than a share of the peak."""
    # The peak after a 3x3 blur, so one hot pixel of JPEG noise cannot set the scale.
    peak = float(cv2.blur(ink, (3, 3)).max())
    if peak < MIN_CONTRAST:
        raise NoInk("no ink found: the image is blank or has too little contrast to hold a digit")
    # Paper grain: the spread of the ink map where it is not ink (most pixels), robustly.
    sample = ink[::4, ::4]
    median = float(np.median(sample))
    spread = float(np.median(np.abs(sample - median))) * 1.4826
    threshold = max(MIN_CONTRAST * 0.75, INK_RELATIVE * peak, median + 6.0 * spread)
    if threshold >= peak:
        raise NoInk("no ink found: nothing stands out from the paper's texture")
    return (ink > threshold).astype(np.uint8)


# -- 4. ruling, grids, page edges --------------------------------------------------------------

LINE_MIN_LENGTH = 0.45
"""A straight line at least this fraction of the image's side it runs along is ruling or an edge."""

LINE_MAX_TILT = 12.0
"""Degrees from horizontal or vertical that a ruled line on a slightly rotated photo may have."""

LINE_MAX_THICKNESS = 0.025
"""Thicker than this share of the image's short side, a straight stroke is writing, not ruling."""

LINE_CAP = 40
"""At most this many lines are erased (a squared page at working size has ~30)."""


def remove_lines(strokes: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], int]:
    """Erase long thin straight lines near horizontal or vertical; rejoin strokes they crossed.

    What is erased: segments at least `LINE_MIN_LENGTH` of the side they run along, thin (a ruled
    line is a fraction of a millimetre), and either one of several parallel ones (ruling, a grid),
    very long, or near the image's edge (a page edge). A digit's own stroke is rarely that long and
    is never one of a family, so a big "1" filling a canvas survives.
    """
    height, width = strokes.shape
    shortest = min(height, width)
    thin = max(4, round(LINE_MAX_THICKNESS * shortest))
    # Only thin ink can be ruling: an opening wider than a ruled line keeps the thick strokes,
    # and what it removed is all Hough has to look at (fewer pixels, and no "lines" inside a stroke).
    wide = cv2.morphologyEx(strokes, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (thin + 1, thin + 1)))
    hairlines = strokes - wide
    if cv2.countNonZero(hairlines) < LINE_MIN_LENGTH * shortest:
        return strokes, 0
    found = cv2.HoughLinesP(
        hairlines,
        rho=1,
        theta=np.pi / 180,
        threshold=max(20, int(0.3 * shortest)),
        minLineLength=int(LINE_MIN_LENGTH * shortest),
        maxLineGap=max(3, shortest // 60),
    )
    if found is None:
        return strokes, 0
    candidates: list[tuple[bool, tuple[int, int, int, int], int, bool]] = []
    for x1, y1, x2, y2 in found[:LINE_CAP * 4, 0, :]:
        segment = (int(x1), int(y1), int(x2), int(y2))
        dx, dy = float(x2 - x1), float(y2 - y1)
        angle = abs(np.degrees(np.arctan2(dy, dx))) % 180.0
        horizontal = min(angle, 180.0 - angle) <= LINE_MAX_TILT
        if not horizontal and abs(angle - 90.0) > LINE_MAX_TILT:
            continue
        span, side = (abs(dx), width) if horizontal else (abs(dy), height)
        if span < LINE_MIN_LENGTH * side:
            continue
        run = _line_run(strokes, segment, horizontal)
        if run > thin:
            continue  # a thick stroke: writing, not ruling
        middle = (y1 + y2) / 2.0 if horizontal else (x1 + x2) / 2.0
        at_edge = min(middle, side - middle) < 0.12 * (height if horizontal else width) or span >= 0.7 * side
        candidates.append((horizontal, segment, run, at_edge))
    families = {orientation: sum(1 for c in candidates if c[0] == orientation) for orientation in (True, False)}
    line_mask = np.zeros_like(strokes)
    erased = 0
    for horizontal, segment, run, at_edge in candidates:
        if families[horizontal] < 2 and not at_edge:
            continue
        x1, y1, x2, y2 = segment
        cv2.line(line_mask, (x1, y1), (x2, y2), 1, thickness=run + 2)
        erased += 1
        if erased >= LINE_CAP:
            break
    if not erased:
        return strokes, 0
    kept = strokes & (1 - line_mask)
    # Where a stroke crossed a line, the erased band cut it: close across the band, inside it only.
    bridge = cv2.morphologyEx(kept, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5)))
    return kept | (bridge & line_mask), erased


def _line_run(strokes: npt.NDArray[np.uint8], segment: tuple[int, int, int, int], horizontal: bool) -> int:
    """How many ink pixels run across a found segment at its middle: the line's thickness."""
    x1, y1, x2, y2 = segment
    mx, my = (x1 + x2) // 2, (y1 + y2) // 2
    height, width = strokes.shape
    if horizontal:
        column = strokes[max(0, my - 8) : min(height, my + 9), mx]
        run = int(column.sum())
    else:
        row = strokes[my, max(0, mx - 8) : min(width, mx + 9)]
        run = int(row.sum())
    return max(run, 1)


# -- 5. which ink is the digit -----------------------------------------------------------------

SPECK = 0.015
"""Components smaller than this share of the largest are specks (paper grain, dust, JPEG blocks)."""

BLOB_STROKE_RATIO = 0.42
"""A component whose stroke is wider than this share of its longest side is a filled blob, not writing
(a solid disc scores 0.5; MNIST digits 0.06-0.2; a thick marker "1" about 0.25, a bold "0" 0.35)."""

LINE_STROKE_RATIO = 0.04
"""A component this thin for its length (and long) is a line, not a stroke of writing."""

MERGE_REACH = 0.2
"""Pieces within this share of a group's size of it are parts of the same digit (a "5"'s flag, a "4")."""

ABSORB_MAX = 1.5
"""A group takes in nearby pieces up to this multiple of its own ink: the rest of a broken stroke,
not a shadow's corner or another digit that happens to be larger."""

INK_MATCH = 0.7
"""A piece joins a group only if its ink is at least this share as strong: one pen wrote a digit."""

DIGIT_SIZED = 0.3
"""Another group with at least this share of the chosen one's ink counts as another digit."""


@dataclass(frozen=True)
class FoundDigit:
    mask: npt.NDArray[np.uint8]
    """The chosen group's pixels (0/1) inside its box."""
    box: Box
    """Its bounding box at working size."""
    others: int


@dataclass
class _Group:
    labels: list[int]
    area: int
    x0: int
    y0: int
    x1: int
    y1: int
    border: bool
    ink: float
    """Sum of the ink map over the group's pixels."""

    def strength(self) -> float:
        return self.ink / max(self.area, 1)

    def reach(self) -> float:
        return MERGE_REACH * max(self.x1 - self.x0, self.y1 - self.y0)

    def near(self, other: _Group) -> bool:
        r = self.reach()
        return not (
            other.x0 > self.x1 + r or other.x1 < self.x0 - r or other.y0 > self.y1 + r or other.y1 < self.y0 - r
        )

    def absorb(self, other: _Group) -> None:
        self.labels += other.labels
        self.area += other.area
        self.ink += other.ink
        self.x0, self.y0 = min(self.x0, other.x0), min(self.y0, other.y0)
        self.x1, self.y1 = max(self.x1, other.x1), max(self.y1, other.y1)


def find_digit(
    strokes: npt.NDArray[np.uint8],
    page: npt.NDArray[np.uint8] | None = None,
    ink: npt.NDArray[np.float32] | None = None,
) -> FoundDigit:
    """The most central, largest group of stroke-like components, and how many others there were.

    Components that touch the edge of the image, or of the `page` when there is one, are writing
    cut off by the frame, or the frame itself: they count a fifth, and are never merged into a
    group that does not touch it. With the `ink` map, pieces are weighed by their ink, and a piece
    much fainter than a group (a shadow's corner next to pen strokes) does not join it.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(strokes, connectivity=8)
    if count <= 1:
        raise NoInk("no ink found: the image holds no strokes")
    height, width = strokes.shape
    areas = stats[1:, cv2.CC_STAT_AREA]
    largest = int(areas.max())
    # The page's rim: pixels of the page near its outside (the coarse page outline is a staircase
    # of 4 px steps at working size, and the desk shows between it and the true edge).
    edge = None if page is None else (cv2.dilate(1 - page, _kernel(PAGE_RIM * max(page.shape))) & page).astype(bool)
    groups: list[_Group] = []
    # The 16 largest components are plenty: a digit is a handful of pieces, the rest is dust.
    for index in np.argsort(-areas)[:16]:
        label = int(index) + 1
        x, y, w, h, area = (int(v) for v in stats[label])
        if area < max(3, SPECK * largest):
            break
        touches_border = x <= 0 or y <= 0 or x + w >= width or y + h >= height
        if edge is not None and not touches_border:
            # Lying along the page's edge: much of it in the rim (a digit written near the edge of
            # the sheet only reaches into the rim; desk showing past the outline lies all in it).
            rim = edge[y : y + h, x : x + w]
            touches_border = int((rim & (labels[y : y + h, x : x + w] == label)).sum()) > RIM_SHARE * area
        if touches_border and (w > 0.8 * width or h > 0.8 * height):
            continue  # a page edge, a desk's shadow, a frame: not a digit
        if max(w, h) >= 6:
            ratio = _stroke_ratio((labels[y : y + h, x : x + w] == label).astype(np.uint8), area)
            if ratio > BLOB_STROKE_RATIO:
                continue  # a filled blob: a shadow, an object, a thumb
            straight = min(w, h) < 0.15 * max(w, h)
            near_edge = min(x, y, width - x - w, height - y - h) < 0.1 * min(width, height)
            if ratio < LINE_STROKE_RATIO and straight and near_edge and max(w, h) > 0.3 * min(width, height):
                continue  # a long straight hairline by the edge: what is left of a page edge

        # The 90th percentile, not the mean: a thin stroke is mostly soft edge, a shadow is flat.
        strength = _percentile_90(ink[y : y + h, x : x + w][labels[y : y + h, x : x + w] == label]) if ink is not None else 1.0
        groups.append(_Group([label], area, x, y, x + w, y + h, border=touches_border, ink=strength * area))
    if not groups:
        raise NoInk("no ink found: nothing in the image looks like writing")
    centre = np.array([width / 2.0, height / 2.0])
    diagonal = float(np.hypot(width, height))

    def score(group: _Group) -> float:
        # Central and large wins; regions touching the border count a fifth (cut-off writing, edges).
        middle = np.array([(group.x0 + group.x1) / 2.0, (group.y0 + group.y1) / 2.0])
        offset = float(np.linalg.norm(middle - centre)) / diagonal
        return group.ink * float(np.exp(-((offset / 0.3) ** 2))) * (0.2 if group.border else 1.0)

    grown = _grow(sorted(groups, key=score, reverse=True), labels)
    chosen = max(grown, key=score)
    others = sum(1 for g in grown if g is not chosen and g.area >= DIGIT_SIZED * chosen.area)
    window = labels[chosen.y0 : chosen.y1, chosen.x0 : chosen.x1]
    mask = np.isin(window, chosen.labels).astype(np.uint8)
    box = (chosen.x0, chosen.y0, chosen.x1 - chosen.x0, chosen.y1 - chosen.y0)
    return FoundDigit(mask, box, others)


def _percentile_90(values: npt.NDArray[np.float32]) -> float:
    """The 90th percentile by partition (np.percentile costs ~20 us of overhead per call)."""
    k = int(0.9 * (values.size - 1))
    return float(np.partition(values, k)[k])


def _grow(ranked: list[_Group], labels: npt.NDArray[np.int32]) -> list[_Group]:
    """Grow groups from the best-scoring component down: each absorbs the pieces whose pixels come
    within `MERGE_REACH` of its size, not much larger than itself (a piece of a digit, not a shadow
    or a neighbour), as strongly inked, and on the same side of the border, until none is left."""
    remaining = list(ranked)
    grown: list[_Group] = []
    while remaining:
        group = remaining.pop(0)
        joined = True
        while joined:
            joined = False
            candidates = [
                other for other in remaining
                if other.area <= ABSORB_MAX * group.area
                and other.border == group.border
                and other.strength() >= INK_MATCH * group.strength()
                and (group.near(other) or other.near(group))
            ]
            if not candidates:
                break
            gaps = _gaps(group, candidates, labels)
            for other, gap in zip(candidates, gaps, strict=True):
                if gap <= group.reach():
                    group.absorb(other)
                    remaining.remove(other)
                    joined = True
        grown.append(group)
    return grown


def _gaps(group: _Group, others: list[_Group], labels: npt.NDArray[np.int32]) -> list[float]:
    """Shortest pixel distance from each of `others` to `group`, within the group's reach."""
    reach = int(np.ceil(group.reach())) + 1
    height, width = labels.shape
    x0, y0 = max(0, group.x0 - reach), max(0, group.y0 - reach)
    x1, y1 = min(width, group.x1 + reach), min(height, group.y1 + reach)
    window = labels[y0:y1, x0:x1]
    outside = (~np.isin(window, group.labels)).astype(np.uint8)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, 3)
    gaps = []
    for other in others:
        inside = np.isin(window, other.labels)
        gaps.append(float(distance[inside].min()) if inside.any() else float("inf"))
    return gaps


def _stroke_ratio(solid: npt.NDArray[np.uint8], area: int) -> float:
    """Stroke width over the longest side of a component's box."""
    return stroke_width(solid, area) / float(max(solid.shape))


_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def stroke_width(ink: npt.NDArray[np.generic], area: int | None = None) -> float:
    """Mean stroke width in pixels: twice the inked area (ink > 0.5) over its outline length.

    The outline is the inked pixels with a 4-neighbour outside the ink (the image's outside counts).
    """
    solid = (np.asarray(ink) > 0.5).astype(np.uint8) if ink.dtype != np.uint8 else ink
    area = cv2.countNonZero(solid) if area is None else area
    if area == 0:
        return 0.0
    interior = cv2.erode(solid, _CROSS, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    outline = area - cv2.countNonZero(interior)
    return 2.0 * area / max(outline, 1)


# -- 6. the MNIST framing ----------------------------------------------------------------------

FRAMING_MIN_SIDE = 48
"""Masks smaller than this are upsampled before their strokes are adjusted (whole-pixel steps are coarse)."""


def _solid_digit(strokes: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    """The ink (> half its maximum) of a 2-D ink map as a 0/1 mask cropped to the digit, upsampled
    to at least `FRAMING_MIN_SIDE` on its longest side: both framings adjust strokes by whole pixels,
    which needs room. Raises NoInk when there is none."""
    plane = np.asarray(strokes, dtype=np.float32)
    if plane.ndim != 2:
        raise ValueError(f"expected a 2-D ink map, got shape {plane.shape}")
    top = float(plane.max()) if plane.size else 0.0
    if top <= 0:
        raise NoInk("no ink found: the image is blank or has too little contrast to hold a digit")
    solid = (plane > top / 2.0).astype(np.uint8)
    rows, cols = np.flatnonzero(solid.any(axis=1)), np.flatnonzero(solid.any(axis=0))
    solid = solid[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    longest = max(solid.shape)
    if longest < FRAMING_MIN_SIDE:
        factor = FRAMING_MIN_SIDE / longest
        size = (max(1, round(solid.shape[1] * factor)), max(1, round(solid.shape[0] * factor)))
        smooth = cv2.resize(solid.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
        solid = (smooth > 0.5).astype(np.uint8)
        if not solid.any():
            raise NoInk("no ink found: the digit is too small")
    return solid


def frame_digit(strokes: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    """Frame a digit as MNIST did: stroke near MNIST's width, longest side 20 px, centre of mass at (14, 14).

    Args:
        strokes: 2-D ink map of one digit, any size: ink > 0.5 (of 1) or > 0 for 0/1 and 0-255 masks.

    Returns:
        (28, 28) uint8, white digit on black, ink stretched to 255.
    """
    solid = _solid_digit(strokes)
    longest = max(solid.shape)
    solid = _adjust_stroke(solid, MNIST_STROKE * longest / DIGIT_BOX)
    height, width = solid.shape
    scale = DIGIT_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # INTER_AREA averages every source pixel under each target pixel: MNIST's anti-aliased edges.
    digit = cv2.resize(solid.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    return centre_by_mass(digit)


def _adjust_stroke(solid: npt.NDArray[np.uint8], target: float) -> npt.NDArray[np.uint8]:
    """Dilate strokes much thinner than `target` px (a pen's width at the mask's own scale), erode
    much thicker ones."""
    width = stroke_width(solid)
    if width < 0.7 * target:
        grow = round(target - width)
        if grow >= 1:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow + 1, grow + 1))
            padded = np.pad(solid, grow)
            thicker: npt.NDArray[np.uint8] = cv2.dilate(padded, kernel)
            return thicker
    elif width > 1.6 * target:
        shrink = round((width - target) / 2.0)
        if shrink >= 1:
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * shrink + 1, 2 * shrink + 1))
            thinner: npt.NDArray[np.uint8] = cv2.erode(solid, kernel)
            # Never erode a stroke away: keep the thinner version only if most of the shape survives.
            if int(thinner.sum()) > 0.25 * int(solid.sum()):
                return thinner
    return solid


def centre_by_mass(digit: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """Paste into 28x28 with the centre of mass at (14, 14), and stretch the ink to 0-255."""
    height, width = digit.shape
    total = float(digit.sum())
    if total <= 0:
        raise NoInk("no ink found: the image is blank or has too little contrast to hold a digit")
    # NumPy, not cv2.moments: OpenCV reads a narrow (N, 2) array as a list of points.
    centre_row = float(digit.sum(axis=1) @ np.arange(height)) / total
    centre_col = float(digit.sum(axis=0) @ np.arange(width)) / total
    # Whole-pixel shifts, as MNIST (its centres of mass spread about +-0.3 px around 14), kept in frame.
    top = min(max(round(CENTRE - centre_row), 0), IMAGE_SIDE - height)
    left = min(max(round(CENTRE - centre_col), 0), IMAGE_SIDE - width)
    canvas = np.zeros((IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    canvas[top : top + height, left : left + width] = digit
    peak = float(canvas.max())
    framed: npt.NDArray[np.uint8] = np.clip(np.rint(canvas * (255.0 / peak)), 0, 255).astype(np.uint8)
    return framed


# -- 6'. the UCI 8x8 framing -------------------------------------------------------------------
# The UCI "optical recognition of handwritten digits" set (scikit-learn's `load_digits`) was made
# from NIST's normalised 32x32 bitmaps: each digit scaled to the bitmap's full height (every one of
# the 1,797 images inks both its top and bottom row; 5.9 of 8 columns on average), then the on
# pixels counted in the 64 non-overlapping 4x4 blocks, 0-16 each.

UCI_BITMAP = 32
"""Side of the normalised bitmap the block counts are taken from."""

UCI_BLOCK = 4
"""Side of one block: 32 / 4 = 8 counts a side, each 0-16."""

UCI_STROKE = 5.5
"""Pen width in pixels of the 32x32 bitmap (strokes much thinner are dilated, much thicker eroded).
Calibrated on 600 MNIST training digits framed this way: their ink then covers 30.0% of the bitmap
and 51% of the blocks hold some, against 30.5% and 51% over `load_digits` (4 px: 26.6%, 48%)."""

UCI_WIDTH = 1.0
"""Width of the digit in the bitmap relative to its aspect ratio at full height: kept, as NIST's
normalisation kept it. Measured with an MLP trained on UCI training digits, reading (a) UCI
training digits held out from it, rendered as scans (bench.realworld) and framed back, and (b) MNIST
validation digits (the last 1,500 training images): 1.0 reads 82.6% of (a) (97% of them raw) and
56.5% of (b); 0.8 reads 76.7% and 65.7%. MNIST's writers write wider digits than UCI's 43 (6.8 block
columns inked at 1.0, against 5.9): narrowing would fit one population to the other, not the recipe."""


def uci_bitmap(strokes: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    """The digit normalised into a 32x32 bitmap (0/1): full height, width in proportion, centred by mass.

    Args:
        strokes: 2-D ink map of one digit, any size: ink > half its maximum (0/1 masks and 0-255
            grey images alike).
    """
    solid = _solid_digit(strokes)
    height, width = solid.shape
    solid = _adjust_stroke(solid, UCI_STROKE * height / UCI_BITMAP)
    rows, cols = np.flatnonzero(solid.any(axis=1)), np.flatnonzero(solid.any(axis=0))
    solid = solid[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # a dilation pads the mask
    height, width = solid.shape
    # Full height; the width in proportion (`UCI_WIDTH`), squeezed in when wider than the bitmap.
    size = (min(UCI_BITMAP, max(1, round(UCI_WIDTH * width * UCI_BITMAP / height))), UCI_BITMAP)
    scaled = cv2.resize(solid.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5
    bitmap = np.zeros((UCI_BITMAP, UCI_BITMAP), dtype=np.uint8)
    # The centre of mass in the middle, across (a "7"'s long bar, a "4"'s stem), kept in frame.
    columns = scaled.sum(axis=0)
    centre = float(columns @ np.arange(size[0])) / max(float(columns.sum()), 1.0)
    left = min(max(int(np.floor((UCI_BITMAP - 1) / 2.0 - centre + 0.5)), 0), UCI_BITMAP - size[0])
    bitmap[:, left : left + size[0]] = scaled
    if not bitmap.any():
        raise NoInk("no ink found: the digit is too small")
    return bitmap


def block_counts(bitmap: npt.NDArray[np.uint8], block: int = UCI_BLOCK) -> npt.NDArray[np.uint8]:
    """On pixels in each non-overlapping `block` x `block` square of a 0/1 bitmap."""
    side_y, side_x = bitmap.shape[0] // block, bitmap.shape[1] // block
    blocks = bitmap[: side_y * block, : side_x * block].reshape(side_y, block, side_x, block)
    counts: npt.NDArray[np.uint8] = blocks.sum(axis=(1, 3), dtype=np.uint8)
    return counts


def uci_blocks(strokes: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    """(8, 8) counts 0-16: `block_counts(uci_bitmap(strokes))`, what the UCI set holds per image."""
    return block_counts(uci_bitmap(strokes))
