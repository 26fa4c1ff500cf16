"""What the endpoints do, below HTTP: prepare inputs, run models, record metrics, describe models.

Routes parse the request and call one method here; nothing here knows about HTTP beyond raising
the domain errors of `service.errors`.

Decoding and inference block. For the common request, a few small images (a 28x28 PNG decodes in
~80 us and a CNN answers in ~60 us), they run right on the event loop: handing them to a worker
thread costs more (~130 us per hop on the 2-core machines we measured, see bench/). Anything
larger, judged from the pixel counts in the image headers, runs in one worker thread for decoding
and inference together, so the event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import anyio.to_thread
import numpy as np
import numpy.typing as npt
from anyio import CapacityLimiter
from PIL import Image

from digit_contract.calibration import served_probabilities
from service.comparison import compare_models, majority_vote
from service.errors import NoInk, NoModelReady, TooManyFiles
from service.image_structure import check_structure
from service.metrics import ServiceMetrics, label_request_model
from service.preprocessing import BLANK_LEVEL, SUPPORTED_FORMATS, PreparedImage, prepare_image, to_model_input
from service.registry import ModelRegistry, ServedModel
from service.schemas import (
    ImageComparison,
    ImageReport,
    LatencyReport,
    ModelComparison,
    ModelDetail,
    ModelList,
    ModelSummary,
    Prediction,
    Readiness,
    Timings,
    Unavailable,
)
from service.settings import Settings

INLINE_MAX_IMAGES = 16
"""Most images in a request that may run on the event loop (see `Settings.inline_max_pixels`)."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class ImageFile:
    """An uploaded image file: its bytes and, for multipart parts, the client's filename."""

    data: bytes
    filename: str | None = None


@dataclass(frozen=True)
class _Prepared:
    images: list[PreparedImage]
    seconds: list[float]


class DataPlane:
    """The service's operations over one registry, one settings object and one metrics set."""

    def __init__(self, registry: ModelRegistry, settings: Settings, metrics: ServiceMetrics) -> None:
        self.registry = registry
        self.settings = settings
        self.metrics = metrics
        # Decoding and inference are CPU work: more threads than cores only hold more images (and
        # more allocator arenas) in memory at once, so they get their own small pool of slots.
        self._threads = CapacityLimiter(settings.work_threads)

    # -- predictions -------------------------------------------------------------------------

    async def predict_files(
        self, files: Sequence[ImageFile], model_name: str | None, *, explain: bool = False,
        served: ServedModel | None = None,
    ) -> list[Prediction]:
        """Answer for each image file, in order, with one model (the default when None).

        With `explain`, each answer carries the 28x28 image the model saw. `served`: a model the
        caller already resolved (a version other than the latest, for the Open Inference Protocol).
        """
        self._check_count(len(files))
        # Before decoding: an unknown model costs nothing.
        model = served if served is not None else self._resolve(model_name, uploads=True)

        def work() -> tuple[_Prepared, npt.NDArray[np.float32], float]:
            prepared = self._prepare(files, model.name)
            return (prepared, *self._infer(model, to_model_input(prepared.images)))

        prepared, probabilities, seconds = await self._run_blocking(
            work, inline=_is_small(files, self.settings.inline_max_pixels)
        )
        reports = [_report(image, file.filename, explain) for image, file in zip(prepared.images, files, strict=True)]
        return self._answers(model, probabilities, seconds, prepared.seconds, reports)

    async def predict_pixels(self, images: npt.NDArray[np.float32], model_name: str | None) -> list[Prediction]:
        """Answer for already-normalised (N, 28, 28, 1) input."""
        self._check_count(len(images))
        _check_pixels_have_ink(images)
        model = self._resolve(model_name)
        probabilities, seconds = await self._run_blocking(
            lambda: self._infer(model, images),
            inline=self.settings.inline_max_pixels > 0 and len(images) <= INLINE_MAX_IMAGES,
        )
        return self._answers(model, probabilities, seconds, [0.0] * len(images), [None] * len(images))

    async def compare_image(self, file: ImageFile, *, explain: bool = False) -> ImageComparison:
        """Every ready model's answer for one image, and how far they agree."""
        models = self.registry.models
        ready = [m for _, m in sorted(models.items()) if m.ready]
        if not ready:
            raise NoModelReady("no model is ready to answer")
        label_request_model("*")

        def work() -> tuple[_Prepared, list[tuple[npt.NDArray[np.float32], float]]]:
            prepared = self._prepare([file], "*")
            batch = to_model_input(prepared.images)
            return prepared, [self._infer(model, batch) for model in ready]

        prepared, results = await self._run_blocking(work, inline=_is_small([file], self.settings.inline_max_pixels))
        report = _report(prepared.images[0], file.filename, explain)
        predictions = []
        for model, (probabilities, seconds) in zip(ready, results, strict=True):
            predictions += self._answers(model, probabilities, seconds, prepared.seconds, [report])
        return ImageComparison(
            predictions=predictions,
            agreement=majority_vote(predictions),
            unavailable=[
                Unavailable(name=m.name, reason=m.reason or "not ready")
                for _, m in sorted(models.items())
                if not m.ready
            ],
        )

    async def _run_blocking(self, work: Callable[[], _T], *, inline: bool) -> _T:
        """Run blocking work on the event loop when it is known to be tiny, else in a worker thread."""
        return work() if inline else await anyio.to_thread.run_sync(work, limiter=self._threads)

    def _check_count(self, count: int) -> None:
        if count > self.settings.max_files_per_request:
            raise TooManyFiles(
                f"too many images in one request: {count}; the limit is {self.settings.max_files_per_request}"
            )

    def _resolve(self, name: str | None, *, uploads: bool = False) -> ServedModel:
        if name is not None and name in self.registry.models:
            label_request_model(name)  # a known model that is not ready still labels its 503
        model = self.registry.get_ready(name, uploads=uploads)
        label_request_model(model.name)
        return model

    def _prepare(self, files: Sequence[ImageFile], model: str) -> _Prepared:
        images, seconds = [], []
        histogram = self.metrics.preprocess_seconds.labels(model=model)
        for file in files:
            start = time.perf_counter()
            try:
                images.append(prepare_image(file.data, max_pixels=self.settings.max_image_pixels))
            finally:
                elapsed = time.perf_counter() - start
                histogram.observe(elapsed)
            seconds.append(elapsed)
        return _Prepared(images, seconds)

    def _infer(self, model: ServedModel, batch: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], float]:
        start = time.perf_counter()
        probabilities = model.predict(batch)
        elapsed = time.perf_counter() - start
        self.metrics.inference_seconds.labels(model=model.name).observe(elapsed)
        return probabilities, elapsed

    def _answers(
        self,
        model: ServedModel,
        probabilities: npt.NDArray[np.float32],
        inference_seconds: float,
        preprocess_seconds: Sequence[float],
        reports: Sequence[ImageReport | None],
    ) -> list[Prediction]:
        # Temperature scaling never changes the digit, only how sure the answer says it is.
        probabilities, calibrated = served_probabilities(
            model.card, probabilities, enabled=self.settings.calibrated_probabilities
        )
        digits = [int(d) for d in probabilities.argmax(axis=1)]
        confidences = [float(row[d]) for row, d in zip(probabilities, digits, strict=True)]
        self.metrics.observe_prediction(model.name, digits, confidences)
        return [
            Prediction(
                model=model.name,
                version=model.version,
                digit=digit,
                confidence=confidence,
                probabilities=[float(p) for p in row],
                calibrated=calibrated,
                providers=list(model.providers),
                image=report,
                timings=Timings(
                    preprocess_ms=pre * 1000, inference_ms=inference_seconds * 1000, batch_size=len(probabilities)
                ),
            )
            for digit, confidence, row, pre, report in zip(
                digits, confidences, probabilities, preprocess_seconds, reports, strict=True
            )
        ]

    # -- models ------------------------------------------------------------------------------

    def list_models(self) -> ModelList:
        models = self.registry.models
        default = self.registry.default_name(models)
        for_uploads = self.registry.default_name(models, uploads=True)
        return ModelList(
            default_model=default,
            default_upload_model=for_uploads,
            models=[_summary(m, default, for_uploads, self.registry.upload_accuracy) for _, m in sorted(models.items())],
        )

    def describe_model(self, name: str) -> ModelDetail:
        model = self.registry.get(name)
        summary = _summary(model, self.registry.default_name(), self.registry.default_name(uploads=True),
                           self.registry.upload_accuracy)
        return ModelDetail(**dict(summary), card=model.card)

    def compare_models(self) -> ModelComparison:
        return compare_models(self.registry.models, self.registry.store)

    # -- health ------------------------------------------------------------------------------

    def readiness(self) -> Readiness:
        """Ready when every model serves, degraded when some do; raises NoModelReady when none can."""
        models = self.registry.models
        states = {name: m.state for name, m in sorted(models.items())}
        default = self.registry.default_name(models)  # from the same snapshot, across a reload
        if default is None:
            raise NoModelReady("no model is ready", models=states)
        if not models[default].ready:
            # Only a configured default can be failed: requests without `model` would all get 503.
            raise NoModelReady(f"the default model {default!r} is not ready", models=states)
        return Readiness(
            status="ready" if all(m.ready for m in models.values()) else "degraded",
            default_model=default,
            models=states,
        )


INLINE_MAX_BYTES = 256 * 1024
"""Largest request body whose images may be opened on the event loop at all. A drawn digit is a few
KB; anything bigger is decided, and decoded, in a worker thread."""


def _is_small(files: Sequence[ImageFile], max_pixels: int) -> bool:
    """Whether the images' headers declare few enough pixels to decode on the event loop.

    Reads only the headers (Pillow opens lazily), and only for small files whose framing was
    checked first: an image's header can cost more to walk than its pixels to decode (see
    `service.image_structure`). Anything unreadable counts as large, so that the full decode, and
    its error, happen in a worker thread.
    """
    if len(files) > INLINE_MAX_IMAGES or max_pixels <= 0 or sum(len(f.data) for f in files) > INLINE_MAX_BYTES:
        return False
    total = 0
    for file in files:
        try:
            check_structure(file.data)
            with Image.open(io.BytesIO(file.data), formats=SUPPORTED_FORMATS) as image:
                width, height = image.size
        except Exception:
            return False
        total += width * height
        if total > max_pixels:
            return False
    return True


def _check_pixels_have_ink(images: npt.NDArray[np.float32]) -> None:
    """Pixel input gets the upload path's "no ink" answer for a blank image (all zeros or nearly)."""
    peaks = images.reshape(len(images), -1).max(axis=1) if len(images) else np.zeros(0)
    blank = np.flatnonzero(~(peaks >= BLANK_LEVEL / 255.0))  # NaN counts as blank too
    if blank.size:
        raise NoInk(f"no ink found: image {int(blank[0])} of the request is blank (every pixel below "
                    f"{BLANK_LEVEL / 255.0:.3f})")


def _report(image: PreparedImage, filename: str | None, explain: bool = False) -> ImageReport:
    return ImageReport(
        filename=filename,
        format=image.format,
        width=image.width,
        height=image.height,
        mode=image.mode,
        method=image.method,
        inverted=image.inverted,
        box=list(image.box),
        other_digits=image.other_digits,
        lines_removed=image.lines_removed,
        prepared_png=image.png_base64() if explain else None,
    )


def _summary(
    model: ServedModel, default: str | None, upload_default: str | None, upload_accuracy: Mapping[str, float]
) -> ModelSummary:
    card = model.card
    latency = model.latency
    return ModelSummary(
        name=model.name,
        version=model.version,
        state=model.state,
        reason=model.reason,
        default=model.name == default,
        default_for_uploads=model.name == upload_default,
        upload_validation_accuracy=upload_accuracy.get(model.name),
        providers=list(model.providers),
        architecture=card.architecture if card else None,
        description=card.description if card else None,
        test_accuracy=card.test_accuracy if card else None,
        latency=LatencyReport(runs=latency.runs, p50_ms=latency.p50_ms, p95_ms=latency.p95_ms, mean_ms=latency.mean_ms)
        if latency
        else None,
        loaded_at=model.loaded_at,
    )
