"""The upload-style augmentations: seeded, well-formed, distorting, and framed like the service frames."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from digit_frontend.framing import frame_digit
from training import augment
from training.augment import RECIPES, Augmenter, augment_chunk, distort_digit, frame_clean
from training.data import Mnist

RECIPE = RECIPES["uploads"]


@pytest.fixture(scope="module")
def digits(sample: Mnist) -> npt.NDArray[np.uint8]:
    """200 real training digits."""
    return sample.train.images[:200]


def test_same_seed_gives_the_same_bits_and_another_seed_does_not(digits: npt.NDArray[np.uint8]) -> None:
    first = augment_chunk(digits, RECIPE, (1234, 0, 0))
    assert np.array_equal(first, augment_chunk(digits, RECIPE, (1234, 0, 0)))
    assert not np.array_equal(first, augment_chunk(digits, RECIPE, (1234, 1, 0)))


def test_output_keeps_shape_dtype_and_range(digits: npt.NDArray[np.uint8]) -> None:
    out = augment_chunk(digits, RECIPE, (7, 0, 0))
    assert (out.shape, out.dtype) == (digits.shape, np.uint8)
    peaks = out.reshape(len(out), -1).max(axis=1)
    raw = np.all(out == digits, axis=(1, 2))
    # frame_digit stretches the ink to 255; raw digits keep MNIST's own levels; none comes back blank.
    assert (peaks[~raw] == 255).all() and (peaks > 0).all()


def test_most_digits_change_and_the_raw_share_stays_as_mnist_made_it(digits: npt.NDArray[np.uint8]) -> None:
    out = augment_chunk(digits, RECIPE, (7, 0, 0))
    unchanged = np.all(out == digits, axis=(1, 2)).mean()
    # raw_fraction = 0.1 of 200 draws: well inside 0.02-0.2; the rest is re-framed or distorted.
    assert 0.02 < unchanged < 0.2
    raw_only = augment_chunk(digits, replace(RECIPE, raw_fraction=1.0, clean_fraction=0.0), (7, 0, 0))
    assert np.array_equal(raw_only, digits)


def test_distorted_digits_are_reframed_like_uploads(digits: npt.NDArray[np.uint8]) -> None:
    out = augment_chunk(digits, replace(RECIPE, raw_fraction=0.0, clean_fraction=0.0), (3, 0, 0))
    sides, centres = [], []
    for image in out:
        rows, cols = np.nonzero(image)
        sides.append(max(np.ptp(rows), np.ptp(cols)) + 1)
        weights = image.astype(np.float64)
        centres.append((weights.sum(axis=1) @ np.arange(28), weights.sum(axis=0) @ np.arange(28)) / weights.sum())
    # MNIST framing as frame_digit does it: the longest side 20 px (a little less where it thickened
    # thin strokes inside a padded box), the centre of mass within half a pixel of (14, 14).
    assert min(sides) >= 16 and max(sides) == 20 and np.mean(np.array(sides) == 20) > 0.8
    assert np.abs(np.array(centres) - 14.0).max() <= 0.75


def test_clean_share_is_the_service_framing_of_the_undistorted_digit(digits: npt.NDArray[np.uint8]) -> None:
    clean_only = augment_chunk(digits[:20], replace(RECIPE, raw_fraction=0.0, clean_fraction=1.0), (3, 0, 0))
    assert np.array_equal(clean_only, np.stack([frame_clean(d, RECIPE, frame_digit) for d in digits[:20]]))
    assert not np.array_equal(clean_only, digits[:20])


def test_distortion_gives_a_float_ink_map_at_the_upscaled_size(digits: npt.NDArray[np.uint8]) -> None:
    ink = distort_digit(np.random.default_rng(0), digits[0], RECIPE)
    side = (28 + 2 * RECIPE.margin) * RECIPE.upscale
    assert (ink.shape, ink.dtype) == ((side, side), np.float32)
    assert ink.min() >= 0.0 and ink.max() == pytest.approx(1.0)


def test_an_epoch_does_not_depend_on_the_number_of_workers(
    digits: npt.NDArray[np.uint8], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Four chunks (the parent cuts them), so two workers really share the epoch.
    monkeypatch.setattr(augment, "CHUNK", 50)
    with Augmenter(RECIPE, seed=5, workers=1) as one:
        alone = one.epoch(digits, 2)
    with Augmenter(RECIPE, seed=5, workers=2) as two:
        pooled = two.epoch(digits, 2)
        next_epoch = two.epoch(digits, 3)
    assert np.array_equal(alone, pooled)
    assert not np.array_equal(pooled, next_epoch)
