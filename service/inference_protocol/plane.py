"""What the protocol's endpoints do, for both transports, over the service's data plane.

Model names are the registry's; a model's versions are the ones its version policy loaded
(`DIGITS_VERSION_POLICY`, default the latest only). A request without a version gets the model's
latest loaded version, as `/predict` does.

Image files (`image_file`) go through `DataPlane.predict_files`, the very path of `POST /predict`,
so they get the same preprocessing, limits (`max_files_per_request`, the pixel limit), metrics and
errors. Tensors (`image`) skip preprocessing and go to the model as they are, in batches of up to
`MAX_BATCH` (the `max_batch_size` of the Triton configs in the store). Both are shaped by the
model's input spec (its card's, checked against its ONNX signature when it was loaded).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from digit_contract.inputs import INPUT_NAME
from service.dataplane import DataPlane, input_spec
from service.errors import ModelNotFound, ModelNotReady
from service.inference_protocol.errors import VersionNotFound
from service.inference_protocol.tensors import (
    MODEL_OUTPUTS,
    PLATFORM,
    InferRequest,
    InferResponse,
    build_outputs,
    image_files,
    model_images,
    model_inputs,
    single_input,
)
from service.metrics import label_request_model
from service.model_inputs import INLINE_MAX_IMAGES, ImageFile
from service.registry import ServedModel

SERVER_NAME = "digit-serving"

EXTENSIONS = ("binary_tensor_data", "classification")
"""Triton's protocol extensions this server implements (announced in the server metadata)."""

MAX_BATCH = 1024
"""Most images in one tensor inference request (FP32 `image`): 3.2 MB of binary data."""

BatchRunner = Callable[[ServedModel, npt.NDArray[np.float32]], Awaitable[npt.NDArray[np.float32]]]
"""Runs a batch of model input through a model: the data plane directly, or an adaptive batcher."""


class InferencePlane:
    """The protocol's operations over one data plane (and so one registry, settings and metrics)."""

    def __init__(self, dataplane: DataPlane, version: str, *, run_batch: BatchRunner | None = None) -> None:
        self.dataplane = dataplane
        self.version = version
        self._run_batch = run_batch or self.run_model

    # -- server ------------------------------------------------------------------------------

    def server_metadata(self) -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": self.version, "extensions": list(EXTENSIONS)}

    def server_ready(self) -> bool:
        """Ready when every model is (the specification's "all the models are ready", as Triton's
        default strict readiness). The native `/health/ready` also reports a degraded state."""
        models = self.dataplane.registry.models
        return bool(models) and all(model.ready for model in models.values())

    # -- models ------------------------------------------------------------------------------

    def model(self, name: str, version: str | None) -> ServedModel:
        """The model `name` at `version` (the current one when None or empty), ready or not.

        Raises:
            ModelNotFound: no such model. VersionNotFound: the model has no such version.
        """
        registry = self.dataplane.registry
        models = registry.models
        if name not in models:
            raise ModelNotFound(name, models)
        if not version:
            return models[name]
        versions = registry.versions(name)
        if version.isdigit() and int(version) in versions:
            return versions[int(version)]
        shown = repr(version) if len(version) <= 20 and version.isalnum() else "with that number"
        loaded = [str(v) for v in sorted(versions)]
        raise VersionNotFound(f"model {name!r} has no version {shown}; versions: {', '.join(loaded) or 'none'}",
                              versions=loaded)

    def model_metadata(self, name: str, version: str | None) -> dict[str, Any]:
        model = self.model(name, version)
        return {
            "name": model.name,
            "versions": [str(v) for v in sorted(self.dataplane.registry.versions(name))],
            "platform": PLATFORM,
            "inputs": [{"name": n, "datatype": d, "shape": list(s)} for n, d, s in model_inputs(input_spec(model))],
            "outputs": [{"name": n, "datatype": d, "shape": list(s)} for n, d, s in MODEL_OUTPUTS],
        }

    def model_ready(self, name: str, version: str | None) -> bool:
        return self.model(name, version).ready

    # -- inference ---------------------------------------------------------------------------

    async def infer(self, name: str, version: str | None, request: InferRequest) -> InferResponse:
        """Run one inference request.

        Raises:
            ModelNotFound, VersionNotFound: no such model or version.
            ModelNotReady: the model failed to load.
            InvalidInferRequest, BatchTooLarge: the request does not fit the model.
            the errors of `DataPlane.predict_files` for image files.
        """
        model = self.model(name, version)
        label_request_model(model.name)
        if not model.ready:
            raise ModelNotReady(model.name, model.reason or "not loaded")
        spec = input_spec(model)
        tensor = single_input(request, spec)  # checks before any work: a wrong request costs nothing
        if tensor.name == INPUT_NAME:
            images = model_images(tensor, MAX_BATCH, spec)
            probabilities = await self._run_batch(model, images)
            self._observe(model, probabilities)
        else:
            files = [ImageFile(data) for data in image_files(tensor, MAX_BATCH)]
            answers = await self.dataplane.predict_files(files, model.name, served=model)
            probabilities = np.asarray([answer.probabilities for answer in answers], dtype=np.float32)
        outputs = build_outputs(request, probabilities)
        return InferResponse(model.name, str(model.version), request.id, outputs)

    def batch_with(self, run_batch: BatchRunner) -> None:
        """Send tensor batches through `run_batch` (an adaptive batcher) instead of straight to the model."""
        self._run_batch = run_batch

    async def run_model(self, model: ServedModel, images: npt.NDArray[np.float32], *,
                        inline: bool | None = None) -> npt.NDArray[np.float32]:
        """Probabilities for model input, as the data plane runs JSON pixels: a few images on the event
        loop, more in one of its worker threads (`inline` forces the choice)."""
        dataplane = self.dataplane
        if inline is None:
            inline = dataplane.settings.inline_max_pixels > 0 and len(images) <= INLINE_MAX_IMAGES
        probabilities, _ = await dataplane._run_blocking(lambda: dataplane._infer(model, images), inline=inline)
        return probabilities

    async def run_model_in_thread(self, model: ServedModel, images: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """`run_model` always in a worker thread (a batcher's runs: the event loop queues the next batch meanwhile)."""
        return await self.run_model(model, images, inline=False)

    def _observe(self, model: ServedModel, probabilities: npt.NDArray[np.float32]) -> None:
        # The same series as `ServiceMetrics.observe_prediction`, counted per digit rather than per
        # image: a batch of 1,024 costs 10 counter increments, not 1,024 (that loop took ~8 ms, more
        # than the MLP's inference). The confidence histogram has no bulk observe: one per image.
        metrics = self.dataplane.metrics
        digits = probabilities.argmax(axis=1)
        for digit, count in enumerate(np.bincount(digits, minlength=probabilities.shape[1]).tolist()):
            if count:
                metrics.predictions.labels(model=model.name, digit=str(digit)).inc(count)
        observe = metrics.confidence.labels(model=model.name).observe
        for confidence in probabilities[np.arange(len(digits)), digits].tolist():
            observe(confidence)
