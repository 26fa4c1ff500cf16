"""Controlled corruptions of MNIST digits, for the robustness curves.

Each corruption has a list of strengths, the first of which leaves the images as they are, so every
curve starts at the clean accuracy. The random ones (noise, occlusion position, shift direction)
draw from a generator seeded per corruption and strength, so the curves reproduce exactly. Images
are uint8 white-on-black (N, 28, 28) in and out, like the dataset; noise is added on the [0, 1]
scale that models see.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

Images = npt.NDArray[np.uint8]
SIDE = 28


@dataclass(frozen=True)
class Corruption:
    name: str
    description: str
    unit: str
    strengths: tuple[float, ...]
    apply: Callable[[Images, float, np.random.Generator], Images]


def gaussian_noise(images: Images, sigma: float, rng: np.random.Generator) -> Images:
    noisy = images / 255.0 + rng.normal(0.0, sigma, size=images.shape)
    return np.asarray(np.clip(noisy, 0.0, 1.0) * 255.0 + 0.5, np.uint8)


def _warp_each(images: Images, matrices: list[npt.NDArray[np.float64]]) -> Images:
    out = np.empty_like(images)
    for i, (image, matrix) in enumerate(zip(images, matrices, strict=True)):
        out[i] = cv2.warpAffine(image, matrix, (SIDE, SIDE), flags=cv2.INTER_LINEAR, borderValue=0)
    return out


def rotation(images: Images, degrees: float, rng: np.random.Generator) -> Images:
    # Half the digits turn clockwise, half anticlockwise, so no direction is favoured.
    signs = rng.choice((-1.0, 1.0), size=len(images))
    centre = ((SIDE - 1) / 2, (SIDE - 1) / 2)
    return _warp_each(images, [cv2.getRotationMatrix2D(centre, s * degrees, 1.0) for s in signs])


def translation(images: Images, pixels: float, rng: np.random.Generator) -> Images:
    # A shift of `pixels` in a random direction (sub-pixel, bilinear), the digit staying in frame
    # until the shift approaches the 4-pixel MNIST margin.
    angles = rng.uniform(0.0, 2 * math.pi, size=len(images))
    matrices = [np.array([[1.0, 0.0, pixels * math.cos(a)], [0.0, 1.0, pixels * math.sin(a)]]) for a in angles]
    return _warp_each(images, matrices)


def scaling(images: Images, factor: float, rng: np.random.Generator) -> Images:
    centre = ((SIDE - 1) / 2, (SIDE - 1) / 2)
    matrix = cv2.getRotationMatrix2D(centre, 0.0, factor)
    return _warp_each(images, [matrix] * len(images))


_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def thinning(images: Images, steps: float, rng: np.random.Generator) -> Images:
    # Grey erosion with a 3x3 cross, `steps` times: each step peels about one pixel off the stroke.
    return np.stack([cv2.erode(image, _CROSS, iterations=int(steps)) for image in images]) if steps else images


def thickening(images: Images, steps: float, rng: np.random.Generator) -> Images:
    return np.stack([cv2.dilate(image, _CROSS, iterations=int(steps)) for image in images]) if steps else images


def occlusion(images: Images, side: float, rng: np.random.Generator) -> Images:
    """A black square of `side` pixels somewhere in the central 20x20 box, where MNIST digits are."""
    size = int(side)
    if size == 0:
        return images
    low, high = 4, SIDE - 4 - size
    rows = rng.integers(low, high + 1, size=len(images))
    cols = rng.integers(low, high + 1, size=len(images))
    index = np.arange(SIDE)
    in_rows = (index[None, :] >= rows[:, None]) & (index[None, :] < rows[:, None] + size)
    in_cols = (index[None, :] >= cols[:, None]) & (index[None, :] < cols[:, None] + size)
    out = images.copy()
    out[in_rows[:, :, None] & in_cols[:, None, :]] = 0
    return out


CORRUPTIONS: tuple[Corruption, ...] = (
    Corruption("gaussian_noise", "Gaussian noise added to the [0, 1] pixels, clipped", "stddev",
               (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6), gaussian_noise),
    Corruption("rotation", "rotation about the centre, half clockwise, half anticlockwise", "degrees",
               (0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0), rotation),
    Corruption("translation", "shift in a random direction", "pixels", (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0), translation),
    Corruption("scaling", "zoom about the centre (1 = as is)", "factor",
               (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 1.1, 1.2, 1.3, 1.4), scaling),
    Corruption("thinning", "grey erosion with a 3x3 cross", "steps", (0.0, 1.0, 2.0), thinning),
    Corruption("thickening", "grey dilation with a 3x3 cross", "steps", (0.0, 1.0, 2.0, 3.0), thickening),
    Corruption("occlusion", "a black square at a random place in the central 20x20 box", "side (pixels)",
               (0.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0), occlusion),
)
CORRUPTIONS_BY_NAME = {c.name: c for c in CORRUPTIONS}


def corrupt(images: Images, corruption: Corruption, strength: float, seed: int) -> Images:
    """`images` under one corruption at one strength, reproducibly."""
    index = corruption.strengths.index(strength)
    rng = np.random.default_rng((seed, CORRUPTIONS.index(corruption), index))
    return corruption.apply(images, strength, rng)
