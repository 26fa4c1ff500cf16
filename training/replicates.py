"""Replicate trainings: a variant retrained under the same protocol with other seeds.

One training run per variant says nothing about how far its test figures move when only the seed
changes (weight initialisation, shuffling, dropout masks and noise all follow it). A replicate is
trained and exported exactly as `python -m training train` does, but into a scratch store, so the
served model stays the one of the seed protocol; what the comparison needs from the run (test
accuracy, errors by index, loss, validation figures) is written to
`model_store/replicates/<variant>/seed-<seed>.json`. A run whose record exists is skipped, so the
same command resumes an interrupted set.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

from digit_contract.card import ModelCard
from digit_contract.records import ReplicateRun, replicate_path
from training.data import Mnist
from training.experiments import REPLICATE_SEEDS as REPLICATE_SEEDS  # declared with the experiments
from training.trainer import TrainingConfig, config_for, train_and_publish
from training.variants import VariantSpec

log = logging.getLogger(__name__)


def record_of(card: ModelCard) -> ReplicateRun:
    """The replicate record of a freshly trained (scratch) card."""
    best, last = card.peak_validation(), card.history[-1]
    if best is None or best.val_accuracy is None or last.val_accuracy is None or last.val_loss is None:
        raise ValueError(f"{card.name}: a replicate needs the validation figures of every epoch")
    if card.seed is None or card.hyperparameters is None or card.training_seconds is None:
        raise ValueError(f"{card.name}: a replicate is a model trained here (an imported card has no seed or settings)")
    return ReplicateRun(
        variant=card.name,
        seed=card.seed,
        epochs=card.hyperparameters.epochs,
        batch_size=card.hyperparameters.batch_size,
        test_accuracy=card.test_accuracy,
        test_errors=card.test_errors,
        test_loss=card.test_loss,
        test_samples=card.dataset.test_samples,
        macro_f1=card.macro_avg.f1,
        misclassified=[m.index for m in card.misclassified],
        final_val_accuracy=last.val_accuracy,
        final_val_loss=last.val_loss,
        best_val_accuracy=best.val_accuracy,
        best_val_epoch=best.epoch,
        training_seconds=card.training_seconds,
        onnx_sha256=card.onnx.sha256,
        library_versions=card.library_versions,
        created_at=card.created_at,
    )


def train_replicates(
    specs: Sequence[VariantSpec],
    seeds: Sequence[int],
    data: Mnist,
    config: TrainingConfig,
    store: Path,
    *,
    epochs: int | None = None,
) -> list[Path]:
    """Train every (variant, seed) without a record yet, one at a time; returns the records written.

    Each record is written as soon as its run finishes, so an interrupted set keeps what it did.
    """
    written = []
    for spec in specs:
        for seed in seeds:
            target = replicate_path(store, spec.name, seed)
            if target.exists():
                log.info("%s seed %d: recorded already (%s), skipped", spec.name, seed, target)
                continue
            run_config = config_for(spec, TrainingConfig(**{**config.__dict__, "seed": seed}), epochs)
            with tempfile.TemporaryDirectory(prefix="replicate-") as scratch:
                card = train_and_publish(spec, data, run_config, Path(scratch))
            record_of(card).write(target)
            log.info("%s seed %d: %d errors, recorded in %s", spec.name, seed, card.test_errors, target)
            written.append(target)
    return written
