"""Seed 004: the NumPy MLP and the CNN trained, exported and published on the small MNIST sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from digit_contract.card import ModelCard
from digit_contract.inputs import MNIST_INPUT
from digit_contract.records import SensitivityStudy, StudyPoint, read_experiments
from digit_contract.store import CARD_FILE
from tests.factories import write_idx_set
from training.experiments import NUMPY_MLP, ExperimentRun, write_record
from training.numpy_mlp_study import CnnConfig, build_cnn3, size_epochs, train


def test_numpy_mlp_is_published_with_its_studies(tmp_path: Path, sample_dir: Path) -> None:
    run = ExperimentRun(store=tmp_path, data_dir=sample_dir, download=False, epochs=2, variants=("numpy_mlp",),
                        options={"grids": "smoke", "studies": "mlp-depth,mlp-train-size,cnn-filters", "study_epochs": "1"})
    (card,) = train(NUMPY_MLP, run)
    stored = ModelCard.read(tmp_path / "numpy_mlp" / "1" / CARD_FILE)
    assert stored.framework == "numpy" and stored.architecture == "mlp" and stored.input == MNIST_INPUT
    assert stored.onnx.max_abs_diff_vs_keras <= 1e-5 and len(stored.history) == 2
    assert stored.dataset.name == "mnist" and "Kuzushiji" in stored.description
    record = read_experiments(tmp_path)["numpy-mlp"]
    # cnn-filters belongs to cnn3, which this run did not train.
    assert [s.name for s in record.studies] == ["mlp-depth", "mlp-train-size"]
    depth, size = record.studies
    assert [p.value for p in depth.points] == [0, 1] and all(p.validation_accuracy is not None for p in depth.points)
    assert [p.value for p in size.points] == [500, 1000] and size.fixed["epochs"] == [5, 3]
    assert card.test_errors == stored.test_errors


def test_a_family_run_keeps_the_other_familys_studies(tmp_path: Path, sample_dir: Path) -> None:
    cnn_study = SensitivityStudy(name="cnn-filters", title="t", parameter="filters", model="cnn3",
                                 points=[StudyPoint(value=8, validation_accuracy=0.5, seconds=1.0)], seconds=1.0)
    write_record(NUMPY_MLP, tmp_path, studies=[cnn_study], notes=["cnn3: its studies took 1 s"])
    run = ExperimentRun(store=tmp_path, data_dir=sample_dir, download=False, epochs=1, variants=("numpy_mlp",),
                        options={"grids": "smoke", "studies": "mlp-depth", "study_epochs": "1"})
    train(NUMPY_MLP, run)
    record = read_experiments(tmp_path)["numpy-mlp"]
    assert [s.name for s in record.studies] == ["mlp-depth", "cnn-filters"]
    assert "cnn3: its studies took 1 s" in record.notes
    assert any(n.startswith("numpy_mlp: its studies took") for n in record.notes)


def test_kmnist_is_used_where_asked(tmp_path: Path) -> None:
    write_idx_set(tmp_path / "kmnist", n_train=1200, n_test=30, compress=False)
    run = ExperimentRun(store=tmp_path / "store", data_dir=tmp_path / "kmnist", epochs=1, variants=("numpy_mlp",),
                        options={"dataset": "kmnist", "studies": "none"})
    (card,) = train(NUMPY_MLP, run)
    assert card.dataset.name == "kmnist" and card.dataset.test_samples == 30
    assert "Kuzushiji-MNIST, as the seed" in card.description
    assert read_experiments(tmp_path / "store")["numpy-mlp"].dataset == "kmnist"


def test_the_cnn_is_three_conv_pool_blocks_and_two_dense_layers() -> None:
    model = build_cnn3(CnnConfig(filters=8, dense_units=16))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Conv2D", "MaxPooling2D"] * 3 + ["Flatten", "Dense", "Dropout", "Dense"]
    assert model.output_shape == (None, 10) and model.layers[-1].activation.__name__ == "softmax"


def test_small_training_sets_get_more_epochs() -> None:
    assert size_epochs(54_000, 3, 54_000) == 3
    assert size_epochs(1_000, 3, 54_000) == 30  # at least 3 epochs of 10,000 images
    assert size_epochs(500, 1, 2_250) == 5


@pytest.mark.slow
def test_cnn3_is_published_with_its_studies(tmp_path: Path, sample_dir: Path) -> None:
    run = ExperimentRun(store=tmp_path, data_dir=sample_dir, download=False, epochs=1, variants=("cnn3",),
                        options={"grids": "smoke", "studies": "cnn-filters", "cnn_study_epochs": "1"})
    (card,) = train(NUMPY_MLP, run)
    assert card.name == "cnn3" and card.architecture == "cnn" and card.onnx.max_abs_diff_vs_keras <= 1e-5
    (study,) = read_experiments(tmp_path)["numpy-mlp"].studies
    assert study.name == "cnn-filters" and [p.value for p in study.points] == [4, 8]
