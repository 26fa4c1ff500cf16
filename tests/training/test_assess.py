"""Calibration, robustness and replicate runs on a store trained for one epoch on the MNIST sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from digit_contract.card import ModelCard
from digit_contract.records import ROBUSTNESS_FILE, RobustnessRecord, read_replicates, replicate_path
from digit_contract.store import list_models
from tests.factories import make_card
from training.__main__ import main
from training.assess import TEST_PREDICTIONS_FILE, assess_calibration, assess_robustness, mnist_models
from training.corruptions import CORRUPTIONS, CORRUPTIONS_BY_NAME, Corruption, corrupt
from training.data import Mnist


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Path:
    store = tmp_path_factory.mktemp("store")
    assert main(["train", "--variants", "mlp", "--epochs", "1", "--data-dir", str(sample_dir), "--store", str(store)]) == 0
    return store


@pytest.mark.parametrize("corruption", CORRUPTIONS, ids=lambda c: c.name)
def test_every_corruption_starts_clean_and_reproduces(corruption: Corruption, sample: Mnist) -> None:
    images = sample.test.images[:50]
    assert np.array_equal(corrupt(images, corruption, corruption.strengths[0], seed=1), images)
    strongest = max(corruption.strengths[1:], key=lambda s: abs(s - corruption.strengths[0]))
    once, again = corrupt(images, corruption, strongest, seed=1), corrupt(images, corruption, strongest, seed=1)
    assert once.dtype == np.uint8 and once.shape == images.shape
    assert np.array_equal(once, again)
    assert not np.array_equal(once, images)


def test_stroke_width_and_occlusion_do_what_they_say(sample: Mnist) -> None:
    images = sample.test.images[:50]
    ink = (images > 127).sum()
    assert (corrupt(images, CORRUPTIONS_BY_NAME["thinning"], 1.0, 0) > 127).sum() < ink
    assert (corrupt(images, CORRUPTIONS_BY_NAME["thickening"], 1.0, 0) > 127).sum() > ink
    blank = np.full((3, 28, 28), 255, np.uint8)
    occluded = corrupt(blank, CORRUPTIONS_BY_NAME["occlusion"], 8.0, 0)
    assert ((occluded == 0).sum(axis=(1, 2)) == 64).all()  # one 8x8 square each
    assert (occluded[:, :4] == 255).all() and (occluded[:, 24:] == 255).all()  # inside the central box


def test_calibration_is_fitted_on_validation_and_written_to_the_card(trained_store: Path, sample: Mnist) -> None:
    [result] = assess_calibration(trained_store, sample).values()
    card = ModelCard.read(trained_store / "mlp" / "1" / "card.json")
    assert card.calibration == result
    assert result.validation_samples == len(sample.validation) and result.fitted_on == "validation"
    assert result.applied is (result.validation_nll_after < result.validation_nll_before)
    # The NLL fit cannot do worse than T = 1 on the data it was fitted on.
    assert result.validation_nll_after <= result.validation_nll_before + 1e-12
    with np.load(trained_store / "mlp" / "1" / TEST_PREDICTIONS_FILE) as stored:
        assert stored["probabilities"].shape == (len(sample.test), 10)
        assert np.array_equal(stored["labels"], sample.test.labels)
        assert int((stored["probabilities"].argmax(axis=1) != sample.test.labels).sum()) == card.test_errors


def test_a_calibrated_model_is_left_alone_unless_asked_again(trained_store: Path, sample: Mnist) -> None:
    [first] = assess_calibration(trained_store, sample).values()
    card_file = trained_store / "mlp" / "1" / "card.json"
    before = card_file.stat().st_mtime_ns
    assert assess_calibration(trained_store, sample) == {"mlp": first}
    assert card_file.stat().st_mtime_ns == before  # not rewritten
    assert assess_calibration(trained_store, sample, again=True)["mlp"].temperature == pytest.approx(first.temperature)


def test_models_of_another_dataset_are_not_assessed_on_mnist(trained_store: Path, tmp_path: Path, sample: Mnist) -> None:
    import shutil

    store = tmp_path / "store"
    shutil.copytree(trained_store, store)
    eight = make_card("digits8_keras_mlp", input={"height": 8, "width": 8, "layout": "flat", "levels": 17,
                                                  "encoding": "uci-8x8"})
    eight = eight.model_copy(update={"dataset": eight.dataset.model_copy(update={"name": "uci-digits-8x8"})})
    (store / "digits8_keras_mlp" / "1").mkdir(parents=True)
    eight.write(store / "digits8_keras_mlp" / "1" / "card.json")
    assert set(mnist_models(store)) == {"mlp"}
    assert set(assess_calibration(store, sample)) == {"mlp"}


def test_robustness_record_has_every_curve_from_the_clean_accuracy(trained_store: Path, sample: Mnist) -> None:
    record = assess_robustness(trained_store, sample)
    assert RobustnessRecord.model_validate_json((trained_store / ROBUSTNESS_FILE).read_bytes()) == record
    assert [c.corruption for c in record.curves] == [c.name for c in CORRUPTIONS]
    card = ModelCard.read(trained_store / "mlp" / "1" / "card.json")
    for curve in record.curves:
        assert curve.accuracy["mlp"][0] == pytest.approx(card.test_accuracy)
        assert len(curve.accuracy["mlp"]) == len(curve.strengths)
    # The store's readers do not take the records for models.
    assert list(list_models(trained_store)) == ["mlp"]


def test_replicates_are_recorded_beside_the_served_model_and_resume(trained_store: Path, sample_dir: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    args = ["replicate", "--variants", "mlp", "--seeds", "5", "--epochs", "1", "--data-dir", str(sample_dir),
            "--store", str(trained_store)]
    assert main(args) == 0
    record = replicate_path(trained_store, "mlp", 5)
    assert capsys.readouterr().out.splitlines()[-1] == str(record)  # after Keras's progress lines
    [run] = read_replicates(trained_store)["mlp"]
    assert (run.variant, run.seed, run.epochs, run.test_samples) == ("mlp", 5, 1, 500)
    assert len(run.misclassified) == run.test_errors
    assert list_models(trained_store) == {"mlp": [1]}  # the served model stays the only version
    before = json.loads(record.read_text())
    assert main(args) == 0  # recorded already: skipped, nothing retrained
    assert capsys.readouterr().out == "" and json.loads(record.read_text()) == before


def test_seeds_must_be_integers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["replicate", "--seeds", "1,two"])
    assert "seeds must be comma-separated integers, got '1,two'" in capsys.readouterr().err


def test_a_card_written_before_calibration_existed_still_loads() -> None:
    old = make_card().model_dump(mode="json")
    del old["calibration"]  # the seed's cards had no such key
    assert ModelCard.model_validate(old).calibration is None
