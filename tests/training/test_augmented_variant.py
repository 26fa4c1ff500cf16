"""The extra `cnn_augmented` variant: its row, its protocol, its card, beside an unchanged seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from digit_contract.card import Hyperparameters, ModelCard
from digit_contract.store import CARD_FILE, latest_version, version_dir
from training import trainer
from training.augment import RECIPES
from training.data import Mnist, RawSplit
from training.trainer import SEED_EPOCHS, TrainingConfig, config_for, train_and_publish
from training.variants import ALL_VARIANTS, EXTRA_VARIANTS, VARIANTS, VARIANTS_BY_NAME, build_model

STORE = Path(__file__).resolve().parents[2] / "model_store"
CNN_PARAMETERS = 34_826


def test_augmented_variant_is_cnn_dropout_trained_on_uploads() -> None:
    spec, baseline = VARIANTS_BY_NAME["cnn_augmented"], VARIANTS_BY_NAME["cnn_dropout"]
    assert (spec.architecture, spec.dropout_rate, spec.noise_stddev) == ("cnn", 0.5, 0.0)
    assert (spec.augmentation, spec.epochs) == ("uploads", 40)
    model, reference = build_model(spec), build_model(baseline)
    assert model.count_params() == reference.count_params() == CNN_PARAMETERS
    assert [type(layer).__name__ for layer in model.layers] == [type(layer).__name__ for layer in reference.layers]
    assert spec.description == "CNN, 2x(Conv3x3+MaxPool2) + Dropout(0.5), trained on 'uploads' augmentations"


def test_seed_table_is_unchanged_and_extras_are_apart() -> None:
    assert [s.name for s in VARIANTS] == ["mlp", "mlp_dropout", "mlp_noise", "cnn", "cnn_dropout", "cnn_noise"]
    assert all(s.augmentation is None and s.epochs is None for s in VARIANTS)
    assert ALL_VARIANTS == VARIANTS + EXTRA_VARIANTS and list(VARIANTS_BY_NAME) == [s.name for s in ALL_VARIANTS]
    # Every named recipe exists, so a typo in the table fails here rather than after an hour.
    assert all(s.augmentation in RECIPES for s in ALL_VARIANTS if s.augmentation)


@pytest.mark.parametrize("name", [s.name for s in ALL_VARIANTS])
def test_epochs_follow_the_variant_protocol_unless_overridden(name: str) -> None:
    spec = VARIANTS_BY_NAME[name]
    assert config_for(spec, TrainingConfig()).epochs == (spec.epochs or SEED_EPOCHS)
    assert config_for(spec, TrainingConfig(), epochs=3).epochs == 3


def test_card_records_the_augmentation_and_round_trips(tmp_path: Path) -> None:
    version = latest_version(STORE, "cnn_dropout")
    assert version is not None
    card = ModelCard.read(version_dir(STORE, "cnn_dropout", version) / CARD_FILE)
    augmented = card.model_copy(
        update={"hyperparameters": card.hyperparameters.model_copy(update={"augmentation": "uploads"})}
    )
    augmented.write(tmp_path / CARD_FILE)
    assert ModelCard.read(tmp_path / CARD_FILE) == augmented
    assert json.loads((tmp_path / CARD_FILE).read_text())["hyperparameters"]["augmentation"] == "uploads"


@pytest.mark.parametrize("name", [s.name for s in VARIANTS])
def test_seed_cards_trained_on_clean_images_in_the_seed_experiment(name: str) -> None:
    version = latest_version(STORE, name)
    assert version is not None
    path = version_dir(STORE, name, version) / CARD_FILE
    # Written before augmentation existed; the zoo fields were added to the card, the model unchanged.
    card = ModelCard.read(path)
    assert json.loads(path.read_text())["hyperparameters"]["augmentation"] is None
    assert (card.hyperparameters.augmentation, card.experiment, card.version) == (None, "regularisation", 1)


def test_hyperparameters_default_to_no_augmentation() -> None:
    fields = {"hidden_units": None, "dropout_rate": 0.5, "noise_stddev": 0.0, "optimizer": "adam",
              "learning_rate": 0.001, "loss": "categorical_crossentropy", "batch_size": 128, "epochs": 1,
              "validation_fraction": 0.1}
    assert Hyperparameters(**fields).augmentation is None


def test_augmented_training_sees_new_images_each_epoch_and_publishes_its_recipe(
    sample: Mnist, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[np.ndarray] = []
    original = trainer.as_model_input

    def spy(split: RawSplit) -> np.ndarray:
        if len(split) == len(sample.train):
            seen.append(original(split))
        return original(split)

    monkeypatch.setattr(trainer, "as_model_input", spy)
    config = config_for(VARIANTS_BY_NAME["cnn_augmented"], TrainingConfig(seed=3, augment_workers=1), epochs=2)
    card = train_and_publish(VARIANTS_BY_NAME["cnn_augmented"], sample, config, tmp_path)
    assert (card.name, card.hyperparameters.augmentation, card.hyperparameters.epochs) == ("cnn_augmented", "uploads", 2)
    assert [h.epoch for h in card.history] == [1, 2]
    clean, first, second = seen
    # Each epoch trains on its own augmented copy, and neither is the clean training set.
    assert not np.array_equal(first, second)
    assert not np.array_equal(np.sort(first.ravel()), np.sort(clean.ravel()))
