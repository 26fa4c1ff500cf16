"""Fixtures for the service tests: the real model store, apps built on it, images, broken stores.

Every test reads the store from the `store` fixture: the committed `model_store/` of the repository,
or `DIGITS_TEST_STORE` where that is set (a quicker store while developing). Tests that need a
broken store copy models from it into `tmp_path` and break the copy.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from digit_contract.card import ModelCard
from digit_contract.store import CARD_FILE, MODEL_FILE, latest_version, list_models, version_dir
from service.server.app import create_app
from service.settings import Settings

REPO = Path(__file__).resolve().parents[2]
STORE_ENV = "DIGITS_TEST_STORE"
SAMPLE_DIR = REPO / "tests" / "data" / "mnist-sample"
# The six seed variants and the extra cnn_augmented (issue 8), in the order the service lists them.
MODEL_NAMES = ("cnn", "cnn_augmented", "cnn_dropout", "cnn_noise", "mlp", "mlp_dropout", "mlp_noise")
AVAILABLE = ", ".join(MODEL_NAMES)


def seed_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seed 000's seven models copied out of the committed zoo (or out of DIGITS_TEST_STORE), with
    the records kept beside them; the store itself where it holds exactly those seven.

    The zoo holds other experiments too (8x8 inputs, other datasets); the service and protocol
    tests pin behaviour on one known set of models, and tests/service/models/test_zoo_serving.py serves
    the whole zoo.
    """
    source = Path(os.environ.get(STORE_ENV) or REPO / "model_store")
    found = list_models(source)
    missing = sorted(set(MODEL_NAMES) - set(found))
    if missing:
        pytest.fail(f"the test store {source} should hold {', '.join(MODEL_NAMES)}, lacks {', '.join(missing)}")
    if set(found) == set(MODEL_NAMES):
        return source
    path = tmp_path_factory.mktemp("seed-store")
    for entry in source.iterdir():
        if entry.name in found and entry.name not in MODEL_NAMES:
            continue  # another experiment's model
        if entry.is_dir():
            shutil.copytree(entry, path / entry.name)
        else:
            shutil.copy2(entry, path / entry.name)
    return path


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model store the service tests serve: `seed_store`."""
    return seed_store(tmp_path_factory)


def make_settings(store: Path, **overrides: Any) -> Settings:
    """Settings for a test app: the given store, quick warm-up, on the CPU, the models' raw probabilities
    (tests compare them with ONNX Runtime's; test_comparison_serving.py covers calibrated answers)."""
    values: dict[str, Any] = {"model_store": store, "device": "cpu", "warmup_runs": 3,
                              "calibrated_probabilities": False, **overrides}
    return Settings(**values)


@pytest.fixture
def app_factory(store: Path) -> Callable[..., FastAPI]:
    """`app_factory(**settings)` builds an app on the test store (or on `model_store=...`)."""

    def build(*, session_factory: Any = None, available_providers: list[str] | None = None, **overrides: Any) -> FastAPI:
        settings = make_settings(overrides.pop("model_store", store), **overrides)
        extra: dict[str, Any] = {"available_providers": available_providers}
        if session_factory is not None:
            extra["session_factory"] = session_factory
        return create_app(settings, **extra)

    return build


@pytest.fixture(scope="module")
def client(store: Path) -> Iterator[TestClient]:
    """One started app on the real store, shared by a module's read-only tests."""
    with TestClient(create_app(make_settings(store))) as started:
        yield started


# -- images ------------------------------------------------------------------------------------


def multipart(*payloads: bytes, field: str = "file") -> list[tuple[str, tuple[str, bytes, str]]]:
    """`files=` for TestClient: one part per payload, all under `field`, named digit-<i>.png."""
    return [(field, (f"digit-{i}.png", data, "image/png")) for i, data in enumerate(payloads)]


# -- broken stores -----------------------------------------------------------------------------


@pytest.fixture
def copy_store(store: Path, tmp_path: Path) -> Callable[..., Path]:
    """`copy_store("cnn", "mlp")`: a writable store in tmp_path holding copies of those models."""

    def copy(*names: str) -> Path:
        target = tmp_path / "store"
        for name in names:
            version = latest_version(store, name)
            assert version is not None
            shutil.copytree(version_dir(store, name, version), version_dir(target, name, version))
        return target

    return copy


def model_files(store: Path, name: str) -> tuple[Path, Path]:
    """(model.onnx, card.json) of the latest version of `name` in `store`."""
    version = latest_version(store, name)
    assert version is not None
    directory = version_dir(store, name, version)
    return directory / MODEL_FILE, directory / CARD_FILE


def edit_card(path: Path, **changes: Any) -> None:
    """Rewrite keys of a card file in place (dotted keys reach into objects: `onnx.sha256`)."""
    raw = json.loads(path.read_text())
    for key, value in changes.items():
        target = raw
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    path.write_text(json.dumps(raw))


def raw_probabilities(store: Path, name: str, images: np.ndarray) -> np.ndarray:
    """What the ONNX file itself says about uint8 MNIST digits (the reference for the service)."""
    session = ort.InferenceSession(str(model_files(store, name)[0]), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"image": images[..., None].astype(np.float32) / np.float32(255)})[0])


def best_model(store: Path) -> str:
    cards = [ModelCard.read(model_files(store, name)[1]) for name in MODEL_NAMES]
    return min(cards, key=lambda c: (-c.test_accuracy, c.test_loss, c.name)).name
