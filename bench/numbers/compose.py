"""Numbers written the way people write them: digit images set side by side on one line.

`compose_number` lays white-on-black digit images (MNIST's 28x28, UCI's upscaled blocks, font
glyphs) out as one handwritten number: each digit a little larger or smaller than the others, off
the baseline by a little, the whole number leaning by one slant (each digit by a little more or
less), spaced as handwriting is (a fifth of a digit's height or so, measured between the strokes
themselves, not their boxes), with a wide space between groups ("12 500") and, where asked, two
neighbours touching, as pens join "00" and "11". The line itself may rise or fall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

Grey = npt.NDArray[np.uint8]

HEIGHT = 20
"""Digit height in px of the composition (MNIST's digits are 20 px tall in their 28x28 frames)."""

SPACING = (0.08, 0.4)
"""Gap between neighbouring digits' strokes, in digit heights (uniform)."""

GROUP_SPACE = (0.9, 1.6)
"""Gap between groups, in digit heights."""


@dataclass(frozen=True)
class Layout:
    """How one number is written."""

    groups: tuple[int, ...] = ()
    """Digits per group (2, 3): empty for one group."""
    touching: frozenset[int] = frozenset()
    """Indices i where digit i touches digit i + 1."""
    slant: float = 0.0
    """Shear of the whole number (x shift per px up; positive leans right)."""
    angle: float = 0.0
    """Degrees the line rises to the right."""


def crop(image: Grey) -> Grey:
    """A digit image cropped to its ink (above 10% of its peak)."""
    rows, cols = np.nonzero(image > 0.1 * float(image.max()))
    return image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]


def _shear(image: Grey, shear: float) -> Grey:
    height, width = image.shape
    extra = int(np.ceil(abs(shear) * height))
    # x' = x + shear * (height - y): the top moves right for a positive shear (kept inside the frame).
    matrix = np.array([[1.0, -shear, shear * height + (extra if shear < 0 else 0)], [0.0, 1.0, 0.0]], np.float32)
    sheared: Grey = cv2.warpAffine(image, matrix, (width + extra, height), flags=cv2.INTER_LINEAR)
    return sheared


def compose_number(digits: Sequence[Grey], layout: Layout, rng: np.random.Generator) -> Grey:
    """One line of handwriting, white on black, from digit images in reading order."""
    glyphs = []
    for image in digits:
        glyph = crop(image)
        height = HEIGHT * rng.uniform(0.88, 1.12)
        scale = height / glyph.shape[0]
        size = (max(2, round(glyph.shape[1] * scale)), max(2, round(height)))
        glyph = cv2.resize(glyph, size, interpolation=cv2.INTER_LINEAR)
        glyphs.append(_shear(glyph, layout.slant + rng.normal(0.0, 0.05)))
    group_ends = set(np.cumsum(layout.groups)[:-1] - 1) if layout.groups else set()
    tall = 3 * HEIGHT
    baseline = 2 * HEIGHT
    canvas = np.zeros((tall, sum(g.shape[1] for g in glyphs) + 4 * HEIGHT * len(glyphs)), np.uint8)
    right = np.full(tall, -10**6)  # rightmost ink per row so far: spacing is between strokes, not boxes
    x_min = 2 * HEIGHT
    for index, glyph in enumerate(glyphs):
        h, w = glyph.shape
        top = baseline - h + round(rng.normal(0.0, 0.04) * HEIGHT)
        rows = np.arange(top, top + h)
        has_ink = glyph > 64
        first = np.where(has_ink.any(axis=1), has_ink.argmax(axis=1), 10**6)
        if index == 0:
            x = x_min
        else:
            touching_x = int(np.max(right[rows] - first)) + 1  # the first x at which no stroke overlaps
            if index - 1 in layout.touching:
                gap = -1 - int(rng.integers(0, 2))  # strokes meet (and overlap a pixel or two)
            elif index - 1 in group_ends:
                gap = round(rng.uniform(*GROUP_SPACE) * HEIGHT)
            else:
                gap = round(rng.uniform(*SPACING) * HEIGHT)
            x = touching_x + gap
        canvas[top : top + h, x : x + w] = np.maximum(canvas[top : top + h, x : x + w], glyph)
        last = np.where(has_ink.any(axis=1), w - 1 - has_ink[:, ::-1].argmax(axis=1), -10**6)
        right[rows] = np.maximum(right[rows], x + last)
    number = crop(canvas)
    if layout.angle:
        number = _rotate(number, layout.angle)
    return np.pad(number, 4)


def _rotate(image: Grey, angle: float) -> Grey:
    height, width = image.shape
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    size = (int(height * sin + width * cos) + 2, int(height * cos + width * sin) + 2)
    matrix[0, 2] += size[0] / 2.0 - width / 2.0
    matrix[1, 2] += size[1] / 2.0 - height / 2.0
    return crop(cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR))
