"""The model card: a schema that training writes next to each model and the service validates.

A card travels with its ONNX file (`model_store/<name>/<version>/card.json`). It records how the
model was built and trained and how the exported file scored on the 10,000 MNIST test images, so
the service can compare models without TensorFlow and without re-evaluating anything.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from digit_contract.inputs import NUM_CLASSES, InputSpec

CARD_SCHEMA_VERSION: Literal[2] = 2
"""2 added the zoo fields: experiment, framework, input, dataset.split, hyperparameters.settings."""

JsonScalar = str | int | float | bool | None

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    # A typo in a card key is an error, not a silently ignored field.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Hyperparameters(_Strict):
    """What the builder and the optimiser were given."""

    hidden_units: int | None = Field(description="Width of the MLP hidden layer; None for a CNN.")
    dropout_rate: Fraction = Field(description="Dropout rate; 0 means no Dropout layer.")
    noise_stddev: float = Field(ge=0.0, description="GaussianNoise stddev; 0 means no such layer.")
    optimizer: str
    learning_rate: float = Field(gt=0.0)
    loss: str
    batch_size: int = Field(gt=0)
    epochs: int = Field(gt=0)
    validation_fraction: Fraction
    # Optional, so the seed's cards (written before augmentation existed) still validate unchanged.
    augmentation: str | None = Field(
        default=None,
        description="Recipe of augmentations applied to the training images (training/augment.py); "
        "None: the clean MNIST images as they are.",
    )
    early_stopping: bool = Field(
        default=False,
        description="Training stopped when validation stopped improving: history may be shorter than epochs.",
    )
    settings: dict[str, JsonScalar | list[JsonScalar]] = Field(
        default_factory=dict,
        description="What this family's builder took beyond the fields above (hidden layer widths, "
        "batch normalisation, activation, L2, ...), as the experiment declared it.",
    )


class EpochRecord(_Strict):
    """One row of the Keras training history."""

    epoch: int = Field(ge=1)
    loss: float
    # None where the trainer does not measure it (scikit-learn records only the training loss).
    accuracy: Fraction | None
    val_loss: float | None
    val_accuracy: Fraction | None


class ClassMetrics(_Strict):
    """Precision, recall and F1 of one digit on the test set."""

    digit: int = Field(ge=0, lt=NUM_CLASSES)
    precision: Fraction
    recall: Fraction
    f1: Fraction
    support: int = Field(ge=0)


class AveragedMetrics(_Strict):
    """Unweighted (macro) mean of the per-class metrics."""

    precision: Fraction
    recall: Fraction
    f1: Fraction


class Misclassification(_Strict):
    """One test image the model got wrong."""

    index: int = Field(ge=0, description="Position in the experiment's test set.")
    label: int = Field(ge=0, lt=NUM_CLASSES)
    predicted: int = Field(ge=0, lt=NUM_CLASSES)
    confidence: Fraction = Field(description="Probability the model gave its (wrong) prediction.")

    @model_validator(mode="after")
    def _check_wrong(self) -> Self:
        if self.label == self.predicted:
            raise ValueError("a misclassification must have predicted != label")
        return self


class OnnxArtifact(_Strict):
    """The exported file the service loads, identified by its hash."""

    file: str = "model.onnx"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(gt=0)
    opset: int = Field(gt=0)
    input_name: str
    output_name: str
    max_abs_diff_vs_keras: float | None = Field(
        default=None, ge=0.0, description="Largest |ONNX - Keras| probability seen by the export parity check; "
        "null for an imported model (no framework object to compare with).",
    )


class DatasetInfo(_Strict):
    """Which data the model saw. Hashes are of the uncompressed IDX bytes."""

    name: str = Field(default="mnist", description="mnist, uci-digits-8x8, kmnist, ...")
    split: str = Field(description="How the train, validation and test images were chosen.")
    file_sha256: dict[str, str]
    # Null for an imported model: which images it trained and validated on is not known.
    train_samples: int | None = Field(default=None, gt=0)
    validation_samples: int | None = Field(default=None, ge=0)
    test_samples: int = Field(gt=0)


class Calibration(_Strict):
    """Temperature scaling of this model's probabilities, fitted on the validation split only.

    Written by `python -m training assess` (digit_contract/calibration.py has the arithmetic). The test
    figures are final measurements, never used to choose T or whether to apply it.
    """

    method: Literal["temperature"] = "temperature"
    temperature: float = Field(gt=0.0, description="Logits are divided by T: softmax(log(p) / T).")
    applied: bool = Field(description="Whether the service applies T by default: only where it lowered "
                                      "the validation negative log-likelihood.")
    fitted_on: Literal["validation"] = "validation"
    validation_samples: int = Field(gt=0)
    validation_nll_before: float = Field(ge=0.0)
    validation_nll_after: float = Field(ge=0.0)
    ece_bins: int = Field(gt=0)
    test_ece_before: Fraction = Field(description="Expected calibration error on the test set, raw probabilities.")
    test_ece_after: Fraction = Field(description="The same with T applied.")
    test_nll_before: float = Field(ge=0.0, description="Test NLL with p floored at the smallest float32; "
                                                      "test_loss clips p at 1e-7 as Keras does, so it is lower.")
    test_nll_after: float = Field(ge=0.0)


class ModelCard(_Strict):
    """Everything known about one exported model version."""

    schema_version: Literal[2] = CARD_SCHEMA_VERSION
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    version: int = Field(ge=1)
    experiment: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]*$",
        description="Id of the experiment that trained it (training/experiments.py); models are compared within one.",
    )
    architecture: Literal["mlp", "cnn", "imported"] = Field(
        description="The model family compared across the zoo: mlp (dense layers only) or cnn; imported: an "
        "ONNX file brought by a user (`python -m service store add`), whose family is not asserted."
    )
    framework: Literal["keras", "scikit-learn", "numpy", "imported"] = Field(
        description="What trained it; imported: not known (the file was added to the store, not trained here).")
    input: InputSpec = Field(description="What the ONNX graph takes; the service prepares inputs to match.")
    description: str
    # The training fields are null (empty) only for an imported model, whose training is not known;
    # `not_measured` then says so. A trained model's card must have them (see the validator).
    hyperparameters: Hyperparameters | None = None
    parameter_count: int = Field(gt=0)
    seed: int | None = None
    history: list[EpochRecord] = Field(default_factory=list)
    training_seconds: float | None = Field(default=None, ge=0.0)

    # Evaluation of the exported ONNX file (not the Keras object) on the test set.
    test_accuracy: Fraction
    test_loss: float = Field(ge=0.0)
    test_errors: int = Field(ge=0)
    per_class: list[ClassMetrics] = Field(min_length=NUM_CLASSES, max_length=NUM_CLASSES)
    macro_avg: AveragedMetrics
    confusion_matrix: list[list[int]] = Field(description="Rows are true digits, columns predicted digits.")
    misclassified: list[Misclassification] = Field(description="Every test error, by test-set index.")

    onnx: OnnxArtifact
    dataset: DatasetInfo
    library_versions: dict[str, str]
    created_at: datetime
    # Optional, so cards written before calibration existed still validate unchanged.
    calibration: Calibration | None = Field(default=None, description="Temperature scaling; null: not fitted.")
    not_measured: dict[str, str] = Field(
        default_factory=dict,
        description="Card fields left null or empty because they were not measured, each with why (an imported "
        "model's training, for one); empty for the zoo's own models.",
    )

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        # These hold for every honest card; a card that breaks one was edited or corrupted.
        matrix = self.confusion_matrix
        if len(matrix) != NUM_CLASSES or any(len(row) != NUM_CLASSES for row in matrix):
            raise ValueError("confusion_matrix must be 10x10")
        total = sum(map(sum, matrix))
        if total != self.dataset.test_samples:
            raise ValueError(f"confusion_matrix counts {total} images, dataset says {self.dataset.test_samples}")
        correct = sum(matrix[i][i] for i in range(NUM_CLASSES))
        if total - correct != self.test_errors or len(self.misclassified) != self.test_errors:
            raise ValueError("test_errors, confusion_matrix and misclassified disagree")
        if abs(correct / total - self.test_accuracy) > 1e-9:
            raise ValueError("test_accuracy does not match the confusion matrix")
        if [c.digit for c in self.per_class] != list(range(NUM_CLASSES)):
            raise ValueError("per_class must list digits 0..9 in order")
        training = (self.hyperparameters, self.seed, self.training_seconds)
        if self.framework != "imported" and any(field is None for field in training):
            raise ValueError("a trained model's card needs hyperparameters, seed and training_seconds")
        hp = self.hyperparameters
        if hp is None:
            return self
        if hp.early_stopping:
            if not 1 <= len(self.history) <= hp.epochs:
                raise ValueError("history must have between 1 and `epochs` records")
        elif len(self.history) != hp.epochs:
            raise ValueError("history must have one record per epoch")
        return self

    def peak_validation(self) -> EpochRecord | None:
        """The epoch with the highest validation accuracy (the first of equals); None when the
        trainer measured none (scikit-learn without early stopping)."""
        measured = [e for e in self.history if e.val_accuracy is not None]
        return max(measured, key=lambda e: e.val_accuracy or 0.0) if measured else None

    @classmethod
    def read(cls, path: Path) -> ModelCard:
        """Parse and validate a card file; raises pydantic.ValidationError or OSError."""
        return cls.model_validate_json(path.read_bytes())

    def write(self, path: Path) -> None:
        """Write the card as indented JSON (diff-friendly in git)."""
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
