"""Experiment records kept beside the served models: experiments, replicate trainings, robustness.

The served store holds one model per variant (`model_store/<name>/<version>/`). How much a
variant's figures move from one training seed to the next, and how each model holds up on
corrupted test images, are facts about the experiment rather than about one served file, so they
live beside the models::

    model_store/
      experiments/<id>.json                   what each experiment is and found (`ExperimentRecord`)
      replicates/<variant>/seed-<seed>.json   one record per extra training run (`ReplicateRun`)
      robustness.json                         accuracy under corruptions (`RobustnessRecord`)

Neither directory nor file has an integer version, so the store's readers never take them for a
model. Training writes them (`python -m training replicate`, `python -m training assess`); the
service reads them for `GET /models/compare`. A missing or malformed record only leaves its
section of the comparison empty: it never stops a model serving.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger(__name__)

REPLICATES_DIR = "replicates"
ROBUSTNESS_FILE = "robustness.json"

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReplicateRun(_Strict):
    """One more training of a variant under the same protocol with another seed, scored as ONNX on
    the test set. The model itself is not kept: only what the comparison needs."""

    variant: str = Field(pattern=r"^[a-z0-9_]+$")
    seed: int
    epochs: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    test_accuracy: Fraction
    test_errors: int = Field(ge=0)
    test_loss: float = Field(ge=0.0)
    test_samples: int = Field(gt=0)
    macro_f1: Fraction
    misclassified: list[int] = Field(description="Test-set indices of the run's errors (for paired tests).")
    final_val_accuracy: Fraction
    final_val_loss: float = Field(ge=0.0)
    best_val_accuracy: Fraction
    best_val_epoch: int = Field(ge=1)
    training_seconds: float = Field(ge=0.0)
    onnx_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    library_versions: dict[str, str]
    created_at: datetime

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".json.part")
        partial.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        partial.replace(path)  # a reader never sees half a record


def replicate_path(store: Path, variant: str, seed: int) -> Path:
    return store / REPLICATES_DIR / variant / f"seed-{seed}.json"


def read_replicates(store: Path) -> dict[str, list[ReplicateRun]]:
    """Variant -> its replicate runs, by seed; bad files are logged and skipped."""
    runs: dict[str, list[ReplicateRun]] = {}
    root = store / REPLICATES_DIR
    if not root.is_dir():
        return runs
    for path in sorted(root.glob("*/seed-*.json")):
        try:
            run = ReplicateRun.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            log.warning("ignoring replicate record %s: %s", path, exc)
            continue
        if run.variant != path.parent.name:
            log.warning("ignoring replicate record %s: it describes %s", path, run.variant)
            continue
        runs.setdefault(run.variant, []).append(run)
    for variant in runs:
        runs[variant].sort(key=lambda r: r.seed)
    return runs


class CorruptionCurve(_Strict):
    """Accuracy of every model at each strength of one corruption (strength 0 = clean images)."""

    corruption: str
    description: str
    unit: str
    strengths: list[float]
    accuracy: dict[str, list[Fraction]] = Field(description="Model name -> accuracy at each strength.")


class RobustnessRecord(_Strict):
    """Accuracy of the served models on the MNIST test images under controlled corruptions."""

    test_samples: int = Field(gt=0)
    seed: int = Field(description="Seed of the random corruptions (noise, occlusion positions).")
    models: dict[str, str] = Field(description="Model name -> sha256 of the ONNX file evaluated.")
    curves: list[CorruptionCurve]
    created_at: datetime

    def write(self, path: Path) -> None:
        partial = path.with_suffix(".json.part")
        partial.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        partial.replace(path)


def read_robustness(store: Path) -> RobustnessRecord | None:
    path = store / ROBUSTNESS_FILE
    try:
        return RobustnessRecord.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError, json.JSONDecodeError) as exc:
        log.warning("ignoring %s: %s", ROBUSTNESS_FILE, exc)
        return None


# --- Experiment records -----------------------------------------------------------------------
# `model_store/experiments/<id>.json`: what an experiment is (its seed document, question, data,
# split and protocol) and what it found beyond its served models (a search's trials, sensitivity
# studies). Written by `python -m training train --experiment <id>`; the service and the report
# read it. The models themselves name their experiment in their cards.

EXPERIMENTS_DIR = "experiments"

JsonScalar = str | int | float | bool | None


class SearchTrial(_Strict):
    """One configuration a hyperparameter search tried, scored on the validation split."""

    trial: int = Field(ge=0)
    parameters: dict[str, JsonScalar | list[JsonScalar]]
    validation_accuracy: Fraction
    validation_loss: float | None = Field(default=None, ge=0.0)
    epochs_run: int | None = Field(default=None, ge=1)
    seconds: float = Field(ge=0.0)


class StudyPoint(_Strict):
    """One setting of a sensitivity study and what the model reached with it."""

    value: JsonScalar
    validation_accuracy: Fraction | None = None
    test_accuracy: Fraction | None = None
    train_accuracy: Fraction | None = None
    seconds: float = Field(ge=0.0)


class SensitivityStudy(_Strict):
    """How one knob moves one model family's accuracy, the others held fixed."""

    name: str = Field(pattern=r"^[a-z0-9_-]+$")
    title: str
    parameter: str
    model: str = Field(description="Which model (family) the study varies, e.g. 'numpy_mlp' or 'cnn'.")
    fixed: dict[str, JsonScalar | list[JsonScalar]] = Field(default_factory=dict)
    points: list[StudyPoint] = Field(min_length=1)
    seconds: float = Field(ge=0.0, description="Wall time of the whole study on the machine that ran it.")


class ExperimentRecord(_Strict):
    """An experiment of the zoo: declared once in training/experiments.py, recorded when trained."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str
    seed_document: str = Field(description="The seed document it follows (../shared/seeds/NNN_*.txt), e.g. '001'.")
    question: str = Field(description="What the experiment compares, in the seed's words where it has them.")
    dataset: str
    split: str
    protocol: str
    models: list[str] = Field(min_length=1, description="The served models it trained (store names).")
    seed_claims: list[str] = Field(default_factory=list, description="Figures the seed reports, to compare with.")
    trials: list[SearchTrial] = Field(default_factory=list, description="A hyperparameter search's trials, if any.")
    studies: list[SensitivityStudy] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="What differs from the seed, and why.")
    created_at: datetime

    def write(self, store: Path) -> Path:
        path = experiment_path(store, self.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".json.part")
        partial.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        partial.replace(path)
        return path


def experiment_path(store: Path, experiment_id: str) -> Path:
    return store / EXPERIMENTS_DIR / f"{experiment_id}.json"


def read_experiments(store: Path) -> dict[str, ExperimentRecord]:
    """Experiment id -> its record; bad files are logged and skipped (they never stop a model serving)."""
    records: dict[str, ExperimentRecord] = {}
    root = store / EXPERIMENTS_DIR
    if not root.is_dir():
        return records
    for path in sorted(root.glob("*.json")):
        try:
            record = ExperimentRecord.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            log.warning("ignoring experiment record %s: %s", path, exc)
            continue
        if record.id != path.stem:
            log.warning("ignoring experiment record %s: it describes %s", path, record.id)
            continue
        records[record.id] = record
    return records
