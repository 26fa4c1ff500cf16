"""Where the digits come from: MNIST's own splits, and two sets of writers that are not MNIST's.

Every source returns `(images, labels)`: a list of uint8 white-on-black images (any size; the
renderer rescales them) and an int64 label array. MNIST alone would only test how well the
pipeline restores MNIST's own framing; the UCI digits (43 other writers, 8x8) and handwriting
fonts are independent checks that the model and the pipeline did not just learn MNIST's look.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from digit_frontend.pipeline import upscale_blocks
from training.data import RawSplit, load_mnist
from training.ink_writers import FONT_PACKAGES, HANDWRITING_FONTS, HandwritingFont, uci_split

Images = list[NDArray[np.uint8]]
Split = Literal["validation", "test"]

MNIST_TRAIN_SIZE = 60_000
"""The validation split is the last 6,000 of exactly these: a smaller file is not the real split."""


FONT_SLANTS = (-0.15, 0.0, 0.2, 0.35)
"""Horizontal shear per font: people slant their digits, fonts mostly do not."""

FONT_ROTATIONS = (-6.0, 0.0, 5.0)
"""Small rotations (degrees), so that each font gives more than one drawing of each digit."""


class SourceUnavailable(RuntimeError):
    """A digit source cannot be loaded here (no data, no fonts); the message says how to fix it."""


def mnist_split(data_dir: Path | None, split: Split, count: int, seed: int) -> tuple[Images, NDArray[np.int64]]:
    """`count` digits drawn (without replacement, seeded) from MNIST's validation or test split.

    Validation is the last 6,000 of the 60,000 training images, as in training: tune on it.
    The test images are for the final figures only.
    """
    chosen = _load_split(data_dir, split)
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(chosen), size=min(count, len(chosen)), replace=False))
    return list(chosen.images[index]), chosen.labels[index].astype(np.int64)


@functools.lru_cache(maxsize=4)
def _load_split(data_dir: Path | None, split: Split) -> RawSplit:
    """One split, loaded once per process (the evaluation draws from it once per condition)."""
    mnist = load_mnist(data_dir, download=False)
    total_train = len(mnist.train) + len(mnist.validation)
    if split == "validation" and total_train != MNIST_TRAIN_SIZE:
        raise SourceUnavailable(
            f"{mnist.source} holds {total_train:,} training images, not {MNIST_TRAIN_SIZE:,}: its last 10% "
            "are not MNIST's validation split; point --data-dir at the full dataset"
        )
    return mnist.validation if split == "validation" else mnist.test


def uci_digits(count: int | None = None, seed: int = 0) -> tuple[Images, NDArray[np.int64]]:
    """The UCI handwritten digits' test split (360 by 43 writers, bundled with scikit-learn), upscaled.

    The test split only: the ink segmenter's renderer draws the training split's writers. Each 8x8
    image counts the ink in 4x4 blocks of a 32x32 bitmap (values 0-16); a cubic upscale gives the
    grey shape back (smooth, not blocky), with a black margin as MNIST has.
    """
    blocks, labels = uci_split("test")
    index = np.arange(len(labels))
    if count is not None and count < len(index):
        index = np.sort(np.random.default_rng(seed).choice(len(index), size=count, replace=False))
    return [upscale_blocks(blocks[i]) for i in index], labels[index]


def installed_fonts() -> list[HandwritingFont]:
    """The handwriting fonts present on this machine."""
    return [font for font in HANDWRITING_FONTS if Path(font.path).is_file()]


def font_digits() -> tuple[Images, NDArray[np.int64]]:
    """Digits 0-9 in every installed handwriting font, at a few slants and rotations.

    Raises:
        SourceUnavailable: none of the fonts is installed; the message names the packages.
    """
    fonts = installed_fonts()
    if not fonts:
        raise SourceUnavailable(
            "no handwriting font is installed; for the font digits run: apt-get install -y " + " ".join(FONT_PACKAGES)
        )
    images: Images = []
    labels: list[int] = []
    for font in fonts:
        face = ImageFont.truetype(font.path, 96)
        for digit in range(10):
            glyph = render_glyph(face, str(digit))
            for slant in FONT_SLANTS:
                for angle in FONT_ROTATIONS:
                    images.append(distort(glyph, slant, angle))
                    labels.append(digit)
    return images, np.array(labels, np.int64)


def render_glyph(face: ImageFont.FreeTypeFont, text: str) -> NDArray[np.uint8]:
    """One glyph, white on black, on a canvas with room to slant and rotate it."""
    canvas = Image.new("L", (256, 256), 0)
    ImageDraw.Draw(canvas).text((128, 128), text, fill=255, font=face, anchor="mm")
    return np.asarray(canvas)


def distort(glyph: NDArray[np.uint8], slant: float, angle: float) -> NDArray[np.uint8]:
    """Shear (italic-like slant, about the centre) and rotate a glyph."""
    centre = glyph.shape[1] / 2
    rotation = cv2.getRotationMatrix2D((centre, centre), angle, 1.0)
    shear = np.array([[1.0, -slant, slant * centre], [0.0, 1.0, 0.0]])
    matrix = rotation @ np.vstack([shear, [0.0, 0.0, 1.0]])
    size = (glyph.shape[1], glyph.shape[0])
    return np.asarray(cv2.warpAffine(glyph, matrix, size, flags=cv2.INTER_LINEAR, borderValue=0), np.uint8)
