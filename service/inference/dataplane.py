"""What the endpoints do, below HTTP: prepare inputs, run models, record metrics, describe models.

Routes and the Open Inference Protocol's plane parse their transport and call the public methods
here; nothing here knows about HTTP beyond raising the domain errors of `service.errors`.

Every transport takes one path (`DataPlane.infer`): the model is looked up once per request, its
inputs are prepared once, run, and post-processed once: whether probabilities are calibrated is
decided in `_postprocess` and nowhere else, and the metrics are recorded there and in `_run`. So
`/predict`, `/models/compare`, `/v2` (tensors and image files, REST and gRPC) give one image the
same probabilities; a request may ask for the raw softmax (`calibrated=false`).

The per-request image path itself (open each file's header once, decode, find the digit, frame it
for each model's input spec, batch; check pixel input against a spec) is `service.inference.preparation`.

Decoding and inference block. For the common request, a few small images (a 28x28 PNG decodes in
~80 us and a CNN answers in ~60 us), they run right on the event loop: handing them to a worker
thread costs more (~130 us per hop on the 2-core machines we measured, see bench/). Anything
larger, judged from the pixel counts in the image headers, runs in one worker thread for decoding
and inference together, so the event loop keeps serving other requests meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import anyio.to_thread
import numpy as np
import numpy.typing as npt
from anyio import CapacityLimiter

from digit_contract.calibration import served_probabilities
from digit_contract.inputs import MNIST_INPUT, InputSpec
from digit_frontend.model_input import frame, model_input
from digit_frontend.numbers import (
    FoundNumber,
    NumberCandidates,
    choose_number,
    number_candidates,
    text_of,
    verifier_for,
)
from digit_frontend.pipeline import PreparedImage, png_base64
from service.errors import ModelNotReady, NoModelReady, TooManyFiles
from service.inference.comparison import compare_served, majority_vote, text_vote, with_latency
from service.inference.preparation import (
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
from service.models.registry import ModelRegistry, ServedModel
from service.observability.metrics import ServiceMetrics, label_request_model
from service.observability.tracing import stage
from service.schemas import (
    DigitReading,
    ImageComparison,
    ImageReport,
    InputSpecReport,
    LatencyReport,
    ModelComparison,
    ModelDetail,
    ModelList,
    ModelSummary,
    NumberReading,
    Prediction,
    Readiness,
    ReadingComparison,
    RequestLatencyReport,
    Timings,
    Unavailable,
)
from service.settings import Settings

__all__ = ["INLINE_MAX_IMAGES", "BatchRunner", "DataPlane", "ImageFile", "ModelInput", "Outputs", "Pixels", "input_spec"]

_T = TypeVar("_T")


def input_spec(model: ServedModel | None) -> InputSpec:
    """The input `model` takes (`ServedModel.input_spec`); MNIST's when there is no model."""
    return model.input_spec if model is not None else MNIST_INPUT


@dataclass(frozen=True)
class Pixels:
    """Input that is already numbers: (N, height, width[, 1]) or (N, *sample_shape) values in
    `spec`'s range (the spec they were read against; the model's own decides their shape)."""

    images: npt.NDArray[np.float32]
    spec: InputSpec = MNIST_INPUT


ModelInput = Sequence[ImageFile] | Pixels
"""What a request gives a model: encoded image files, or pixels."""

BatchRunner = Callable[[ServedModel, npt.NDArray[np.float32]], Awaitable[npt.NDArray[np.float32]]]
"""Runs a batch of model input through a model, raw probabilities out (an adaptive batcher)."""


@dataclass(frozen=True)
class Outputs:
    """One model's answers for one request's inputs, post-processed: what every transport returns."""

    model: ServedModel
    probabilities: npt.NDArray[np.float32]
    """(N, 10), temperature-scaled when `calibrated`."""
    calibrated: bool
    inference_seconds: float
    prepared: Sequence[PreparedUpload] = ()
    """Per image file, its digit as framed (empty for pixel input)."""


class DataPlane:
    """The service's operations over one registry, one settings object and one metrics set."""

    def __init__(self, registry: ModelRegistry, settings: Settings, metrics: ServiceMetrics) -> None:
        self.registry = registry
        self.settings = settings
        self.metrics = metrics
        # Decoding and inference are CPU work: more threads than cores only hold more images (and
        # more allocator arenas) in memory at once, so they get their own small pool of slots.
        self._threads = CapacityLimiter(settings.work_threads)
        self._comparison: tuple[Mapping[str, ServedModel], ModelComparison] | None = None
        self._comparison_lock = anyio.Lock()

    # -- the one inference path --------------------------------------------------------------

    def resolve(self, name: str | None, *, uploads: bool = False) -> ServedModel:
        """The ready model `name`, or the default one (for image uploads, with `uploads`) when None;
        the request's metrics are labelled with it. Call once per request.

        Raises:
            ModelNotFound, ModelNotReady, NoModelReady: as `ModelRegistry.get_ready`.
        """
        try:
            model = self.registry.get_ready(name, uploads=uploads)
        except ModelNotReady:
            if name is not None:
                label_request_model(name)  # a known model that is not ready still labels its 503
            raise
        label_request_model(model.name)
        return model

    def admit(self, model: ServedModel) -> ServedModel:
        """A model the caller looked up itself (a version other than the latest, for the protocol):
        label the request with it, and refuse it when it is not ready (ModelNotReady)."""
        label_request_model(model.name)
        if not model.ready:
            raise ModelNotReady(model.name, model.reason or "not loaded")
        return model

    async def infer(self, model: ServedModel, inputs: ModelInput, *, calibrated: bool = True,
                    run: BatchRunner | None = None) -> Outputs:
        """Prepare `inputs` for `model` once, run it, post-process once: every transport's path.

        Args:
            model: from `resolve` or `admit`.
            inputs: image files (decoded, their digit found and framed as `model`'s card says) or
                pixels (laid out as its input spec).
            calibrated: False asks for the model's raw softmax; True gets temperature-scaled
                probabilities where the service's setting and the model's card say so.
            run: runs pixel batches instead of the data plane (an adaptive batcher).
        Raises:
            TooManyFiles, the image errors of `service.inference.preparation`, InvalidInput (pixels of
            another shape than the model takes).
        """
        spec = input_spec(model)
        if isinstance(inputs, Pixels):
            batch = pixels_for(inputs.images, spec, model.name)
            if run is not None:
                start = time.perf_counter()
                probabilities = await run(model, batch)
                return self._postprocess(model, probabilities, time.perf_counter() - start, calibrated)
            probabilities, seconds = await self._offload(lambda: self._run(model, batch), inline=self._inline(batch))
            return self._postprocess(model, probabilities, seconds, calibrated)
        uploads = self._open(inputs)

        def work() -> tuple[list[PreparedUpload], npt.NDArray[np.float32], float]:
            prepared = self._prepare(uploads, {spec.encoding}, model.name)
            return (prepared, *self._run(model, model_batch(prepared, spec)))

        prepared, probabilities, seconds = await self._offload(
            work, inline=runs_inline(uploads, self.settings.inline_max_pixels)
        )
        return self._postprocess(model, probabilities, seconds, calibrated, prepared)

    async def run_model(self, model: ServedModel, batch: npt.NDArray[np.float32], *,
                        inline: bool | None = None) -> npt.NDArray[np.float32]:
        """Raw probabilities for model input, the inference metrics recorded: a few images on the
        event loop, more in a worker thread (`inline` forces the choice). An adaptive batcher's runner."""
        probabilities, _ = await self._offload(lambda: self._run(model, batch),
                                               inline=self._inline(batch) if inline is None else inline)
        return probabilities

    def model_properties(self, model: ServedModel) -> dict[str, str]:
        """What a model's answers are by default, for the protocol's model metadata (`properties`)."""
        card = model.card
        calibration = card.calibration if card is not None else None
        scaled = self.settings.calibrated_probabilities and calibration is not None and calibration.applied
        properties = {"probabilities": "calibrated" if scaled else "raw",
                      "raw_probabilities": "request parameter calibrated=false"}
        if calibration is not None and scaled:
            properties["temperature"] = f"{calibration.temperature:.6g}"
        return properties

    def waiting_for_threads(self) -> int:
        """Requests waiting for a work thread now (readiness reports a saturated queue)."""
        return int(self._threads.statistics().tasks_waiting)

    def _inline(self, batch: npt.NDArray[np.float32]) -> bool:
        return self.settings.inline_max_pixels > 0 and len(batch) <= INLINE_MAX_IMAGES

    async def _offload(self, work: Callable[[], _T], *, inline: bool) -> _T:
        """Run blocking work on the event loop when it is known to be tiny, else in a worker thread."""
        return work() if inline else await anyio.to_thread.run_sync(work, limiter=self._threads)

    def _check_count(self, count: int) -> None:
        if count > self.settings.max_files_per_request:
            raise TooManyFiles(
                f"too many images in one request: {count}; the limit is {self.settings.max_files_per_request}"
            )

    def _open(self, files: Sequence[ImageFile]) -> list[Upload]:
        self._check_count(len(files))
        return open_uploads(files, max_pixels=self.settings.max_image_pixels)

    def _prepare(self, uploads: Sequence[Upload], encodings: set[str], model: str) -> list[PreparedUpload]:
        observe = self.metrics.preprocess_seconds.labels(model=model).observe
        return [prepare_upload(upload, encodings, observe) for upload in uploads]

    def _run(self, model: ServedModel, batch: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], float]:
        with stage("infer", model=model.name, images=len(batch)):
            start = time.perf_counter()
            probabilities = model.predict(batch)
            elapsed = time.perf_counter() - start
        self.metrics.inference_seconds.labels(model=model.name).observe(elapsed)
        model.requests.record(elapsed, len(batch))
        return probabilities, elapsed

    def _postprocess(self, model: ServedModel, probabilities: npt.NDArray[np.float32], seconds: float,
                     calibrated: bool, prepared: Sequence[PreparedUpload] = ()) -> Outputs:
        # The one place that decides calibration. Temperature scaling never changes the digit,
        # only how sure the answer says it is.
        with stage("answer", model=model.name):
            probabilities, scaled = served_probabilities(
                model.card, probabilities, enabled=calibrated and self.settings.calibrated_probabilities
            )
            self.metrics.observe_prediction(model.name, probabilities)
        return Outputs(model, probabilities, scaled, seconds, prepared)

    # -- /predict and POST /models/compare ---------------------------------------------------

    async def predict_files(self, files: Sequence[ImageFile], model_name: str | None, *, explain: bool = False,
                            calibrated: bool = True) -> list[Prediction]:
        """Answer for each image file, in order, with one model (the default for uploads when None).

        With `explain`, each answer carries the image the model saw (28x28, or 8x8 for the UCI models).
        """
        model = self.resolve(model_name, uploads=True)  # before decoding: an unknown model costs nothing
        outputs = await self.infer(model, files, calibrated=calibrated)
        spec = input_spec(model)
        reports = [_report(upload, spec, file.filename, explain)
                   for upload, file in zip(outputs.prepared, files, strict=True)]
        return _predictions(outputs, [p.seconds for p in outputs.prepared], reports)

    async def predict_pixels(self, images: npt.NDArray[np.float32], model_name: str | None,
                             spec: InputSpec = MNIST_INPUT, *, calibrated: bool = True) -> list[Prediction]:
        """Answer for already-normalised input: (N, height, width[, 1]) images in `spec`'s range
        (the spec they were read for; the model's own decides their shape)."""
        self._check_count(len(images))
        check_ink(images, spec)
        outputs = await self.infer(self.resolve(model_name), Pixels(images, spec), calibrated=calibrated)
        return _predictions(outputs, [0.0] * len(images), [None] * len(images))

    def pixel_target(self, model_name: str | None) -> tuple[str | None, InputSpec]:
        """The model JSON pixels for `model_name` (None: the default model) are meant for, and the
        input spec to read them against; (None, MNIST's) when that model is not known.

        The name found is the one to pass to `predict_pixels`, so that the default is chosen once.
        Never raises: an unknown model gets its 404 after the body is read, as it always did.
        """
        models = self.registry.models
        name = model_name if model_name is not None else self.registry.default_name(models)
        if name is None or name not in models:
            return None, MNIST_INPUT
        return name, input_spec(models[name])

    async def read_number(self, file: ImageFile, model_name: str | None, *, explain: bool = False,
                          calibrated: bool = True) -> NumberReading:
        """POST /read: the digits of the line nearest the image's centre, in reading order, read by one
        model (the default for uploads when None). Each candidate digit is framed as the model's card
        says and all are read in one batch; where touching or broken digits could divide several ways,
        the model's reading decides (`digit_frontend.numbers`).

        Raises:
            the errors of `predict_files` for one file.
        """
        model = self.resolve(model_name, uploads=True)  # before decoding: an unknown model costs nothing
        uploads = self._open([file])
        runs: list[tuple[float, int]] = []  # (seconds, candidates) per model call

        def work() -> tuple[FoundNumber, float]:
            start = time.perf_counter()
            try:
                return self._choose(model, number_candidates(uploads[0].decode()), runs), time.perf_counter() - start
            finally:
                spent = uploads[0].open_seconds + time.perf_counter() - start - sum(r[0] for r in runs)
                self.metrics.preprocess_seconds.labels(model=model.name).observe(spent)

        found, seconds = await self._offload(work, inline=runs_inline(uploads, self.settings.inline_max_pixels))
        return self._number_answer(model, found, runs, uploads[0].open_seconds + seconds, file.filename,
                                   explain=explain, calibrated=calibrated)

    async def compare_reading(self, file: ImageFile, *, explain: bool = False,
                              calibrated: bool = True) -> ReadingComparison:
        """POST /models/compare?read=true: every ready model's reading of the number in one image, and
        how far they agree on its text.

        The line and its candidate digits are found once (`number_candidates`); each model then reads
        them (one batch each) and chooses where its digits divide, exactly as POST /read with that model.

        Raises:
            NoModelReady: no model is ready; else the errors of `read_number`.
        """
        models = self.registry.models
        ready = [m for _, m in sorted(models.items()) if m.ready]
        if not ready:
            raise NoModelReady("no model is ready to answer")
        label_request_model("*")
        uploads = self._open([file])
        runs: list[list[tuple[float, int]]] = [[] for _ in ready]

        def work() -> tuple[float, list[tuple[FoundNumber, float]]]:
            start = time.perf_counter()
            try:
                candidates = number_candidates(uploads[0].decode())
            finally:
                located = uploads[0].open_seconds + time.perf_counter() - start
                self.metrics.preprocess_seconds.labels(model="*").observe(located)
            chosen = []
            for model, model_runs in zip(ready, runs, strict=True):
                begin = time.perf_counter()
                chosen.append((self._choose(model, candidates, model_runs), time.perf_counter() - begin))
            return located, chosen

        located, chosen = await self._offload(work, inline=runs_inline(uploads, self.settings.inline_max_pixels))
        readings = [self._number_answer(model, found, model_runs, located + seconds, file.filename,
                                        explain=explain, calibrated=calibrated)
                    for model, model_runs, (found, seconds) in zip(ready, runs, chosen, strict=True)]
        return ReadingComparison(readings=readings, agreement=text_vote(readings), unavailable=_unavailable(models))

    def _choose(self, model: ServedModel, candidates: NumberCandidates, runs: list[tuple[float, int]]) -> FoundNumber:
        """One model's reading of a number's candidates: each framed as its card says, all in one batch;
        each model call's (seconds, candidates) appended to `runs`."""
        spec = input_spec(model)

        def read(images: Sequence[PreparedImage]) -> npt.NDArray[np.float32]:
            batch = model_input([frame(image, spec.encoding) for image in images], spec)
            probabilities, seconds = self._run(model, batch)
            runs.append((seconds, len(images)))
            return probabilities

        return choose_number(candidates, read, verifier=verifier_for(model.name))

    def _number_answer(self, model: ServedModel, found: FoundNumber, runs: Sequence[tuple[float, int]],
                       seconds: float, filename: str | None, *, explain: bool, calibrated: bool) -> NumberReading:
        """The answer of POST /read; `seconds`: opening, finding and reading the number, model calls included."""
        assert found.probabilities is not None  # a reader was given
        inference = sum(r[0] for r in runs)
        outputs = self._postprocess(model, found.probabilities, inference, calibrated)
        if found.paired:
            # Digits the pair reader read with their neighbour keep its probabilities: the model's
            # temperature describes the model's own readings, not the pair reader's.
            paired = np.array(found.paired)
            probabilities = outputs.probabilities.copy()
            probabilities[paired] = found.probabilities[paired]
            outputs = replace(outputs, probabilities=probabilities)
        timings = Timings(preprocess_ms=(seconds - inference) * 1000, inference_ms=inference * 1000,
                          batch_size=sum(r[1] for r in runs))
        return _number_reading(outputs, found, input_spec(model), filename, timings, explain)

    async def compare_image(self, file: ImageFile, *, explain: bool = False, calibrated: bool = True) -> ImageComparison:
        """Every ready model's answer for one image, and how far they agree.

        The image is decoded and its digit found once, framed once per encoding the models take,
        and laid out once per input spec; each model's answer is post-processed as `infer`'s.
        """
        models = self.registry.models
        ready = [m for _, m in sorted(models.items()) if m.ready]
        if not ready:
            raise NoModelReady("no model is ready to answer")
        label_request_model("*")
        specs = {model.name: input_spec(model) for model in ready}
        uploads = self._open([file])

        def work() -> tuple[list[PreparedUpload], list[tuple[npt.NDArray[np.float32], float]]]:
            prepared = self._prepare(uploads, {spec.encoding for spec in specs.values()}, "*")
            batches = {spec: model_batch(prepared, spec) for spec in set(specs.values())}
            return prepared, [self._run(model, batches[specs[model.name]]) for model in ready]

        prepared, results = await self._offload(work, inline=runs_inline(uploads, self.settings.inline_max_pixels))
        predictions = []
        for model, (probabilities, seconds) in zip(ready, results, strict=True):
            outputs = self._postprocess(model, probabilities, seconds, calibrated, prepared)
            report = _report(prepared[0], specs[model.name], file.filename, explain)
            predictions += _predictions(outputs, [prepared[0].seconds], [report])
        return ImageComparison(
            predictions=predictions,
            agreement=majority_vote(predictions),
            unavailable=_unavailable(models),
        )

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

    async def compare_models(self) -> ModelComparison:
        """GET /models/compare. The statistics change only when the set of models does (a reload or an
        unload swaps the registry's snapshot): they are computed once per snapshot, in a worker thread
        (every McNemar and permutation test, ~100 ms for the zoo), and reused; the latency each model
        has had is read afresh on every call."""
        models = self.registry.models
        cached = self._comparison
        if cached is None or cached[0] is not models:
            async with self._comparison_lock:  # concurrent first requests wait for one computation
                cached = self._comparison
                if cached is None or cached[0] is not models:
                    comparison = await anyio.to_thread.run_sync(compare_served, models, self.registry.store,
                                                                limiter=self._threads)
                    self._comparison = cached = (models, comparison)
        return with_latency(cached[1], models)

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


def _predictions(outputs: Outputs, preprocess_seconds: Sequence[float],
                 reports: Sequence[ImageReport | None]) -> list[Prediction]:
    model, probabilities = outputs.model, outputs.probabilities
    digits = [int(d) for d in probabilities.argmax(axis=1)]
    timings = [Timings(preprocess_ms=pre * 1000, inference_ms=outputs.inference_seconds * 1000,
                       batch_size=len(probabilities)) for pre in preprocess_seconds]
    return [
        Prediction(
            model=model.name,
            version=model.version,
            digit=digit,
            confidence=float(row[digit]),
            probabilities=[float(p) for p in row],
            calibrated=outputs.calibrated,
            providers=list(model.providers),
            image=report,
            timings=timing,
        )
        for digit, row, timing, report in zip(digits, probabilities, timings, reports, strict=True)
    ]


def _unavailable(models: Mapping[str, ServedModel]) -> list[Unavailable]:
    """The models that did not answer a comparison, and why."""
    return [Unavailable(name=m.name, reason=m.reason or "not ready") for _, m in sorted(models.items()) if not m.ready]


def _number_reading(outputs: Outputs, found: FoundNumber, spec: InputSpec, filename: str | None, timings: Timings,
                    explain: bool) -> NumberReading:
    model, probabilities = outputs.model, outputs.probabilities
    digits = [int(d) for d in probabilities.argmax(axis=1)]
    readings = [
        DigitReading(digit=digit, confidence=float(row[digit]), box=list(image.box), group=group,
                     probabilities=[float(p) for p in row], paired=paired,
                     prepared_png=png_base64(PreparedUpload(image, {spec.encoding: frame(image, spec.encoding)}, 0.0)
                                             .picture(spec.encoding)) if explain else None)
        for digit, row, image, group, paired in zip(digits, probabilities, found.digits, found.groups,
                                                    found.paired or (False,) * len(digits), strict=True)
    ]
    first = found.digits[0]
    x0, y0 = min(d.box[0] for d in found.digits), min(d.box[1] for d in found.digits)
    x1 = max(d.box[0] + d.box[2] for d in found.digits)
    y1 = max(d.box[1] + d.box[3] for d in found.digits)
    image = ImageReport(filename=filename, format=first.format, width=first.width, height=first.height,
                        mode=first.mode, method=first.method, inverted=first.inverted, box=[x0, y0, x1 - x0, y1 - y0],
                        other_digits=found.other_digits, lines_removed=first.lines_removed)
    return NumberReading(
        model=model.name, version=model.version, text=text_of(digits, found.groups),
        # The number is right only if every digit is: the product, not the mean.
        confidence=float(np.prod([r.confidence for r in readings])),
        digits=readings, calibrated=outputs.calibrated, providers=list(model.providers), angle=found.angle,
        other_digits=found.other_digits, image=image, timings=timings,
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
