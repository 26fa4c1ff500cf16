"""The pair reader's training data and its scoring (training.pair_reader): what the reader learns from."""

from __future__ import annotations

import numpy as np

from digit_frontend.pairs import FRAME
from training.data import RawSplit
from training.pair_reader import _targets, evaluate, sample


def test_samples_are_whole_line_candidates_framed_and_labelled(mnist_test: RawSplit) -> None:
    rng = np.random.default_rng(0)
    got = [s for s in (sample(mnist_test.images, mnist_test.labels, rng) for _ in range(30)) if s is not None]
    assert len(got) >= 10, "most one- and two-digit numbers offer a candidate spanning the line"
    for frame, (left, right, is_pair) in got:
        assert frame.shape == FRAME and frame.min() >= 0.0 and frame.max() <= 1.0 and frame.max() > 0.5
        assert 0 <= left <= 9 and 0 <= right <= 9 and is_pair in (0, 1)
        if not is_pair:
            assert left == right  # a lone digit: its sides are not trained
    assert {label[2] for _, label in got} == {0, 1}


def test_a_lone_digit_trains_only_whether_it_is_a_pair() -> None:
    labels = np.array([[3, 7, 1], [5, 5, 0]], np.uint8)
    (_, _, pair), (left_weight, right_weight, pair_weight) = _targets(labels)
    assert list(pair) == [1.0, 0.0]
    assert list(left_weight) == [1.0, 0.0] and list(right_weight) == [1.0, 0.0]
    assert list(pair_weight) == [1.0, 1.0]


def test_evaluation_counts_a_pair_read_only_when_both_digits_are_right() -> None:
    labels = np.array([[3, 7, 1], [2, 2, 1], [5, 5, 0]], np.uint8)
    out = np.zeros((3, 21), np.float32)
    out[0, 3], out[0, 10 + 7], out[0, 20] = 1, 1, 0.9  # both right, a pair
    out[1, 2], out[1, 10 + 3], out[1, 20] = 1, 1, 0.9  # right side wrong
    out[2, 5], out[2, 10 + 5], out[2, 20] = 1, 1, 0.8  # a lone digit taken for a pair
    assert evaluate(out, labels) == {"pairs_read": 0.5, "pair_or_not": 2 / 3}
