"""Seed 001's universal workflow: its split, distortions, tuning rule, and an end-to-end run on the sample."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import numpy as np
import onnx
import pytest

from digit_contract.card import EpochRecord, ModelCard
from digit_contract.inputs import MNIST_INPUT
from digit_contract.records import read_experiments
from digit_contract.store import CARD_FILE, MODEL_FILE
from training.data import TRAIN_IMAGES, Mnist, load_split
from training.dense import build_dense, load_dense_split, overfitting_epoch
from training.experiments import EXPERIMENTS, ExperimentRun
from training.export import PARITY_TOLERANCE
from training.universal_workflow import (
    DISTORTION,
    SELECTION_EPOCHS,
    VARIANTS,
    distort_chunk,
    learning_rate_at,
    selection_score,
)

EXPERIMENT = EXPERIMENTS["universal-workflow"]
DENSE_OPS = {"MatMul", "Add", "Relu", "Softmax", "Reshape", "Gemm", "Flatten", "Identity", "Cast", "Shape", "Concat"}


def _epoch(n: int, val_loss: float, val_accuracy: float = 0.9) -> EpochRecord:
    return EpochRecord(epoch=n, loss=0.1, accuracy=0.95, val_loss=val_loss, val_accuracy=val_accuracy)


def test_split_validates_on_the_last_sixth_of_the_training_images_in_file_order(sample_dir: Path) -> None:
    split = load_dense_split(ExperimentRun(store=Path("unused"), data_dir=sample_dir, download=False))
    raw, _ = load_split(sample_dir, TRAIN_IMAGES, "train-labels-idx1-ubyte")
    n_val = round(len(raw) / 6)  # 10,000 of 60,000
    assert len(split.validation) == n_val and len(split.train) == len(raw) - n_val
    np.testing.assert_array_equal(split.validation.images, raw.images[-n_val:])
    np.testing.assert_array_equal(split.train.labels, raw.labels[:-n_val])


def test_distortions_follow_their_seed_and_change_every_epoch(sample: Mnist) -> None:
    images = sample.train.images[:64]
    first = distort_chunk(images, DISTORTION, (1234, 0, 0))
    assert first.shape == images.shape and first.dtype == np.uint8
    np.testing.assert_array_equal(first, distort_chunk(images, DISTORTION, (1234, 0, 0)))
    other_epoch = distort_chunk(images, DISTORTION, (1234, 1, 0))
    assert (first != other_epoch).any(axis=(1, 2)).mean() > 0.8
    # Most digits move, but ink is neither created from nothing nor wiped out.
    assert (first != images).any(axis=(1, 2)).mean() > 0.7
    ink_ratio = first.astype(float).sum(axis=(1, 2)) / images.astype(float).sum(axis=(1, 2))
    assert 0.6 < np.median(ink_ratio) < 1.4


def test_learning_rate_decays_geometrically_from_the_initial_to_the_final_rate() -> None:
    tuned = VARIANTS["dense_tuned"]
    assert tuned.final_learning_rate is not None
    rates = [learning_rate_at(tuned, e, 11) for e in range(11)]
    assert rates[0] == pytest.approx(tuned.learning_rate)
    assert rates[-1] == pytest.approx(tuned.final_learning_rate)
    assert all(b < a for a, b in itertools.pairwise(rates))
    assert rates[5] == pytest.approx((tuned.learning_rate * tuned.final_learning_rate) ** 0.5)
    assert learning_rate_at(VARIANTS["dense_baseline"], 7, 20) == VARIANTS["dense_baseline"].learning_rate


def test_overfitting_starts_at_the_epoch_of_lowest_validation_loss() -> None:
    history = [_epoch(1, 0.30), _epoch(2, 0.12), _epoch(3, 0.09), _epoch(4, 0.11), _epoch(5, 0.15)]
    assert overfitting_epoch(history).epoch == 3


def test_a_candidate_is_scored_by_its_last_epochs_on_validation() -> None:
    history = [_epoch(n, 0.1, val_accuracy=0.5 if n <= 10 else 0.9 + n / 1000) for n in range(1, 16)]
    tail = [0.9 + n / 1000 for n in range(16 - SELECTION_EPOCHS, 16)]
    assert selection_score(history) == pytest.approx(sum(tail) / SELECTION_EPOCHS)


def test_models_are_dense_and_dropout_only() -> None:
    for variant in VARIANTS.values():
        layers = {type(layer).__name__ for layer in build_dense(variant.widths, dropout=variant.dropout).layers}
        assert layers <= {"Flatten", "Dense", "Dropout"}, variant.name
        assert ("Dropout" in layers) is (variant.dropout > 0)


@pytest.fixture(scope="module")
def workflow(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[ModelCard], Path]:
    store = tmp_path_factory.mktemp("store")
    # One epoch of each model (two dense_tuned candidates) on the sample: ~15 s on 2 idle cores.
    run = ExperimentRun(store=store, data_dir=sample_dir, download=False, epochs=1,
                        options={"tuned_dropouts": "0.2,0.4", "augment_workers": "0"})
    return EXPERIMENT.load_trainer()(EXPERIMENT, run), store


@pytest.mark.slow
def test_workflow_publishes_its_three_models_with_validated_cards(workflow: tuple[list[ModelCard], Path]) -> None:
    cards, store = workflow
    assert [c.name for c in cards] == ["dense_baseline", "dense_large", "dense_tuned"]
    for card in cards:
        stored = ModelCard.read(store / card.name / "1" / CARD_FILE)
        assert stored == card
        assert (card.experiment, card.architecture, card.framework) == ("universal-workflow", "mlp", "keras")
        assert card.input == MNIST_INPUT
        assert card.dataset.validation_samples == round(card.dataset.train_samples / 5)
        assert len(card.history) == card.hyperparameters.epochs == 1
        assert card.history[0].val_accuracy is not None and card.history[0].val_loss is not None
    widths = {c.name: c.hyperparameters.settings["hidden_layers"] for c in cards}
    assert widths == {"dense_baseline": [64], "dense_large": [256, 256], "dense_tuned": [1024, 1024]}
    assert [c.hyperparameters.optimizer for c in cards] == ["rmsprop", "rmsprop", "adam"]
    assert cards[2].hyperparameters.augmentation == "elastic-affine"


@pytest.mark.slow
def test_workflow_exports_parity_checked_dense_graphs(workflow: tuple[list[ModelCard], Path]) -> None:
    cards, store = workflow
    for card in cards:
        path = store / card.name / "1" / MODEL_FILE
        assert hashlib.sha256(path.read_bytes()).hexdigest() == card.onnx.sha256
        assert card.onnx.max_abs_diff_vs_keras <= PARITY_TOLERANCE
        ops = {node.op_type for node in onnx.load(str(path)).graph.node}
        assert ops <= DENSE_OPS, ops - DENSE_OPS


@pytest.mark.slow
def test_workflow_record_keeps_the_tuning_candidates_and_the_validation_choice(
    workflow: tuple[list[ModelCard], Path],
) -> None:
    cards, store = workflow
    record = read_experiments(store)["universal-workflow"]
    assert record.models == list(EXPERIMENT.variants)
    assert [t.parameters["dropout"] for t in record.trials] == [0.2, 0.4]
    chosen = max(record.trials, key=lambda t: t.validation_accuracy)
    assert cards[2].hyperparameters.dropout_rate == chosen.parameters["dropout"]
    assert chosen.validation_accuracy == pytest.approx(selection_score(cards[2].history))
    for card in cards:
        assert any(note.startswith(f"{card.name} v1: validation loss lowest at epoch 1") for note in record.notes)
