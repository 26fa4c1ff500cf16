"""The contract package stands alone: training and serving both import it, it imports neither."""

from __future__ import annotations

import subprocess
import sys

import pytest

from digit_contract.inputs import MNIST_INPUT, InputSpec
from training.experiments import EXPERIMENTS, experiment_of

FRAMEWORKS = ("fastapi", "starlette", "uvicorn", "onnxruntime", "tensorflow", "keras", "cv2", "sklearn")


def _modules_after_import(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout  # noqa: S603
    return {name.split(".")[0] for name in out.split()}


def test_the_contract_imports_no_framework() -> None:
    loaded = _modules_after_import(
        "import digit_contract.inputs, digit_contract.card, digit_contract.store, digit_contract.records, "
        "digit_contract.calibration, digit_contract.statistics, digit_contract.comparison"
    )
    assert not loaded & set(FRAMEWORKS), sorted(loaded & set(FRAMEWORKS))
    assert "service" not in loaded and "training" not in loaded


def test_listing_the_experiments_imports_no_framework() -> None:
    # The command line's help and the tests list experiments without loading TensorFlow.
    loaded = _modules_after_import("import training.experiments, training.__main__")
    assert not loaded & set(FRAMEWORKS), sorted(loaded & set(FRAMEWORKS))


def test_every_experiment_declares_distinct_models_and_an_importable_trainer_path() -> None:
    names = [n for e in EXPERIMENTS.values() for n in e.variants]
    assert len(names) == len(set(names)), "a served model belongs to one experiment"
    for experiment in EXPERIMENTS.values():
        module, _, function = experiment.trainer.partition(":")
        assert module.startswith("training.") and function, experiment.trainer
        assert experiment.seed_document in {"000", "001", "002", "003", "004"}
        assert all(experiment_of(n) is experiment for n in experiment.variants)
    assert experiment_of("resnet") is None


def test_input_spec_shapes_follow_the_layout() -> None:
    assert MNIST_INPUT.sample_shape == (28, 28, 1)
    eight = InputSpec(height=8, width=8, layout="flat", levels=17, encoding="uci-8x8")
    assert (eight.sample_shape, eight.image_shape) == ((64,), (8, 8))
    assert eight.describe() == "8x8 flat, values in [0, 1] (17 levels)"
    with pytest.raises(ValueError, match="low < high"):
        InputSpec(height=8, width=8, low=1.0, high=0.0)
