"""Response bodies of the honest parts of `GET /models/compare`: significance, seed spread,
calibration and robustness (service/schemas.py gathers them into `ModelComparison`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PairedTest(_Body):
    """McNemar's exact test of two models on the same 10,000 test images (one training run each)."""

    question: str = Field(description="The comparison in words, e.g. 'CNN vs MLP, unregularised'.")
    baseline: str
    model: str
    only_baseline_right: int = Field(description="Test images the baseline got right and the model wrong.")
    only_model_right: int = Field(description="Test images the model got right and the baseline wrong.")
    p_value: float = Field(description="Two-sided exact McNemar p-value (binomial test on the discordant images).")
    p_holm: float = Field(description="Holm-adjusted over the family this test belongs to.")
    significant: bool = Field(description="p_holm < 0.05.")
    better: str | None = Field(description="The model with fewer errors when significant; null when not.")


class SeedSpread(_Body):
    """One variant's test figures over its training runs (the served run plus the replicates)."""

    variant: str
    runs: int = Field(description="Number of training runs (n), the served one included.")
    seeds: list[int]
    test_accuracy_mean: float
    test_accuracy_std: float | None = Field(description="Sample standard deviation; null for a single run.")
    test_accuracy_min: float
    test_accuracy_max: float
    test_errors_min: int
    test_errors_max: int
    test_loss_mean: float
    test_loss_std: float | None
    served_seed: int = Field(description="Seed of the run being served.")


Verdict = Literal["supported", "contradicted", "consistent", "against", "not shown"]


class SeedClaim(_Body):
    """One of the seed's claims, tested over training seeds rather than one run."""

    claim: str
    baseline: str
    model: str
    runs: list[int] = Field(description="Runs of [baseline, model].")
    mean_accuracy_delta: float = Field(description="Mean test accuracy of the model minus the baseline's.")
    separated: bool = Field(description="Every run of the better variant beats every run of the other.")
    p_value: float | None = Field(description="Exact two-sided permutation test on the mean test accuracy; "
                                              "null for one run against one.")
    smallest_possible_p: float | None = Field(description="The smallest p this many runs can give.")
    p_holm: float | None = Field(description="Holm-adjusted over the claims.")
    verdict: Verdict = Field(
        description="supported / contradicted: p_holm < 0.05 in / against the claimed direction; consistent / "
                    "against: not significant, but every run lies on the claimed / the other side (too few runs "
                    "to show it); not shown: otherwise (the runs overlap, or one run against one).")


class CalibrationRow(_Body):
    """Temperature scaling of one model (fitted on the validation split) and its test ECE."""

    name: str
    temperature: float
    applied: bool = Field(description="Whether the fit lowered the validation NLL (on by default then).")
    test_ece_before: float = Field(description="Expected calibration error, 15 bins, raw probabilities.")
    test_ece_after: float
    test_nll_before: float
    test_nll_after: float


class RobustnessSummary(_Body):
    """Accuracy of every model under one corruption of the test images."""

    corruption: str
    description: str
    unit: str
    strengths: list[float]
    accuracy: dict[str, list[float]] = Field(description="Model -> accuracy at each strength.")
    mean_corrupted_accuracy: dict[str, float] = Field(description="Model -> mean accuracy over the corrupted "
                                                                  "strengths (the clean one left out).")
    most_robust: str = Field(description="Highest mean corrupted accuracy.")


class UploadAccuracy(_Body):
    """Accuracy on the user-style uploads rendered from the validation split (bench/realworld), with its
    95% Wilson interval: what the registry ranks models for image uploads by."""

    name: str
    accuracy: float
    low: float
    high: float
    uploads: int
