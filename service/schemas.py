"""Request and response bodies of the HTTP API (they are also its OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from digit_contract.card import ModelCard

# The comparison's bodies live in the contract (digit_contract.comparison_schemas); re-exported for the routes.
from digit_contract.comparison_schemas import ArchitectureGap as ArchitectureGap
from digit_contract.comparison_schemas import ComparisonRow as ComparisonRow
from digit_contract.comparison_schemas import Delta as Delta
from digit_contract.comparison_schemas import ModelComparison as ModelComparison
from digit_contract.comparison_schemas import RegularisationEffect as RegularisationEffect
from digit_contract.comparison_schemas import Unavailable as Unavailable
from digit_contract.inputs import IMAGE_SIDE, MNIST_INPUT, NUM_CLASSES, InputSpec
from service.observability.latency import LatencyStats

# Strict: a JSON number only. Lax mode would take `true` as 1.0 and "0.5" as 0.5, which the schema
# (type: number) does not allow and no well-behaved client sends.
Pixel = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]
PixelRow = Annotated[list[Pixel], Field(min_length=IMAGE_SIDE, max_length=IMAGE_SIDE)]
PixelImage = Annotated[list[PixelRow], Field(min_length=IMAGE_SIDE, max_length=IMAGE_SIDE)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PixelsRequest(_Body):
    """Digits as model input: 28 rows of 28 floats in [0, 1], white digit on black (already normalised).

    This is the body for the MNIST models; a model with another input (`GET /models`: `input`)
    takes its own height x width in its own range, 8 rows of 8 for the UCI 8x8 models.
    """

    images: list[PixelImage] = Field(min_length=1, description="One or more 28x28 images, rows first.")


@lru_cache(maxsize=32)
def pixels_request(spec: InputSpec) -> type[_Body]:
    """The JSON pixels body for models taking `spec`: `PixelsRequest` itself for MNIST's input."""
    if spec == MNIST_INPUT:
        return PixelsRequest
    pixel = Annotated[float, Field(ge=spec.low, le=spec.high, allow_inf_nan=False, strict=True)]
    row = Annotated[list[pixel], Field(min_length=spec.width, max_length=spec.width)]
    image = Annotated[list[row], Field(min_length=spec.height, max_length=spec.height)]
    field = Field(min_length=1, description=f"One or more {spec.height}x{spec.width} images, rows first.")
    model: type[_Body] = create_model(f"PixelsRequest{spec.height}x{spec.width}", __base__=_Body,
                                      images=(list[image], field))
    return model


class InputSpecReport(_Body):
    """The input a model takes (from its card, checked against its ONNX signature at load time)."""

    height: int
    width: int
    layout: Literal["nhwc", "flat"] = Field(description="`nhwc`: the graph takes [N, height, width, 1]; "
                                            "`flat`: [N, height * width], rows first.")
    shape: list[int] = Field(description="The graph input's shape, -1 for the batch.")
    low: float = Field(description="Value of no ink (JSON pixels must lie in [low, high]).")
    high: float = Field(description="Value of full ink.")
    levels: int = Field(description="Distinct values the training data had (256 for MNIST bytes, 17 for UCI counts).")
    encoding: Literal["mnist", "uci-8x8"] = Field(
        description="How an uploaded image becomes this input: `mnist` frames the digit in 28x28 as MNIST did; "
        "`uci-8x8` normalises it into a 32x32 bitmap and counts ink pixels in its 4x4 blocks (0-16), "
        "as the UCI 8x8 digits were made.")
    description: str

    @classmethod
    def from_spec(cls, spec: InputSpec) -> InputSpecReport:
        return cls(height=spec.height, width=spec.width, layout=spec.layout, shape=[-1, *spec.sample_shape],
                   low=spec.low, high=spec.high, levels=spec.levels, encoding=spec.encoding,
                   description=spec.describe())


class ImageReport(_Body):
    """What the service made of an uploaded image file."""

    filename: str | None = Field(description="The multipart part's filename, if any.")
    format: str = Field(description="Format decoded from the bytes (the client's content type is not used).")
    width: int
    height: int
    mode: str = Field(description="Pillow mode of the decoded image (L, RGB, RGBA, P, I;16, ...).")
    method: Literal["passthrough", "uci-passthrough", "learned", "mnist"] = Field(
        description="`passthrough`: already a 28x28 MNIST digit, pixels used as they are; "
        "`uci-passthrough`: already an 8x8 UCI digit (or a blocky upscale of one), its counts used as they are; "
        "`learned`: the digit's strokes found by the ink segmenter; `mnist`: found by the classical rules "
        "(a transparent canvas's alpha, or no segmenter). Found strokes are then framed for the model's input: "
        "scaled to 20 px and centred by mass in 28x28, or into the 8x8 block counts of the UCI models."
    )
    inverted: bool = Field(description="Whether the ink was darker than its background (dark ink on paper), "
                           "so the image was inverted; false for light ink and for a transparent canvas's strokes.")
    box: list[int] = Field(min_length=4, max_length=4,
                           description="Where the digit was found: x, y, width, height in pixels of the "
                           "original image (after its EXIF orientation).")
    other_digits: int = Field(ge=0, description="Other digit-sized groups of ink in the image; the answer is "
                              "for the most central and largest one.")
    lines_removed: int = Field(ge=0, description="Long straight lines (ruling, grid, page edges) erased first.")
    prepared_png: str | None = Field(default=None, description="With `explain=true`: the image the model "
                                     "saw (white digit on black; 28x28, or 8x8 with counts x 255 / 16 for the "
                                     "UCI models), a base64 PNG.")


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
    """Single-image inference latency measured on this server at start-up (warm-up: an idle server's best case)."""

    runs: int
    p50_ms: float
    p95_ms: float
    mean_ms: float

    @classmethod
    def of(cls, stats: LatencyStats | None) -> LatencyReport | None:
        if stats is None:
            return None
        return cls(runs=stats.runs, p50_ms=stats.p50_ms, p95_ms=stats.p95_ms, mean_ms=stats.mean_ms)


class RequestLatencyReport(_Body):
    """Inference time of this model's recent real requests on this worker (a rolling window)."""

    requests: int = Field(description="Requests in the window (at most the last 1,024).")
    p50_ms: float
    p95_ms: float
    mean_ms: float
    mean_batch: float = Field(description="Mean images per request in the window.")

    @classmethod
    def of(cls, stats: LatencyStats | None, mean_batch: float | None) -> RequestLatencyReport | None:
        if stats is None or mean_batch is None:
            return None
        return cls(requests=stats.runs, p50_ms=stats.p50_ms, p95_ms=stats.p95_ms, mean_ms=stats.mean_ms,
                   mean_batch=mean_batch)


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
    latency: LatencyReport | None = Field(description="Measured at warm-up, single images on an idle server.")
    request_latency: RequestLatencyReport | None = Field(
        description="What real requests took on this worker; null before the first request.")
    input: InputSpecReport | None = Field(description="The input the model takes; null when its card could not be read.")
    loaded_at: datetime


class ModelList(_Body):
    default_model: str | None = Field(description="Model used when a request names none.")
    default_upload_model: str | None = Field(description="Model used for image uploads when a request names none.")
    models: list[ModelSummary]


class ModelDetail(ModelSummary):
    """A model and its whole card (training history, confusion matrix, per-class metrics)."""

    card: ModelCard | None = Field(description="The validated model card; null when it could not be read.")


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


class DigitReading(_Body):
    """One digit of a number (POST /read), in reading order."""

    digit: int = Field(ge=0, lt=NUM_CLASSES)
    confidence: float = Field(description="Probability of `digit`.")
    box: list[int] = Field(min_length=4, max_length=4, description="x, y, width, height of the digit in the upload.")
    group: int = Field(ge=0, description="Which group of the number the digit is in (a wide gap starts the next).")
    probabilities: list[float] = Field(min_length=NUM_CLASSES, max_length=NUM_CLASSES)
    paired: bool = Field(default=False, description="Whether it touches its neighbour so that no cut parts them, "
                         "and the two were read at once by the front end's pair reader (whose probabilities "
                         "these are), not by the model.")
    prepared_png: str | None = Field(default=None, description="With `explain=true`: the image the model saw for "
                                     "this digit (base64 PNG).")


class NumberReading(_Body):
    """The number written on one line of an image (POST /read)."""

    model: str
    version: int
    text: str = Field(description="The digits in reading order, one space between groups (\"12 500\").")
    confidence: float = Field(description="Probability that every digit is right: the product of the digits' "
                              "confidences, not their mean.")
    digits: list[DigitReading]
    calibrated: bool = Field(description="Whether the probabilities are temperature-scaled.")
    providers: list[str]
    angle: float = Field(description="Degrees the line of digits rises to the right.")
    other_digits: int = Field(ge=0, description="Digit-sized ink off the line that was read (another line, a "
                              "stray mark): only the line nearest the centre is read.")
    image: ImageReport = Field(description="How the file was read; `box` holds the whole number.")
    timings: Timings = Field(description="`batch_size`: candidate digits the model read to choose where "
                             "touching or broken digits divide.")


class TextAgreement(_Body):
    """How far the models' readings of one number agree (POST /models/compare?read=true)."""

    majority_text: str = Field(description="The text most models read; on a tie, the first in string order.")
    votes: dict[str, list[str]] = Field(description="Text -> models that read it.")
    agreement: float = Field(description="Share of models that read the majority text.")
    unanimous: bool


class ReadingComparison(_Body):
    """Every ready model's reading of the number in one image (POST /models/compare?read=true)."""

    readings: list[NumberReading] = Field(description="One per ready model, by name, each as POST /read "
                                          "answers with that model: each model chooses where digits divide.")
    agreement: TextAgreement
    unavailable: list[Unavailable]
