"""Response bodies of `GET /models/compare`: the zoo ranked per test set, per experiment and per
dataset, with significance, seed spread, calibration and robustness (all gathered into
`ModelComparison`), as `digit_contract.comparison` computes them for the service and the report."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PairedTest(_Body):
    """McNemar's exact test of two models on the same test images (one training run each)."""

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
    """Accuracy on the user-style uploads rendered from the validation split (evaluation), with its
    95% Wilson interval: what the registry ranks models for image uploads by."""

    name: str
    accuracy: float
    low: float
    high: float
    uploads: int
    against_leader: PairedTest | None = Field(
        default=None,
        description="This model against the most accurate one on the same uploads (exact McNemar, Holm-adjusted "
                    "over every model behind the leader); null for the leader, and where the store's record keeps "
                    "no per-upload results.")


class Unavailable(_Body):
    name: str
    reason: str


class ComparisonRow(_Body):
    """One variant's figures, from its card and from this server."""

    rank: int = Field(description="1 + the number of models scored on the same test set that are significantly "
                                  "more accurate than this one (exact McNemar over every pair of that test set, "
                                  "Holm-adjusted): models within noise share a rank. The list is grouped by test "
                                  "set (the largest first), each group ordered by test accuracy, then lower test "
                                  "loss, then name (digit_contract.ranking).")
    name: str
    version: int
    experiment: str = Field(description="The experiment that trained it (its card's).")
    dataset: str = Field(description="The dataset of its test set: mnist, uci-digits-8x8, ...")
    test_samples: int = Field(description="Test images its figures were measured on.")
    architecture: str = Field(description="The model family: mlp (dense layers only) or cnn.")
    framework: str = Field(description="keras, scikit-learn or numpy.")
    regularisation: str = Field(description="none, dropout, noise or dropout+noise.")
    # Null for an imported model (`python -m service store add`), whose training is not known.
    dropout_rate: float | None
    noise_stddev: float | None
    test_accuracy: float
    test_accuracy_low: float = Field(description="95% Wilson confidence interval of the test accuracy, low end.")
    test_accuracy_high: float
    tied_with: list[str] = Field(description="Models of the same test set whose accuracy is not significantly "
                                             "different from this one's.")
    test_errors: int
    test_loss: float
    macro_f1: float
    parameter_count: int
    onnx_size_bytes: int
    training_seconds: float | None
    epochs: int | None
    latency_p50_ms: float | None = Field(
        description="Inference time per image of this model's recent real requests on this worker (the last "
        "1,024; each request's time divided by its images, so batch sizes do not skew it); null before the first request.")
    latency_p95_ms: float | None
    warmup_latency_p50_ms: float | None = Field(
        description="Single images timed at warm-up on an idle server: a best case, not what requests see.")


class Delta(_Body):
    """`model` minus `baseline`: positive accuracy / F1 and negative errors / loss mean better."""

    baseline: str
    model: str
    test_accuracy_delta: float
    test_errors_delta: int
    test_loss_delta: float
    macro_f1_delta: float


class ArchitectureGap(Delta):
    """CNN minus MLP at the same regularisation."""

    regularisation: str


class RegularisationEffect(Delta):
    """A regularised variant minus the unregularised one of the same architecture."""

    architecture: str
    regularisation: str


class FamilyBest(_Body):
    """The most accurate model of one family (mlp or cnn) on one test set."""

    family: str
    model: str
    experiment: str
    framework: str
    test_accuracy: float
    test_accuracy_low: float
    test_accuracy_high: float
    test_errors: int
    parameter_count: int
    latency_p50_ms: float | None = Field(description="Real requests' inference time per image (null before the first).")
    warmup_latency_p50_ms: float | None = Field(description="At warm-up on an idle server: a best case.")
    tied_in_family: list[str] = Field(description="Models of the family not significantly less accurate (same "
                                                  "McNemar tests as the ranks).")


class DatasetComparison(_Body):
    """The zoo on one test set: only models scored on the same test images are ranked and tested together."""

    dataset: str
    test_samples: int
    interval_half_width: float = Field(description="Half-width of the 95% Wilson interval of the best model's "
                                                   "accuracy: how precisely this test set measures.")
    models: list[str] = Field(description="Best first (test accuracy, then lower test loss, then name).")
    best: str
    tied_for_best: list[str]
    families: list[FamilyBest]
    family_gap: PairedTest | None = Field(description="The best CNN against the best MLP (McNemar; chosen on this "
                                                      "test set, so descriptive); null unless both families are here.")


class ExperimentComparison(_Body):
    """One experiment's own question: its models ranked among themselves, its tests, its record."""

    id: str
    title: str | None = Field(description="From the experiment's record; null when none is stored.")
    seed_document: str | None
    question: str | None
    protocol: str | None
    split: str | None
    dataset: str
    test_samples: int
    models: list[ComparisonRow] = Field(description="Ranked within the experiment (Holm over its own pairs).")
    best: str | None
    tied_for_best: list[str]
    significance: list[PairedTest] = Field(description="Seed 000's experiments: the seed's questions (as in the "
                                                       "top-level section); others: every pair of its models, "
                                                       "Holm over the experiment.")
    seed_claims: list[str] = Field(description="What the seed document reports, to hold the measured figures against.")
    trials: int = Field(description="Trials of its hyperparameter search recorded (0: none).")
    studies: list[str] = Field(description="Titles of its recorded sensitivity studies.")
    notes: list[str]
    findings: list[str]


class ModelComparison(_Body):
    """The zoo side by side: ranked per test set, per experiment and across the zoo, with the computed
    effects of architecture and regularisation of seed 000's variants."""

    best: str | None = Field(description="The first model of the largest test set (MNIST's 10,000); "
                                         "per test set see `datasets`.")
    models: list[ComparisonRow]
    cnn_vs_mlp: list[ArchitectureGap]
    regularisation_effects: list[RegularisationEffect]
    per_class_f1: dict[str, list[float]] = Field(description="Per model, F1 of digits 0-9 on the test set.")
    findings: list[str] = Field(description="The deltas above in words, with their significance.")
    unavailable: list[Unavailable] = Field(description="Models left out because they are not ready.")
    tied_for_best: list[str] = Field(description="Models of best's test set not significantly less accurate than "
                                                 "`best`, itself included.")
    significance: list[PairedTest] = Field(description="The deltas above tested (exact McNemar, Holm over them).")
    seed_spread: list[SeedSpread] = Field(description="Per variant, test figures over its training seeds.")
    seed_claims: list[SeedClaim] = Field(description="The seed's claims, tested over training seeds.")
    calibration: list[CalibrationRow] = Field(description="Per model, temperature scaling and test ECE.")
    robustness: list[RobustnessSummary] = Field(description="Accuracy under corruptions of the test images.")
    uploads: list[UploadAccuracy] = Field(description="Accuracy on the user-style validation uploads, with intervals.")
    methods: str = Field(description="How the figures above were computed.")
    experiments: list[ExperimentComparison] = Field(description="Per experiment (card.experiment), its own question.")
    datasets: list[DatasetComparison] = Field(description="The whole zoo grouped by test set: best per family, "
                                                          "parameters, latency.")
    zoo_note: str = Field(description="Why figures of different test sets are not compared.")
