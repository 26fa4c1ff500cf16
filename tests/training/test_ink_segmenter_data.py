"""The segmenter's training samples (`training.ink_segmenter.samples_of`): a coarse view of every scene,
and a fine crop, around the digit or, on a photo without writing, anywhere with no ink in it."""

from __future__ import annotations

import numpy as np

from training.data import Mnist
from training.ink_scenes import render_empty, render_scene
from training.ink_segmenter import COARSE_SIDE, FINE_SIDE, samples_of


def test_an_empty_photo_gives_a_fine_crop_with_no_ink() -> None:
    rng = np.random.default_rng(0)
    for kind in ("gingham", "clutter", "edge"):
        (coarse, coarse_ink), (fine, fine_ink) = samples_of(render_empty(rng, kind), rng)
        assert coarse.shape == coarse_ink.shape == (COARSE_SIDE, COARSE_SIDE)
        assert fine.shape == fine_ink.shape == (FINE_SIDE, FINE_SIDE)
        assert not coarse_ink.any() and not fine_ink.any()
        assert float(fine.std()) > 0  # a crop of the photo, not padding


def test_a_digit_scene_gives_a_fine_crop_around_its_ink(sample: Mnist) -> None:
    rng = np.random.default_rng(1)
    scene = render_scene(np.asarray(sample.validation.images[0], np.uint8), 5, rng, "clean")
    (_, coarse_ink), (_, fine_ink) = samples_of(scene, rng)
    assert coarse_ink.any()
    middle = fine_ink[FINE_SIDE // 4 : 3 * FINE_SIDE // 4, FINE_SIDE // 4 : 3 * FINE_SIDE // 4]
    assert middle.sum() > 0.5 * fine_ink.sum() > 0  # the crop is centred on the digit (within 12% of its side)
