"""A short real training run on the MNIST sample, end to end through export and publication."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from digit_contract.card import ModelCard
from digit_contract.store import CARD_FILE, MODEL_FILE, list_models
from training.data import Mnist, as_model_input
from training.evaluate import evaluate_onnx
from training.trainer import TrainingConfig, fit_variant, train_and_publish
from training.variants import VARIANTS_BY_NAME

# Stated targets for the short runs below, on the 500 held-out sample test images (never seen in
# training). Measured here: cnn_noise, 10 epochs: 0.948 (seed 7), 0.946 (seed 8); mlp_dropout,
# 15 epochs: 0.880 (seed 7), 0.882 (seed 8). The targets leave room for run-to-run jitter.
CNN_SHORT_RUN_ACCURACY = 0.92
MLP_SHORT_RUN_ACCURACY = 0.85


def test_short_cnn_training_learns_the_digits(sample: Mnist) -> None:
    config = TrainingConfig(epochs=10, seed=7)
    model, history, seconds = fit_variant(VARIANTS_BY_NAME["cnn_noise"], sample, config)
    assert [h.epoch for h in history] == list(range(1, 11))
    assert history[-1].loss < history[0].loss
    predicted = model(as_model_input(sample.test), training=False).numpy().argmax(axis=1)
    accuracy = float((predicted == sample.test.labels).mean())
    assert accuracy >= CNN_SHORT_RUN_ACCURACY, accuracy
    assert seconds > 0


@pytest.fixture(scope="module")
def published(sample: Mnist, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModelCard]:
    store = tmp_path_factory.mktemp("store")
    card = train_and_publish(VARIANTS_BY_NAME["mlp_dropout"], sample, TrainingConfig(epochs=15, seed=7), store)
    return store, card


def test_publication_writes_a_valid_versioned_card(published: tuple[Path, ModelCard], sample: Mnist) -> None:
    store, card = published
    assert list_models(store) == {"mlp_dropout": [1]}
    on_disk = ModelCard.read(store / "mlp_dropout" / "1" / CARD_FILE)
    assert on_disk == card
    assert (card.name, card.version, card.architecture, card.seed) == ("mlp_dropout", 1, "mlp", 7)
    assert card.hyperparameters.dropout_rate == 0.5 and card.hyperparameters.epochs == 15
    assert card.parameter_count == 34_990
    assert card.dataset.test_samples == 500 and card.dataset.train_samples == 2250
    assert card.test_accuracy >= MLP_SHORT_RUN_ACCURACY, card.test_accuracy
    assert set(card.library_versions) >= {"python", "tensorflow", "onnx", "onnxruntime", "tf2onnx"}


def test_card_metrics_are_those_of_the_onnx_file(published: tuple[Path, ModelCard], sample: Mnist) -> None:
    store, card = published
    onnx_path = store / "mlp_dropout" / "1" / MODEL_FILE
    metrics = evaluate_onnx(onnx_path, as_model_input(sample.test), sample.test.labels)
    assert card.test_accuracy == metrics.accuracy
    assert [m.index for m in card.misclassified] == metrics.misclassified_indices
    assert card.confusion_matrix == metrics.confusion_matrix
    assert card.onnx.sha256 == hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    assert card.onnx.size_bytes == onnx_path.stat().st_size
    assert 0 <= card.onnx.max_abs_diff_vs_keras <= 1e-5


def test_second_run_publishes_version_two(published: tuple[Path, ModelCard], sample: Mnist) -> None:
    store, _ = published
    card = train_and_publish(VARIANTS_BY_NAME["mlp_dropout"], sample, TrainingConfig(epochs=1, seed=8), store)
    assert card.version == 2
    assert list_models(store) == {"mlp_dropout": [1, 2]}
    assert [p.name for p in (store / "mlp_dropout").iterdir() if p.name.startswith(".")] == []
    assert not np.isnan(card.test_loss)


def test_report_renders_from_the_cards(published: tuple[Path, ModelCard], sample_dir: Path, tmp_path: Path) -> None:
    from training.report import render_report

    store, _ = published
    written = render_report(store, tmp_path, data_dir=sample_dir)
    assert [p.name for p in written] == ["curves.png", "confusion.png", "misclassified.png", "seed_spread.png",
                                         "results.md"]
    for png in written[:3]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    latest = ModelCard.read(store / "mlp_dropout" / "2" / CARD_FILE)
    row = next(line for line in (tmp_path / "results.md").read_text().splitlines() if "mlp_dropout" in line)
    assert f"| {100 * latest.test_accuracy:.2f}% (" in row and f") | {latest.test_errors} |" in row
