"""Fixtures every test package may use: the shipped MNIST sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.data import TEST_IMAGES, TEST_LABELS, RawSplit, load_split

SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "mnist-sample"


@pytest.fixture(scope="session")
def mnist_test() -> RawSplit:
    """The first 500 MNIST test images, uint8 white-on-black, and their labels."""
    split, _ = load_split(SAMPLE_DIR, TEST_IMAGES, TEST_LABELS)
    return split
