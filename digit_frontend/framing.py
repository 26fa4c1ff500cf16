"""The last stage of the front end: a digit's stroke mask framed as each model's training set framed it.

MNIST (`frame_digit`): stroke width brought near MNIST's pen, longest side to 20 px with an
anti-aliasing area filter, centre of mass at pixel (14, 14) of 28x28 (MNIST digits were binary NIST
scans too, so the recipe applies to a binary mask). UCI (`uci_blocks`): the 32x32 bitmap at full
height, counted in 4x4 blocks into the 8x8 values the UCI set holds.
"""

from __future__ import annotations

from typing import TypeVar

import cv2
import numpy as np
import numpy.typing as npt

from digit_contract.errors import NoInk
from digit_contract.inputs import IMAGE_SIDE

DIGIT_BOX = 20
"""MNIST fits each digit's longest side to 20 px before centring it in 28x28."""

CENTRE = 14.0
"""Where MNIST puts the centre of mass (row, column): the mean over MNIST is (13.99, 14.01)."""

MNIST_STROKE = 2.6
"""Typical MNIST stroke width in pixels at the 20 px scale (median over the test sample: 2.65)."""

def is_mnist_like(grey: npt.NDArray[np.uint8]) -> bool:
    """A 28x28 image on a dark background is taken to be an MNIST digit already."""
    return grey.shape == (IMAGE_SIDE, IMAGE_SIDE) and float(np.median(outer_ring(grey, 1))) < 128.0

_Scalar = TypeVar("_Scalar", bound=np.generic)


def outer_ring(grey: npt.NDArray[_Scalar], width: int) -> npt.NDArray[_Scalar]:
    """The pixels within `width` of the image's edge (corners counted twice: they barely move a median)."""
    return np.concatenate(
        [grey[:width].ravel(), grey[-width:].ravel(), grey[:, :width].ravel(), grey[:, -width:].ravel()]
    )


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
training digits held out from it, rendered as scans (evaluation) and framed back, and (b) MNIST
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
