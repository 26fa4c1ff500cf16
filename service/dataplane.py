"""What the endpoints do, below HTTP: prepare inputs, run models, record metrics, describe models.

Routes parse the request and call one method here; nothing here knows about HTTP beyond raising
the domain errors of `service.errors`.

The data plane orchestrates; the per-request path itself (open each file's header once, decode,
find the digit, frame it for each model's input spec, batch; check pixel input against a spec)
is `service.model_inputs`. Here: the image count, which model (and so which `InputSpec`, from its
card), inline or in a worker thread, inference, and metrics.

Decoding and inference block. For the common request, a few small images (a 28x28 PNG decodes in
~80 us and a CNN answers in ~60 us), they run right on the event loop: handing them to a worker
thread costs more (~130 us per hop on the 2-core machines we measured, see bench/). Anything
larger, judged from the pixel counts in the image headers, runs in one worker thread for decoding
and inference together, so the event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

import anyio.to_thread
import numpy as np
import numpy.typing as npt
from anyio import CapacityLimiter

from digit_contract.calibration import served_probabilities
from digit_contract.inputs import MNIST_INPUT, InputSpec
from digit_frontend.pipeline import png_base64
from service.comparison import compare_models, majority_vote
from service.errors import NoModelReady, TooManyFiles
from service.metrics import ServiceMetrics, label_request_model
from service.model_inputs import (
    INLINE_MAX_IMAGES,
    ImageFile,
    PreparedUpload,
    Upload,
    check_ink,
    model_batch,
    open_uploads,
    pixels_for,
    prepare_upload,
    runs_inline,
)
from service.registry import ModelRegistry, ServedModel
from service.schemas import (
    ImageComparison,
    ImageReport,
    InputSpecReport,
    LatencyReport,
    ModelComparison,
    ModelDetail,
    ModelList,
    ModelSummary,
    Prediction,
    Readiness,
    RequestLatencyReport,
    Timings,
    Unavailable,
)
from service.settings import Settings

__all__ = ["INLINE_MAX_IMAGES", "DataPlane", "ImageFile", "input_spec"]

_T = TypeVar("_T")


def input_spec(model: ServedModel | None) -> InputSpec:
    """The input `model` takes, from its card (a model without one, which cannot serve: MNIST's)."""
    return model.card.input if model is not None and model.card is not None else MNIST_INPUT


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

        With `explain`, each answer carries the image the model saw (28x28, or 8x8 for the UCI
        models). `served`: a model the caller already resolved (a version other than the latest,
        for the Open Inference Protocol).
        """
        self._check_count(len(files))
        # Before decoding: an unknown model costs nothing.
        model = served if served is not None else self._resolve(model_name, uploads=True)
        spec = input_spec(model)
        uploads = self._uploads(files)

        def work() -> tuple[list[PreparedUpload], npt.NDArray[np.float32], float]:
            prepared = self._prepare(uploads, {spec.encoding}, model.name)
            return (prepared, *self._infer(model, model_batch(prepared, spec)))

        prepared, probabilities, seconds = await self._run_blocking(
            work, inline=runs_inline(uploads, self.settings.inline_max_pixels)
        )
        reports = [_report(upload, spec, file.filename, explain) for upload, file in zip(prepared, files, strict=True)]
        return self._answers(model, probabilities, seconds, [p.seconds for p in prepared], reports)

    async def predict_pixels(self, images: npt.NDArray[np.float32], model_name: str | None,
                             spec: InputSpec = MNIST_INPUT) -> list[Prediction]:
        """Answer for already-normalised input: (N, height, width[, 1]) images in `spec`'s range
        (the spec they were read for; the model's own decides their shape)."""
        self._check_count(len(images))
        check_ink(images, spec)
        model = self._resolve(model_name)
        batch = pixels_for(images, input_spec(model), model.name)
        probabilities, seconds = await self._run_blocking(
            lambda: self._infer(model, batch),
            inline=self.settings.inline_max_pixels > 0 and len(batch) <= INLINE_MAX_IMAGES,
        )
        return self._answers(model, probabilities, seconds, [0.0] * len(batch), [None] * len(batch))

    def pixel_target(self, model_name: str | None) -> tuple[str | None, InputSpec]:
        """The model JSON pixels for `model_name` (None: the default model) are meant for, and the
        input spec to read them against; (None, MNIST's) when that model is not known.

        Never raises: an unknown model gets its 404 after the body is read, as it always did.
        """
        models = self.registry.models
        name = model_name if model_name is not None else self.registry.default_name(models)
        if name is None or name not in models:
            return None, MNIST_INPUT
        return name, input_spec(models[name])

    async def compare_image(self, file: ImageFile, *, explain: bool = False) -> ImageComparison:
        """Every ready model's answer for one image, and how far they agree.

        The image is decoded and its digit found once, framed once per encoding the models take,
        and laid out once per input spec.
        """
        models = self.registry.models
        ready = [m for _, m in sorted(models.items()) if m.ready]
        if not ready:
            raise NoModelReady("no model is ready to answer")
        label_request_model("*")
        specs = {model.name: input_spec(model) for model in ready}
        uploads = self._uploads([file])

        def work() -> tuple[list[PreparedUpload], list[tuple[npt.NDArray[np.float32], float]]]:
            prepared = self._prepare(uploads, {spec.encoding for spec in specs.values()}, "*")
            batches = {spec: model_batch(prepared, spec) for spec in set(specs.values())}
            return prepared, [self._infer(model, batches[specs[model.name]]) for model in ready]

        prepared, results = await self._run_blocking(work, inline=runs_inline(uploads, self.settings.inline_max_pixels))
        predictions = []
        for model, (probabilities, seconds) in zip(ready, results, strict=True):
            report = _report(prepared[0], specs[model.name], file.filename, explain)
            predictions += self._answers(model, probabilities, seconds, [prepared[0].seconds], [report])
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

    def _uploads(self, files: Sequence[ImageFile]) -> list[Upload]:
        return open_uploads(files, max_pixels=self.settings.max_image_pixels)

    def _prepare(self, uploads: Sequence[Upload], encodings: set[str], model: str) -> list[PreparedUpload]:
        observe = self.metrics.preprocess_seconds.labels(model=model).observe
        return [prepare_upload(upload, encodings, observe) for upload in uploads]

    def _infer(self, model: ServedModel, batch: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], float]:
        start = time.perf_counter()
        probabilities = model.predict(batch)
        elapsed = time.perf_counter() - start
        self.metrics.inference_seconds.labels(model=model.name).observe(elapsed)
        model.requests.record(elapsed, len(batch))
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


def _report(prepared: PreparedUpload, spec: InputSpec, filename: str | None, explain: bool = False) -> ImageReport:
    image = prepared.image
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
        prepared_png=png_base64(prepared.picture(spec.encoding)) if explain else None,
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
        latency=LatencyReport.of(latency),
        request_latency=RequestLatencyReport.of(model.requests.stats(), model.requests.mean_batch()),
        input=InputSpecReport.from_spec(card.input) if card else None,
        loaded_at=model.loaded_at,
    )
