"""Renderer A's forced conditions (issue 21): each draws what it names, with the digit's ink exact, and
its photos without writing hold no ink at all."""

from __future__ import annotations

import numpy as np
import pytest

from training.data import Mnist
from training.ink_scenes import (
    CONDITIONS,
    DESKS,
    EMPTY_KINDS,
    NO_DIGIT_CONDITIONS,
    render_empty,
    render_scene,
    surface,
    uci_like,
)


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


@pytest.mark.parametrize("condition", NO_DIGIT_CONDITIONS)
def test_a_no_digit_condition_ignores_the_digit_and_holds_no_ink(sample: Mnist, condition: str) -> None:
    rng = np.random.default_rng(4)
    for index in range(4):
        scene = render_scene(digit_of(sample, index), 7, rng, condition)
        assert scene.label == -1 and not scene.ink.any()
        assert scene.image.shape == scene.ink.shape and scene.image.dtype == np.uint8
        assert min(scene.image.shape) >= 32 and float(scene.image.std()) > 0  # a photo of something, not a void


@pytest.mark.parametrize("kind", EMPTY_KINDS)
def test_every_empty_photo_kind_is_drawn_without_ink(kind: str) -> None:
    scene = render_empty(np.random.default_rng(5), kind)
    assert scene.label == -1 and not scene.ink.any() and scene.image.dtype == np.uint8


def test_a_page_edge_shows_paper_and_desk_side_by_side() -> None:
    """With "edge" part of the frame is the page (light, flat) and part the desk: the two halves differ."""
    spreads = []
    for seed in range(6):
        image = render_empty(np.random.default_rng(seed), "edge").image.astype(np.float32)
        spreads.append(float(np.percentile(image, 95) - np.percentile(image, 5)))
    assert float(np.median(spreads)) > 40


def test_an_unknown_empty_kind_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown empty scene 'lawn'"):
        render_empty(np.random.default_rng(0), "lawn")


def test_a_forced_desk_draws_its_own_surface() -> None:
    """A gingham desk is a check pattern: its rows alternate between two levels; a plain one is flat."""
    gingham = surface(120, 120, np.random.default_rng(6), "gingham")
    plain = surface(120, 120, np.random.default_rng(6), "plain")
    assert float(gingham.std()) > 0.05 > float(plain.std())
    assert set(DESKS) >= {"wood", "cloth", "gingham", "keyboard", "clutter", "plain"}


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
