"""Fixtures for the training tests: the small real MNIST sample and IDX files to break."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from training.data import Mnist, load_mnist

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "mnist-sample"


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def sample() -> Mnist:
    """2,250 training, 250 validation and 500 test images of real MNIST."""
    return load_mnist(SAMPLE_DIR, download=False)


@pytest.fixture
def raw_sample_dir(tmp_path: Path) -> Path:
    """A writable, uncompressed copy of the sample, for tests that corrupt a file."""
    target = tmp_path / "mnist"
    target.mkdir()
    for gz in SAMPLE_DIR.glob("*.gz"):
        (target / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
    return target


@pytest.fixture
def gz_sample_dir(tmp_path: Path) -> Path:
    target = tmp_path / "mnist-gz"
    shutil.copytree(SAMPLE_DIR, target)
    return target
