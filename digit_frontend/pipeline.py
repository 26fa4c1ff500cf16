"""The front end: from an uploaded image file to each model's input, the way the model's data was framed.

Users send phone photos of paper, scans and canvas drawings, not MNIST tensors: a page on a desk,
shadows, ruled paper, pencil, chalk on a board. `prepare_image` finds the digit in such an image
and frames it as the model's training set framed its digits. The path, by what the upload is:

1. **decode** (`digit_frontend.decode`): header-first checks, limits, reduced-scale JPEG decoding,
   EXIF orientation, at most `WORKING_SIDE` px. No per-pixel work runs at full resolution.
2. **images that already are a model's input** go through unchanged: a 28x28 MNIST digit (so the
   MNIST test set sent as PNG files gets exactly its raw predictions), an 8x8 UCI digit or a blocky
   upscale of one (`uci_digit`; the 8x8 models read their own test digits as they were).
3. **where the ink is**: a photo goes to the ink segmenter (`digit_frontend.segmenter`, coarse to
   fine, with refusals); a transparent canvas (its alpha is the ink), a flat scan or an opaque canvas
   export (`is_flat_scan`) go to the classical rules (`digit_frontend.classical`), which read those
   better on the validation uploads; so do all opaque images when no segmenter is installed
   (`use_front_end(None)`, `DIGITS_FRONT_END=classical`).
4. **framing** (`digit_frontend.framing`): the stroke mask framed as MNIST (28x28) or the UCI set (8x8
   block counts) framed its digits, once per encoding a request needs (`PreparedImage`).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from digit_contract.errors import NoInk
from digit_contract.inputs import IMAGE_SIDE
from digit_frontend.classical import UNIFORM_SPREAD, binarise, find_digit, ink_map, remove_lines, uniform_surround
from digit_frontend.decode import Box, DecodedImage, decode_image
from digit_frontend.framing import frame_digit, is_mnist_like, outer_ring, uci_blocks
from digit_frontend.pairs import PairReader
from digit_frontend.segmenter import InkSegmenter

BLANK_LEVEL = 40
"""An MNIST-style image (or pixel input, x 255) whose brightest pixel is below this holds no digit."""

Method = Literal["passthrough", "uci-passthrough", "learned", "mnist"]
"""How the digit was found: an MNIST image as it is; a UCI 8x8 image as it is; the ink segmenter;
the classical rules (a transparent canvas, or no segmenter installed)."""

UCI_SIDE, UCI_LEVELS = 8, 16
"""A UCI digit: 8x8 block counts 0-16."""


@dataclass
class FrontEnd:
    """What finds the digit in an opaque upload: the ink segmenter, or None for the classical rules.

    One per process, set by `use_front_end` when the models load (`service.server.app`, the evaluation);
    ONNX Runtime sessions are safe to run from several threads at once.
    """

    segmenter: InkSegmenter | None = None
    pairs: PairReader | None = None
    """What reads two touching digits of a number at once (`digit_frontend.pairs`); None: only cuts."""


FRONT_END = FrontEnd()


def use_front_end(segmenter: InkSegmenter | None, pairs: PairReader | None = None) -> None:
    """Find digits with `segmenter` from now on (None: the classical rules), and read touching digits
    of numbers with `pairs` (None: numbers are only cut into digits)."""
    FRONT_END.segmenter = segmenter
    FRONT_END.pairs = pairs


@contextmanager
def front_end_in_use(segmenter: InkSegmenter | None, pairs: PairReader | None = None) -> Iterator[None]:
    """`use_front_end` inside the block, then both models that were in use before it."""
    before = FRONT_END.segmenter, FRONT_END.pairs
    use_front_end(segmenter, pairs)
    try:
        yield
    finally:
        use_front_end(*before)


@dataclass(frozen=True)
class PreparedImage:
    """One upload's digit as the front end found it (stages 1-5), and what was done to get there.

    Each input encoding frames `strokes` its own way: `pixels` is MNIST's 28x28 framing (stage 6),
    `uci_blocks` the UCI 8x8 block counts; each is computed once, when first asked for.
    """

    strokes: npt.NDArray[np.uint8]
    """For `passthrough`, the 28x28 grey image itself (white on black); for `uci-passthrough`, the
    8x8 counts upscaled to a grey stroke shape; else the digit's stroke mask (0/1) inside its box."""
    format: str
    width: int
    height: int
    mode: str
    method: Method
    """`passthrough` for an image that already is an MNIST digit, `uci-passthrough` for one that
    already is a UCI digit, else how its ink was found: `learned` (the segmenter) or `mnist` (the rules)."""
    inverted: bool
    """Whether the ink was darker than its background (dark ink on paper), so the image was inverted."""
    box: Box = (0, 0, 0, 0)
    """Where the digit was found, in the original image (after EXIF orientation)."""
    other_digits: int = 0
    """How many other digit-sized groups of ink the image held (the answer is for the central one)."""
    lines_removed: int = 0
    """Long straight lines (ruling, grid, page edges) erased before the digit was looked for."""
    blocks: npt.NDArray[np.uint8] | None = None
    """For `uci-passthrough`, the 8x8 counts as they came."""

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
        return self.blocks if self.blocks is not None else uci_blocks(self.strokes)

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
    blocks = uci_digit(decoded.grey) if decoded.grey is not None else None
    if blocks is not None:
        whole = (0, 0, decoded.width, decoded.height)
        return PreparedImage(upscale_blocks(blocks), *source, method="uci-passthrough", inverted=False, box=whole,
                             blocks=blocks)
    # A flat scan or an opaque canvas export (one paper level all round) needs no network: its
    # surround is the paper, and the classical rules read such images better on validation uploads
    # (scans 98.3% against 91.7-96.7%, opaque canvases 100% against 96.7%; bench/results/frontend).
    if decoded.grey is not None and FRONT_END.segmenter is not None and not is_flat_scan(decoded.grey):
        found = FRONT_END.segmenter.find(decoded.grey)
        return PreparedImage(found.mask, *source, method="learned", inverted=_dark_ink(decoded.grey, found.box),
                             box=decoded.to_original(found.box), other_digits=found.others)
    return _classical(decoded)


FLAT_INK_SHARE = 0.2
"""At most this share of a flat scan's pixels stand apart from its paper: a digit's strokes do, a
page lying on a plain desk (the desk all round, the page a third of the frame or more) does not."""


def is_flat_scan(grey: npt.NDArray[np.uint8]) -> bool:
    """Whether `grey` is one sheet of paper all round (a scan, an opaque canvas export) with a little ink."""
    level = uniform_surround(grey)
    if level is None:
        return False
    apart = np.abs(grey[::2, ::2].astype(np.int16) - np.int16(round(level))) > 2 * UNIFORM_SPREAD
    return float(apart.mean()) <= FLAT_INK_SHARE


def _classical(decoded: DecodedImage) -> PreparedImage:
    """The hand-written rules (`digit_frontend.classical`): a canvas's alpha, or no segmenter installed."""
    source = (decoded.format, decoded.width, decoded.height, decoded.mode)
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


def _dark_ink(grey: npt.NDArray[np.uint8], box: Box) -> bool:
    """Whether the ink in `box` is darker than its paper: the darkest pixels stray further from the
    box's median than the lightest (strokes are a minority of a digit's box)."""
    x, y, w, h = box
    patch = grey[y : y + h, x : x + w]
    if patch.size == 0:
        return True
    low, median, high = np.percentile(patch, (5, 50, 95))
    return bool(median - low >= high - median)


# -- images that already are a UCI digit -------------------------------------------------------

UCI_MIN_LEVELS = 3
"""Distinct counts a blocky upscale must hold to be taken for a UCI digit (they hold 6-15)."""

UCI_MAX_BLOCK_SPREAD = 12
"""Grey levels a block of a blocky upscale may vary by (rounding, a light lossy encode)."""


def uci_digit(grey: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8] | None:
    """The 8x8 counts (0-16, ink high) when `grey` is a UCI digit: 8x8 itself, or an upscale of one
    by any factor, blocky (nearest neighbour) or smooth (bilinear, bicubic), of either polarity; else None.

    Raises:
        NoInk: it is such an image, and blank.
    """
    height, width = grey.shape
    if height != width or height < UCI_SIDE or height > UCI_MAX_SIDE:
        return None
    means = grey.astype(np.float64) if height == UCI_SIDE else _block_means(grey)
    if means is None:
        means = _smooth_upscale_source(grey)
    if means is None:
        return None
    small: npt.NDArray[np.float64] = means
    if float(np.median(outer_ring(small, 1))) >= 128:  # dark ink on a light page: the counts are ink, high
        small = 255.0 - small
    counts: npt.NDArray[np.uint8] = np.clip(np.rint(small * UCI_LEVELS / 255.0), 0, UCI_LEVELS).astype(np.uint8)
    if height > UCI_SIDE and len(np.unique(counts)) < UCI_MIN_LEVELS:
        return None  # a blank page or a two-tone drawing whose edges happen to fall on block lines
    if int(counts.max()) < 2:
        raise NoInk("no ink found: the 8x8 image is blank")
    return counts


UCI_MAX_SIDE = 8 * UCI_SIDE * 6
"""Largest side taken for an upscale of an 8x8 digit (384 px); bigger images are photos or scans."""


UCI_SMOOTH_TOLERANCE = 3.0
"""Mean grey-level difference allowed between an image and the smooth upscale of the 8x8 image it
holds: resamplers differ by a level or two (OpenCV's and Pillow's cubic kernels); a drawing or a
photo differs by tens."""


def _smooth_upscale_source(grey: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64] | None:
    """The 8x8 image `grey` is a smooth (bilinear or bicubic) upscale of, else None.

    Such an upscale passes through the 8x8 values at the blocks' centres, so sampling it there gives
    them back; the image is taken for one when upscaling those values again reproduces it.
    """
    side = grey.shape[0]
    if side < 4 * UCI_SIDE:
        return None
    source: npt.NDArray[np.uint8] = cv2.resize(grey, (UCI_SIDE, UCI_SIDE), interpolation=cv2.INTER_LINEAR)  # at the centres
    small = Image.fromarray(source)
    upscales: tuple[Callable[[], npt.NDArray[np.uint8]], ...] = (  # cheapest first; each made only if needed
        lambda: cv2.resize(source, (side, side), interpolation=cv2.INTER_LINEAR),
        lambda: cv2.resize(source, (side, side), interpolation=cv2.INTER_CUBIC),
        lambda: np.asarray(small.resize((side, side), Image.Resampling.BICUBIC)),  # Pillow's kernels differ from OpenCV's
        lambda: np.asarray(small.resize((side, side), Image.Resampling.LANCZOS)),
    )
    for upscale in upscales:
        if float(cv2.absdiff(upscale(), grey).mean()) <= UCI_SMOOTH_TOLERANCE:
            return source.astype(np.float64)
    return None


def _block_means(grey: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64] | None:
    """Each of the 8x8 blocks' mean when every block is flat, else None.

    An upscale by a factor that is not whole (8 to 300 px: 37.5) makes blocks of 37 and 38 px, and
    the resampler may place a boundary a pixel either way: each block is judged on its inside, a
    pixel in from where its boundary would fall.
    """
    side = grey.shape[0]
    edges = np.arange(UCI_SIDE + 1) * side / UCI_SIDE
    inset = 0 if side % UCI_SIDE == 0 else 1
    if side / UCI_SIDE < 2 + 2 * inset:
        return None  # too few pixels per block to tell a block from a stroke
    means = np.empty((UCI_SIDE, UCI_SIDE))
    for i in range(UCI_SIDE):
        top, bottom = int(np.ceil(edges[i])) + inset, int(np.floor(edges[i + 1])) - inset
        for j in range(UCI_SIDE):
            left, right = int(np.ceil(edges[j])) + inset, int(np.floor(edges[j + 1])) - inset
            block = grey[top:bottom, left:right]
            if int(block.max()) - int(block.min()) > UCI_MAX_BLOCK_SPREAD:
                return None
            means[i, j] = float(block.mean())
    return means


def upscale_blocks(counts: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    """8x8 counts as a smooth 40x40 grey stroke shape, white on black, for the MNIST framing.

    A thin stroke covers only part of each 4x4 block, so its count is low (often 5-8 of 16): a gain
    of 1.6 keeps such strokes above the framing's ink threshold (half the maximum).
    """
    grey = np.clip(counts.astype(np.float32) / UCI_LEVELS * 1.6, 0.0, 1.0)
    up = cv2.resize(np.pad(grey, 1), (40, 40), interpolation=cv2.INTER_CUBIC)
    shape: npt.NDArray[np.uint8] = np.clip(up * 255.0, 0, 255).astype(np.uint8)
    return shape
