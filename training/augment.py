"""Augmentations that make MNIST digits look like what the service makes of real uploads.

The seed's models only ever saw MNIST's own framing of clean pen strokes. A digit that the service
cuts out of a phone photo or a canvas export differs: it is rotated, sheared or squashed, drawn
with a thinner or thicker pen, blurred or noisy, sometimes faint in places, sometimes carrying a
leftover of a ruling line or a speck next to it, and then re-framed by
`digit_frontend.framing.frame_digit` (binarised, stroke width normalised, longest side to 20 px,
centred by mass). A recipe here distorts each training digit on a 3x upscaled ink map and re-frames
it with that same function, so the model trains on the distribution the service feeds it.

Recipes are data (`RECIPES`, named by `VariantSpec.augmentation` and recorded in the card). Every
image's draw comes from `numpy.random.SeedSequence((seed, epoch, chunk))`, so an epoch's images are
the same bits for a given seed whatever the number of worker processes.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

from digit_contract.errors import NoInk
from digit_contract.inputs import IMAGE_SIDE

Framer = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.uint8]]
"""`frame_digit`'s signature: a 2-D ink map (ink ~1 on 0) in, a 28x28 uint8 MNIST digit out."""

CHUNK = 2_000
"""Images per random stream and per worker task: fixed, so results do not depend on the workers."""


@dataclass(frozen=True)
class AugmentationRecipe:
    """How strongly each distortion is drawn; ranges are uniform unless said otherwise.

    Lengths are in pixels of the 28 px MNIST digit (the upscaled work scales them), angles in
    degrees. A probability says how often a distortion is applied at all.
    """

    name: str
    clean_fraction: float
    """Share of each epoch re-framed without any distortion, so clean digits stay well read."""
    raw_fraction: float
    """Share of each epoch left exactly as MNIST made it: the test set and the service's 28x28
    passthrough path show raw MNIST framing, which differs a little from `frame_digit`'s."""
    upscale: int = 3
    margin: int = 4
    """Empty border (28 px scale) added before distorting, so rotated or grown digits stay whole."""
    rotation_deg: float = 15.0
    shear: float = 0.25
    """Horizontal shear factor, +- (slanted handwriting)."""
    scale: float = 0.10
    aspect: float = 0.08
    """Extra +- scale of the width against the height (narrow or wide writing)."""
    translate: float = 2.0
    elastic_probability: float = 0.7
    elastic_alpha: tuple[float, float] = (16.0, 34.0)
    """Simard et al. (2003): displacement field scale, 34 at 28 px in the paper."""
    elastic_sigma: float = 4.0
    stroke_radius: tuple[int, int] = (-2, 3)
    """Erode (negative) or dilate (positive) by this radius at the upscaled size, inclusive."""
    blur_probability: float = 0.5
    blur_sigma: tuple[float, float] = (0.5, 2.5)
    """Gaussian blur at the upscaled size."""
    fade_probability: float = 0.4
    fade_low: tuple[float, float] = (0.35, 0.9)
    """Ink intensity falls linearly to this level across the digit (pen pressure, light)."""
    noise_probability: float = 0.5
    noise_sigma: tuple[float, float] = (0.02, 0.10)
    """Additive Gaussian pixel noise. Kept below what would survive binarisation as background
    specks all over the canvas: the service's connected-component cleanup removes those first."""
    fragment_probability: float = 0.15
    """A short straight piece of a ruling or grid line left touching the digit's surroundings."""
    speck_probability: float = 0.15
    """One to three small dots near the digit (dust, a pen tap)."""


RECIPES: dict[str, AugmentationRecipe] = {
    "uploads": AugmentationRecipe(name="uploads", clean_fraction=0.2, raw_fraction=0.1),
}


def default_framer() -> Framer:
    """The serving pipeline's own framing (imported late: it is being written alongside)."""
    from digit_frontend.framing import frame_digit

    return frame_digit


# -- one image -----------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _grid(side: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Pixel row and column coordinates of a side x side image (built once: every image reuses it)."""
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32)
    ys.flags.writeable = xs.flags.writeable = False
    return ys, xs


def _upscaled_ink(image: npt.NDArray[np.uint8], recipe: AugmentationRecipe) -> npt.NDArray[np.float32]:
    """The digit as a float ink map in [0, 1], padded by the margin and upscaled."""
    padded = np.pad(image.astype(np.float32) / 255.0, recipe.margin)
    side = padded.shape[0] * recipe.upscale
    return np.asarray(cv2.resize(padded, (side, side), interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0), np.float32)


def _geometric_maps(
    rng: np.random.Generator, side: int, recipe: AugmentationRecipe
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Source coordinates for every output pixel: an affine jitter plus an elastic field."""
    k = recipe.upscale
    angle = math.radians(rng.uniform(-recipe.rotation_deg, recipe.rotation_deg))
    shear = rng.uniform(-recipe.shear, recipe.shear)
    scale = rng.uniform(1.0 - recipe.scale, 1.0 + recipe.scale)
    aspect = rng.uniform(1.0 - recipe.aspect, 1.0 + recipe.aspect)
    shift = rng.uniform(-recipe.translate, recipe.translate, size=2) * k
    # Forward map about the centre: rotate . shear . scale; invert it, since remap pulls from the source.
    cos, sin = math.cos(angle), math.sin(angle)
    forward = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([scale * aspect, scale])
    inverse = np.linalg.inv(forward)
    centre = (side - 1) / 2.0
    ys, xs = _grid(side)
    dx, dy = xs - centre - shift[0], ys - centre - shift[1]
    map_x = (inverse[0, 0] * dx + inverse[0, 1] * dy + centre).astype(np.float32)
    map_y = (inverse[1, 0] * dx + inverse[1, 1] * dy + centre).astype(np.float32)
    if rng.random() < recipe.elastic_probability:
        # Simard's field at the 28 px scale (smooth random displacements), then upsampled: the same
        # distortion as at full size for a fraction of the blur's cost.
        small = side // k
        alpha = rng.uniform(*recipe.elastic_alpha)
        field = rng.uniform(-1.0, 1.0, size=(2, small, small)).astype(np.float32)
        for axis, target in ((0, map_x), (1, map_y)):
            smooth = cv2.GaussianBlur(field[axis], (0, 0), recipe.elastic_sigma) * alpha * k
            target += cv2.resize(smooth, (side, side), interpolation=cv2.INTER_LINEAR)
    return map_x, map_y


def _stroke_width(ink: npt.NDArray[np.float32], radius: int) -> npt.NDArray[np.float32]:
    if radius == 0:
        return ink
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(radius) + 1, 2 * abs(radius) + 1))
    op = cv2.dilate if radius > 0 else cv2.erode
    changed = np.asarray(op(ink, kernel), np.float32)
    # An erosion that wipes a thin digit out would leave nothing to frame: keep the original then.
    return changed if radius > 0 or changed.max() > 0.5 else ink


def _fade(rng: np.random.Generator, ink: npt.NDArray[np.float32], recipe: AugmentationRecipe) -> npt.NDArray[np.float32]:
    """Multiply by a linear ramp from 1 down to `low` in a random direction."""
    side = ink.shape[0]
    theta = rng.uniform(0.0, 2.0 * math.pi)
    low = rng.uniform(*recipe.fade_low)
    ys, xs = _grid(side)
    ramp = math.cos(theta) * xs + math.sin(theta) * ys
    ramp = (ramp - ramp.min()) / max(float(ramp.max() - ramp.min()), 1e-6)
    return np.asarray(ink * (1.0 - (1.0 - low) * ramp), np.float32)


def _near_the_digit(rng: np.random.Generator, ink: npt.NDArray[np.float32], reach: float) -> tuple[int, int]:
    """A point on a ring just outside the digit's bounding box (`reach` px beyond it)."""
    rows, cols = np.nonzero(ink > 0.5)
    if len(rows) == 0:
        return ink.shape[0] // 2, ink.shape[1] // 2
    top, bottom, left, right = rows.min() - reach, rows.max() + reach, cols.min() - reach, cols.max() + reach
    side = rng.integers(4)
    t = rng.random()
    y, x = [(top, left + t * (right - left)), (bottom, left + t * (right - left)),
            (top + t * (bottom - top), left), (top + t * (bottom - top), right)][side]
    limit = ink.shape[0] - 1
    return int(np.clip(y, 0, limit)), int(np.clip(x, 0, limit))


def _leftovers(rng: np.random.Generator, ink: npt.NDArray[np.float32], recipe: AugmentationRecipe) -> None:
    """Draw, in place, what a cleanup of ruled paper and dust can leave next to a digit."""
    k = recipe.upscale
    if rng.random() < recipe.fragment_probability:
        y, x = _near_the_digit(rng, ink, rng.uniform(1.0, 4.0) * k)
        # Ruling and grid lines run (nearly) horizontally or vertically.
        angle = rng.choice([0.0, math.pi / 2]) + rng.normal(0.0, 0.05)
        half = rng.uniform(2.0, 6.0) * k
        dx, dy = half * math.cos(angle), half * math.sin(angle)
        thickness = int(rng.integers(1, k + 1))
        cv2.line(ink, (round(x - dx), round(y - dy)), (round(x + dx), round(y + dy)),
                 float(rng.uniform(0.6, 1.0)), thickness, cv2.LINE_AA)
    if rng.random() < recipe.speck_probability:
        for _ in range(int(rng.integers(1, 4))):
            y, x = _near_the_digit(rng, ink, rng.uniform(0.5, 3.0) * k)
            cv2.circle(ink, (x, y), int(rng.integers(1, k + 1)), float(rng.uniform(0.6, 1.0)), -1, cv2.LINE_AA)


def distort_digit(
    rng: np.random.Generator, image: npt.NDArray[np.uint8], recipe: AugmentationRecipe
) -> npt.NDArray[np.float32]:
    """One MNIST digit (28x28 uint8) as a distorted, upscaled ink map (peak 1.0), ready to frame."""
    ink = _upscaled_ink(image, recipe)
    map_x, map_y = _geometric_maps(rng, ink.shape[0], recipe)
    ink = np.asarray(cv2.remap(ink, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0),
                     np.float32)
    low, high = recipe.stroke_radius
    ink = _stroke_width(ink, int(rng.integers(low, high + 1)))
    if rng.random() < recipe.fade_probability:
        ink = _fade(rng, ink, recipe)
    _leftovers(rng, ink, recipe)
    if rng.random() < recipe.blur_probability:
        ink = np.asarray(cv2.GaussianBlur(ink, (0, 0), rng.uniform(*recipe.blur_sigma)), np.float32)
    if rng.random() < recipe.noise_probability:
        ink = ink + rng.standard_normal(ink.shape, dtype=np.float32) * np.float32(rng.uniform(*recipe.noise_sigma))
    ink = np.clip(ink, 0.0, 1.0)
    # The service hands frame_digit an ink map stretched so the darkest ink is 1; do the same.
    peak = float(ink.max())
    return np.asarray(ink / peak if peak > 0 else ink, np.float32)


def frame_clean(image: npt.NDArray[np.uint8], recipe: AugmentationRecipe, frame: Framer) -> npt.NDArray[np.uint8]:
    """An undistorted digit, re-framed the way the service frames uploads."""
    return frame(_upscaled_ink(image, recipe))


# -- a whole split -------------------------------------------------------------------------


def augment_chunk(
    images: npt.NDArray[np.uint8],
    recipe: AugmentationRecipe,
    entropy: tuple[int, ...],
    frame: Framer | None = None,
) -> npt.NDArray[np.uint8]:
    """Augment one chunk of digits from one random stream; returns uint8 (N, 28, 28)."""
    frame = frame or default_framer()
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    # Which images stay raw, which are only re-framed, which are distorted: one draw per image.
    kind = rng.random(len(images))
    out = np.empty((len(images), IMAGE_SIDE, IMAGE_SIDE), np.uint8)
    for i, image in enumerate(images):
        if kind[i] < recipe.raw_fraction:
            out[i] = image
        elif kind[i] < recipe.raw_fraction + recipe.clean_fraction:
            out[i] = frame_clean(image, recipe, frame)
        else:
            try:
                out[i] = frame(distort_digit(rng, image, recipe))
            except (NoInk, ValueError):
                # A draw that leaves no frameable ink (frame_digit raises NoInk; a stand-in framer
                # may raise ValueError) falls back to the clean framing of that digit.
                out[i] = frame_clean(image, recipe, frame)
    return out


def _chunk_task(args: tuple[npt.NDArray[np.uint8], AugmentationRecipe, tuple[int, ...]]) -> npt.NDArray[np.uint8]:
    images, recipe, entropy = args
    return augment_chunk(images, recipe, entropy)


class Augmenter:
    """Produces each epoch's augmented copy of the training images, in worker processes.

    Use as a context manager: the workers (spawned, so they never inherit TensorFlow's threads)
    live as long as the block.
    """

    def __init__(self, recipe: AugmentationRecipe, seed: int, workers: int = 1, frame: Framer | None = None) -> None:
        self.recipe, self.seed, self.workers, self.frame = recipe, seed, workers, frame
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Augmenter:
        if self.workers > 1:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def epoch(self, images: npt.NDArray[np.uint8], epoch: int) -> npt.NDArray[np.uint8]:
        """The augmented images of one epoch, in the input order (uint8, (N, 28, 28))."""
        return self.start_epoch(images, epoch)()

    def start_epoch(self, images: npt.NDArray[np.uint8], epoch: int) -> Callable[[], npt.NDArray[np.uint8]]:
        """Begin generating an epoch in the workers; the returned function waits for its images.

        The trainer starts epoch e + 1 before fitting epoch e, so generation and TensorFlow overlap.
        """
        tasks = [(images[start : start + CHUNK], self.recipe, (self.seed, epoch, start // CHUNK))
                 for start in range(0, len(images), CHUNK)]
        if not tasks:
            return lambda: images[:0].copy()
        if self._pool is None or self.frame is not None:
            # A custom framer (tests, stand-ins) may not pickle: run in this process, now.
            done = np.concatenate([augment_chunk(*task, frame=self.frame) for task in tasks])
            return lambda: done
        futures = [self._pool.submit(_chunk_task, task) for task in tasks]
        return lambda: np.concatenate([future.result() for future in futures])


@contextmanager
def augmenter(name: str, seed: int, workers: int = 1) -> Iterator[Augmenter]:
    """An `Augmenter` for the recipe called `name`."""
    with Augmenter(RECIPES[name], seed, workers) as started:
        yield started
