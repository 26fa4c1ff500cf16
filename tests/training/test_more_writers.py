"""The second population of writers (`training.more_writers`): what it trains on and what it holds out."""

from __future__ import annotations

import numpy as np

from digit_frontend.framing import frame_digit
from digit_frontend.pipeline import upscale_blocks
from training.data import Mnist
from training.ink_writers import uci_split
from training.more_writers import UCI_REPEATS, uci_as_uploads, uci_fit_and_validation, with_other_writers


def test_uci_digits_are_framed_as_the_service_frames_an_upload_of_one() -> None:
    counts, _ = uci_split("train")
    framed = uci_as_uploads(counts[:5])
    assert framed.shape == (5, 28, 28) and framed.dtype == np.uint8
    expected = frame_digit(upscale_blocks(counts[3]).astype(np.float32) / 255.0)
    np.testing.assert_array_equal(framed[3], expected)


def test_the_held_out_fifth_is_fixed_by_the_seed_and_all_comes_from_the_training_split() -> None:
    fit, held = uci_fit_and_validation(1234)
    _, again_held = uci_fit_and_validation(1234)
    np.testing.assert_array_equal(held.images, again_held.images)
    train_counts, train_labels = uci_split("train")
    assert len(held) == round(0.2 * len(train_counts))
    # Together, exactly the training split's digits (the test split, which the evaluations draw
    # from, is not among them): the same framed images with the same labels, as multisets.
    def as_multiset(images: np.ndarray, labels: np.ndarray) -> list[bytes]:
        return sorted(image.tobytes() + bytes([int(label)]) for image, label in zip(images, labels, strict=True))

    together = as_multiset(np.concatenate([fit.images, held.images]), np.concatenate([fit.labels, held.labels]))
    assert together == as_multiset(uci_as_uploads(train_counts), train_labels)
    assert fit.labels.dtype == np.uint8 and set(np.unique(fit.labels)) == set(range(10))


def test_the_uci_digits_join_mnists_training_split_several_times_over(sample: Mnist) -> None:
    fit, _ = uci_fit_and_validation(0)
    data = with_other_writers(sample, fit)
    assert len(data.train) == len(sample.train) + UCI_REPEATS * len(fit)
    np.testing.assert_array_equal(data.train.images[len(sample.train):len(sample.train) + len(fit)], fit.images)
    assert data.validation is sample.validation and data.test is sample.test
