"""Assess the served models beyond their accuracy: calibration and robustness, from the ONNX files.

`python -m training assess` needs only inference. For every model in the store (latest version):

1. its probabilities on the validation split fit a temperature (digit_contract/calibration.py); T is
   applied by default only where it lowers the validation NLL;
2. its probabilities on the 10,000 test images are stored beside the model
   (`test_predictions.npz`: what the report draws reliability diagrams from, without the dataset)
   and give the test ECE and NLL before and after T; the card gains a `calibration` section;
3. with `--robustness`, its accuracy on corrupted test images (training/corruptions.py) goes to
   `model_store/robustness.json`.

The test set is only measured here: T and whether to apply it are chosen on the validation split.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from digit_contract.calibration import (
    ECE_BINS,
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    top_confidence,
)
from digit_contract.card import Calibration, ModelCard
from digit_contract.inputs import normalize_pixels
from digit_contract.records import ROBUSTNESS_FILE, CorruptionCurve, RobustnessRecord
from digit_contract.store import CARD_FILE, MODEL_FILE, latest_versions, version_dir
from training.corruptions import CORRUPTIONS, corrupt
from training.data import Mnist, as_model_input
from training.evaluate import predict_onnx

log = logging.getLogger(__name__)

TEST_PREDICTIONS_FILE = "test_predictions.npz"
ROBUSTNESS_SEED = 12


def calibrate(
    validation: tuple[npt.NDArray[np.float32], npt.NDArray[np.integer]],
    test: tuple[npt.NDArray[np.float32], npt.NDArray[np.integer]],
) -> Calibration:
    """Fit T on (validation probabilities, labels); measure ECE and NLL on the test pair."""
    (val_p, val_y), (test_p, test_y) = validation, test
    temperature = fit_temperature(val_p, val_y)
    val_before, val_after = negative_log_likelihood(val_p, val_y), negative_log_likelihood(
        apply_temperature(val_p, temperature), val_y
    )
    scaled = apply_temperature(test_p, temperature)
    return Calibration(
        temperature=temperature,
        applied=val_after < val_before,
        validation_samples=len(val_y),
        validation_nll_before=val_before,
        validation_nll_after=val_after,
        ece_bins=ECE_BINS,
        test_ece_before=expected_calibration_error(*top_confidence(test_p, test_y)),
        test_ece_after=expected_calibration_error(*top_confidence(scaled, test_y)),
        test_nll_before=negative_log_likelihood(test_p, test_y),
        test_nll_after=negative_log_likelihood(scaled, test_y),
    )


def mnist_models(store: Path) -> dict[str, tuple[Path, ModelCard]]:
    """The latest version of every model of the store that reads MNIST digits, with its directory.

    Calibration and the corruptions are measured on MNIST's validation and test images; a model of
    another dataset (the UCI 8x8 digits) has its own test set and is left out, with a line in the log.
    """
    found = {}
    for name, version in latest_versions(store).items():
        directory = version_dir(store, name, version)
        card = ModelCard.read(directory / CARD_FILE)
        if card.dataset.name != "mnist" or card.input.encoding != "mnist":
            log.info("%s: skipped, it reads %s (%s), not MNIST", name, card.dataset.name, card.input.describe())
            continue
        found[name] = (directory, card)
    return found


def _check_same_data(card: ModelCard, data: Mnist) -> None:
    if card.dataset.file_sha256 != data.file_sha256:
        raise ValueError(f"{card.name} v{card.version} was scored on other MNIST files than {data.source}")


def _write_calibrated(card: ModelCard, calibration: Calibration, path: Path) -> None:
    """Rewrite a card with its calibration section and nothing else changed: fields the file did not
    have (defaults added to the schema later, like `augmentation`) stay out of it."""
    updated = card.model_copy(update={"calibration": calibration})
    ModelCard.model_validate_json(updated.model_dump_json())  # still a valid card
    path.write_text(updated.model_dump_json(indent=2, exclude_unset=True) + "\n", encoding="utf-8")


def assess_calibration(store: Path, data: Mnist, *, again: bool = False) -> dict[str, Calibration]:
    """Calibrate every MNIST model, store its test predictions and add the result to its card.

    Models already calibrated (a calibration in the card, their predictions stored) are left as they
    are unless `again`: the result would be the same, and rewriting would only churn the files.
    """
    x_val, x_test = as_model_input(data.validation), as_model_input(data.test)
    results = {}
    for name, (directory, card) in mnist_models(store).items():
        if card.calibration is not None and (directory / TEST_PREDICTIONS_FILE).is_file() and not again:
            results[name] = card.calibration
            continue
        _check_same_data(card, data)
        onnx = directory / MODEL_FILE
        val_p, test_p = predict_onnx(onnx, x_val), predict_onnx(onnx, x_test)
        if int((test_p.argmax(axis=1) != data.test.labels).sum()) != card.test_errors:
            raise ValueError(f"{name}: the ONNX file no longer scores as its card says")
        calibration = calibrate((val_p, data.validation.labels), (test_p, data.test.labels))
        np.savez_compressed(directory / TEST_PREDICTIONS_FILE, probabilities=test_p, labels=data.test.labels)
        _write_calibrated(card, calibration, directory / CARD_FILE)
        log.info(
            "%s: T = %.3f (%s), val NLL %.4f -> %.4f, test ECE %.4f -> %.4f",
            name,
            calibration.temperature,
            "applied" if calibration.applied else "not applied",
            calibration.validation_nll_before,
            calibration.validation_nll_after,
            calibration.test_ece_before,
            calibration.test_ece_after,
        )
        results[name] = calibration
    return results


def assess_robustness(store: Path, data: Mnist, seed: int = ROBUSTNESS_SEED) -> RobustnessRecord:
    """Accuracy of every model at every corruption strength; written to robustness.json."""
    models = mnist_models(store)
    for _, card in models.values():
        _check_same_data(card, data)
    labels = data.test.labels
    curves = []
    for corruption in CORRUPTIONS:
        accuracy: dict[str, list[float]] = {name: [] for name in models}
        for strength in corruption.strengths:
            images = normalize_pixels(corrupt(data.test.images, corruption, strength, seed))
            for name, (directory, _) in models.items():
                predicted = predict_onnx(directory / MODEL_FILE, images).argmax(axis=1)
                accuracy[name].append(float((predicted == labels).mean()))
            log.info("%s %g: %s", corruption.name, strength, {n: round(a[-1], 4) for n, a in accuracy.items()})
        curves.append(
            CorruptionCurve(
                corruption=corruption.name,
                description=corruption.description,
                unit=corruption.unit,
                strengths=list(corruption.strengths),
                accuracy=accuracy,
            )
        )
    record = RobustnessRecord(
        test_samples=len(labels),
        seed=seed,
        models={name: hashlib.sha256((d / MODEL_FILE).read_bytes()).hexdigest() for name, (d, _) in models.items()},
        curves=curves,
        created_at=datetime.now(UTC).replace(microsecond=0),
    )
    record.write(store / ROBUSTNESS_FILE)
    return record
