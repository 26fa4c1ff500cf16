"""Renderer A's forced conditions (issue 21): each draws what it names, with the digit's ink exact."""

from __future__ import annotations

import numpy as np
import pytest

from training.data import Mnist
from training.ink_scenes import CONDITIONS, render_scene, uci_like


def digit_of(sample: Mnist, index: int = 0) -> np.ndarray:
    return np.asarray(sample.validation.images[index], np.uint8)


@pytest.mark.parametrize("condition", CONDITIONS)
def test_every_condition_draws_the_digit_with_its_ink(sample: Mnist, condition: str) -> None:
    rng = np.random.default_rng(0)
    inked = 0
    for index in range(12):
        scene = render_scene(digit_of(sample, index), 3, rng, condition)
        assert scene.image.shape == scene.ink.shape and scene.image.dtype == np.uint8
        assert set(np.unique(scene.ink)) <= {0, 1}
        inked += int(scene.ink.sum() >= 10)
    # A digit may land beyond the frame on a page the frame cuts; nearly every scene shows it.
    assert inked >= 10


def test_an_unknown_condition_is_refused_by_name(sample: Mnist) -> None:
    with pytest.raises(ValueError, match="unknown condition 'fog'"):
        render_scene(digit_of(sample), 0, np.random.default_rng(0), "fog")


def test_a_clean_digit_fills_most_of_the_frame_and_an_8x8_one_is_drawn_as_blocks(sample: Mnist) -> None:
    rng = np.random.default_rng(1)
    for digit in (digit_of(sample), uci_like(digit_of(sample))):
        scene = render_scene(digit, 5, rng, "clean")
        rows = np.flatnonzero(scene.ink.any(axis=1))
        assert (rows[-1] - rows[0] + 1) / min(scene.ink.shape) >= 0.45


def test_a_small_digit_is_under_a_tenth_of_the_frame(sample: Mnist) -> None:
    rng = np.random.default_rng(2)
    for index in range(10):
        scene = render_scene(digit_of(sample, index), 1, rng, "small")
        rows = np.flatnonzero(scene.ink.any(axis=1))
        if len(rows):
            # The height is drawn under 10% before rotation and perspective, which may stretch it a little.
            assert (rows[-1] - rows[0] + 1) / min(scene.ink.shape) < 0.16


def test_a_faint_pencil_keeps_its_whole_path_as_ink(sample: Mnist) -> None:
    """The mask is where the pencil went, faint or skipped stretches included: the whole digit is the answer."""
    rng = np.random.default_rng(3)
    contrasts = []
    for index in range(10):
        scene = render_scene(digit_of(sample, index), 0, rng, "pencil")
        ink, image = scene.ink.astype(bool), scene.image.astype(np.float32)
        if ink.sum() >= 10:
            contrasts.append(abs(float(np.median(image[~ink]) - np.median(image[ink]))))
    assert contrasts and float(np.median(contrasts)) < 80  # low contrast: graphite, not a marker


def test_uci_like_counts_a_digit_into_8x8_blocks_of_0_to_255(sample: Mnist) -> None:
    blocks = uci_like(digit_of(sample))
    assert blocks.shape == (8, 8) and blocks.dtype == np.uint8
    assert blocks.max() == 255 and blocks.min() == 0
    assert not uci_like(np.zeros((28, 28), np.uint8)).any()
