"""Request and response bodies of the HTTP API (they are also its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from digit_contract.card import ModelCard
from digit_contract.inputs import IMAGE_SIDE, NUM_CLASSES
from service.comparison_schemas import (
    CalibrationRow,
    PairedTest,
    RobustnessSummary,
    SeedClaim,
    SeedSpread,
    UploadAccuracy,
)

# Strict: a JSON number only. Lax mode would take `true` as 1.0 and "0.5" as 0.5, which the schema
# (type: number) does not allow and no well-behaved client sends.
Pixel = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]
PixelRow = Annotated[list[Pixel], Field(min_length=IMAGE_SIDE, max_length=IMAGE_SIDE)]
PixelImage = Annotated[list[PixelRow], Field(min_length=IMAGE_SIDE, max_length=IMAGE_SIDE)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PixelsRequest(_Body):
    """Digits as model input: 28 rows of 28 floats in [0, 1], white digit on black (already normalised)."""

    images: list[PixelImage] = Field(min_length=1, description="One or more 28x28 images, rows first.")


class ImageReport(_Body):
    """What the service made of an uploaded image file."""

    filename: str | None = Field(description="The multipart part's filename, if any.")
    format: str = Field(description="Format decoded from the bytes (the client's content type is not used).")
    width: int
    height: int
    mode: str = Field(description="Pillow mode of the decoded image (L, RGB, RGBA, P, I;16, ...).")
    method: Literal["passthrough", "mnist"] = Field(
        description="`passthrough`: already a 28x28 MNIST digit, pixels used as they are; "
        "`mnist`: inverted if light, cropped, scaled to 20 px and centred by mass."
    )
    inverted: bool = Field(description="Whether the ink was darker than its background (dark ink on paper), "
                           "so the image was inverted; false for light ink and for a transparent canvas's strokes.")
    box: list[int] = Field(min_length=4, max_length=4,
                           description="Where the digit was found: x, y, width, height in pixels of the "
                           "original image (after its EXIF orientation).")
    other_digits: int = Field(ge=0, description="Other digit-sized groups of ink in the image; the answer is "
                              "for the most central and largest one.")
    lines_removed: int = Field(ge=0, description="Long straight lines (ruling, grid, page edges) erased first.")
    prepared_png: str | None = Field(default=None, description="With `explain=true`: the 28x28 image the model "
                                     "saw (white digit on black), a base64 PNG.")


class Timings(_Body):
    """Server-side time spent on this answer, in milliseconds."""

    preprocess_ms: float = Field(description="Decoding and preparing this image (0 for pixel input).")
    inference_ms: float = Field(description="The ONNX Runtime call, for the whole batch this image was in.")
    batch_size: int = Field(description="Images in that call.")


class Prediction(_Body):
    """One image's answer."""

    model: str
    version: int
    digit: int = Field(ge=0, lt=NUM_CLASSES)
    confidence: float = Field(description="Probability of `digit`.")
    probabilities: list[float] = Field(min_length=NUM_CLASSES, max_length=NUM_CLASSES,
                                       description="Softmax output for digits 0-9; sums to 1.")
    calibrated: bool = Field(description="Whether `probabilities` and `confidence` are temperature-scaled "
                                         "(the model's temperature, fitted on the validation split).")
    providers: list[str] = Field(description="Execution providers of the session that answered.")
    image: ImageReport | None = Field(description="How the uploaded file was read; null for pixel input.")
    timings: Timings


class LatencyReport(_Body):
    """Single-image inference latency measured on this server at start-up."""

    runs: int
    p50_ms: float
    p95_ms: float
    mean_ms: float


class ModelSummary(_Body):
    """A model as the registry holds it."""

    name: str
    version: int
    state: Literal["ready", "failed"]
    reason: str | None = Field(description="Why the model is not ready; null when it is.")
    default: bool = Field(description="Whether requests without `model` go to this model (JSON pixels; and "
                          "image uploads too unless another model is `default_for_uploads`).")
    default_for_uploads: bool = Field(description="Whether image uploads without `model` go to this model.")
    upload_validation_accuracy: float | None = Field(
        description="Accuracy on the user-style uploads rendered from the validation split, as recorded in the "
        "store; it ranks the models for image uploads. Null when not evaluated.")
    providers: list[str] = Field(description="Execution providers the session really runs on (get_providers()).")
    architecture: str | None
    description: str | None
    test_accuracy: float | None
    latency: LatencyReport | None
    loaded_at: datetime


class ModelList(_Body):
    default_model: str | None = Field(description="Model used when a request names none.")
    default_upload_model: str | None = Field(description="Model used for image uploads when a request names none.")
    models: list[ModelSummary]


class ModelDetail(ModelSummary):
    """A model and its whole card (training history, confusion matrix, per-class metrics)."""

    card: ModelCard | None = Field(description="The validated model card; null when it could not be read.")


class ComparisonRow(_Body):
    """One variant's figures, from its card and from this server."""

    rank: int = Field(description="1 + the number of models significantly more accurate than this one (exact "
                                  "McNemar over every pair, Holm-adjusted): models within noise share a rank. "
                                  "The list is ordered by test accuracy, then lower test loss.")
    name: str
    version: int
    architecture: str
    regularisation: str = Field(description="none, dropout, noise or dropout+noise.")
    dropout_rate: float
    noise_stddev: float
    test_accuracy: float
    test_accuracy_low: float = Field(description="95% Wilson confidence interval of the test accuracy, low end.")
    test_accuracy_high: float
    tied_with: list[str] = Field(description="Models whose accuracy is not significantly different from this one's.")
    test_errors: int
    test_loss: float
    macro_f1: float
    parameter_count: int
    onnx_size_bytes: int
    training_seconds: float
    epochs: int
    latency_p50_ms: float | None = Field(description="Measured on this server (single image, warm-up).")
    latency_p95_ms: float | None


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


class Unavailable(_Body):
    name: str
    reason: str


class ModelComparison(_Body):
    """The variants side by side, ranked, with the computed effects of architecture and regularisation."""

    best: str | None
    models: list[ComparisonRow]
    cnn_vs_mlp: list[ArchitectureGap]
    regularisation_effects: list[RegularisationEffect]
    per_class_f1: dict[str, list[float]] = Field(description="Per model, F1 of digits 0-9 on the test set.")
    findings: list[str] = Field(description="The deltas above in words, with their significance.")
    unavailable: list[Unavailable] = Field(description="Models left out because they are not ready.")
    tied_for_best: list[str] = Field(description="Models not significantly less accurate than `best`, itself included.")
    significance: list[PairedTest] = Field(description="The deltas above tested (exact McNemar, Holm over them).")
    seed_spread: list[SeedSpread] = Field(description="Per variant, test figures over its training seeds.")
    seed_claims: list[SeedClaim] = Field(description="The seed's claims, tested over training seeds.")
    calibration: list[CalibrationRow] = Field(description="Per model, temperature scaling and test ECE.")
    robustness: list[RobustnessSummary] = Field(description="Accuracy under corruptions of the test images.")
    uploads: list[UploadAccuracy] = Field(description="Accuracy on the user-style validation uploads, with intervals.")
    methods: str = Field(description="How the figures above were computed.")


class Agreement(_Body):
    majority_digit: int
    votes: dict[str, list[str]] = Field(description="Digit -> models that predicted it.")
    agreement: float = Field(description="Share of models that predicted the majority digit.")
    unanimous: bool


class ImageComparison(_Body):
    """Every ready model's answer for one image, side by side."""

    predictions: list[Prediction]
    agreement: Agreement
    unavailable: list[Unavailable]


class Liveness(_Body):
    status: Literal["alive"]


class Readiness(_Body):
    """`ready`: every model serves. `degraded`: some failed, the rest serve (still 200)."""

    status: Literal["ready", "degraded"]
    default_model: str | None
    models: dict[str, Literal["ready", "failed"]]


class ModelReload(_Body):
    """What a reload did to one model."""

    name: str
    change: Literal["added", "updated", "reloaded", "kept", "removed"] = Field(
        description="`added`: new in the store; `updated`: a newer version was loaded; `reloaded`: the same "
        "version was loaded again; `kept`: the newest version failed, the one that served before still does; "
        "`removed`: no longer in the store, no longer served."
    )
    version: int | None = Field(description="Version serving (or failed) now; null when removed.")
    previous_version: int | None = Field(description="Version before the reload; null when added.")
    state: Literal["ready", "failed"] | None = Field(description="State now; null when removed.")
    reason: str | None = Field(description="Why the newest version is not serving (failed or kept); else null.")


class ReloadReport(_Body):
    """The outcome of reloading the model store."""

    default_model: str | None = Field(description="Model used when a request names none, after the reload.")
    seconds: float = Field(description="Time the reload took (loading, validating and warming up every model).")
    models: list[ModelReload]
