"""What the protocol's endpoints do, for both transports, over the service's data plane.

Model names are the registry's; a model's versions are the ones its version policy loaded
(`DIGITS_VERSION_POLICY`, default the latest only). A request without a version gets the model's
latest loaded version, as `/predict` does.

Inference goes through `DataPlane.infer`, the path of `POST /predict`: image files (`image_file`)
get the same preprocessing, limits (`max_files_per_request`, the pixel limit) and errors; tensors
(`image`) go to the model as they are, in batches of up to `MAX_BATCH` (the `max_batch_size` of the
Triton configs in the store). Both are shaped by the model's input spec (its card's, checked against
its ONNX signature when it was loaded), and both get the data plane's post-processing: calibrated
probabilities where `/predict` gives them, the raw softmax with the request parameter
`calibrated: false` (`CALIBRATED`; the model metadata's `properties` say which is the default).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from digit_contract.inputs import INPUT_NAME
from service.errors import ModelNotFound
from service.inference.dataplane import BatchRunner, DataPlane, Pixels, input_spec
from service.inference.preparation import ImageFile
from service.inference_protocol.errors import InvalidInferRequest, VersionNotFound
from service.inference_protocol.statistics import InferenceStatistics, RequestTimer
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
from service.models.registry import ServedModel

SERVER_NAME = "digit-serving"

EXTENSIONS = ("binary_tensor_data", "classification", "model_configuration", "statistics", "model_repository")
"""Triton's protocol extensions this server implements (announced in the server metadata)."""

MAX_BATCH = 1024
"""Most images in one tensor inference request (FP32 `image`): 3.2 MB of binary data."""

CALIBRATED = "calibrated"
"""Request parameter: `false` asks for the model's raw softmax instead of calibrated probabilities."""


class InferencePlane:
    """The protocol's operations over one data plane (and so one registry, settings and metrics)."""

    def __init__(self, dataplane: DataPlane, version: str, *, run_batch: BatchRunner | None = None) -> None:
        self.dataplane = dataplane
        self.version = version
        self._run_batch = run_batch
        self.statistics = InferenceStatistics()  # Triton's statistics extension (statistics.py)

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
        # ASCII digits only, and few: str.isdigit() also takes '²', which int() refuses.
        if version.isascii() and version.isdigit() and len(version) <= 9 and int(version) in versions:
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
            "properties": self.dataplane.model_properties(model),
        }

    def model_ready(self, name: str, version: str | None) -> bool:
        return self.model(name, version).ready

    # -- inference ---------------------------------------------------------------------------

    async def infer(self, name: str, version: str | None, request: InferRequest, *,
                    model: ServedModel | None = None) -> InferResponse:
        """Run one inference request (`model`: the one `model(name, version)` already found for it).

        Raises:
            ModelNotFound, VersionNotFound: no such model or version.
            ModelNotReady: the model failed to load.
            InvalidInferRequest, BatchTooLarge: the request does not fit the model.
            the errors of `DataPlane.infer` for image files.
        """
        model = self.dataplane.admit(model if model is not None else self.model(name, version))
        # Triton's statistics count the requests that reached a ready model, failed ones apart.
        timer = RequestTimer()
        try:
            response = await self._infer(model, request, timer)
        except Exception:
            self.statistics.failed(model.name, str(model.version), timer)
            raise
        self.statistics.succeeded(model.name, str(model.version), timer, response.outputs[0].shape[0])
        return response

    async def _infer(self, model: ServedModel, request: InferRequest, timer: RequestTimer) -> InferResponse:
        spec = input_spec(model)
        tensor = single_input(request, spec)  # checks before any work: a wrong request costs nothing
        calibrated = _calibrated(request)
        if tensor.name == INPUT_NAME:
            inputs = Pixels(model_images(tensor, MAX_BATCH, spec), spec)
            timer.phase("compute_input")
            outputs = await self.dataplane.infer(model, inputs, calibrated=calibrated, run=self._run_batch)
        else:
            files = [ImageFile(data) for data in image_files(tensor, MAX_BATCH)]
            timer.phase("compute_input")
            outputs = await self.dataplane.infer(model, files, calibrated=calibrated)
        timer.phase("compute_infer")
        response = InferResponse(model.name, str(model.version), request.id, build_outputs(request, outputs.probabilities))
        timer.phase("compute_output")
        return response

    def batch_with(self, run_batch: BatchRunner) -> None:
        """Send tensor batches through `run_batch` (an adaptive batcher) instead of straight to the model."""
        self._run_batch = run_batch

    async def run_model_in_thread(self, model: ServedModel, images: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Raw probabilities, always computed in a worker thread (a batcher's runs: the event loop
        queues the next batch meanwhile)."""
        return await self.dataplane.run_model(model, images, inline=False)


def _calibrated(request: InferRequest) -> bool:
    value = request.parameters.get(CALIBRATED, True)
    if not isinstance(value, bool):
        raise InvalidInferRequest(f"the request parameter {CALIBRATED!r} must be a boolean (false: the raw softmax)")
    return value
