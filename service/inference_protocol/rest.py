"""The protocol's HTTP/REST endpoints, `/v2/...`, beside the native API.

Routes parse HTTP and delegate to the `InferencePlane` on `app.state`. Their errors keep the one
error body, with the protocol's statuses (`errors.protocol_status`): a route class catches the
service's errors on these routes only, so the native API's statuses do not change.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from digit_contract.errors import ServiceError
from service.api.request_inputs import upload_slot
from service.errors import ErrorBody, describe_validation_errors
from service.inference_protocol.errors import protocol_status
from service.inference_protocol.plane import InferencePlane
from service.inference_protocol.rest_codec import HEADER_LENGTH, decode_request, encode_response, parse_header_length
from service.inference_protocol.tensors import check_version


class ProtocolRoute(APIRoute):
    """A route whose service errors answer with the protocol's status (and the same body)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ServiceError as exc:
                return JSONResponse(exc.body(), status_code=protocol_status(exc), headers=exc.headers)
            except RequestValidationError as exc:  # a path parameter over its length: bad input, 400
                return JSONResponse(describe_validation_errors(exc.errors()), status_code=400)

        return handle


router = APIRouter(prefix="/v2", tags=["open inference protocol"], route_class=ProtocolRoute)

ModelName = Annotated[str, Path(max_length=64, description="Model name (see GET /models)")]
ModelVersion = Annotated[str, Path(max_length=20, description="Model version, e.g. 1")]


INLINE_DECODE_BYTES = 64 * 1024
"""Bodies up to this size are parsed on the event loop (well under a millisecond); larger ones in a thread."""


def _json(content: dict[str, Any], status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def _plane(request: Request) -> InferencePlane:
    plane: InferencePlane = request.app.state.inference_plane
    return plane


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    meaning = {400: "Invalid request", 404: "No such model or version", 413: "Body or batch over a limit",
               503: "Model or server not ready, or the batch queue is full"}
    return {status: {"model": ErrorBody, "description": meaning[status]} for status in statuses}


_TENSOR_METADATA = {
    "type": "object", "required": ["name", "datatype", "shape"],
    "properties": {"name": {"type": "string"}, "datatype": {"type": "string"},
                   "shape": {"type": "array", "items": {"type": "integer"}}},
}
_MODEL_METADATA = {
    "type": "object", "required": ["name", "platform", "inputs", "outputs"],
    "properties": {"name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}},
                   "platform": {"type": "string"},
                   "inputs": {"type": "array", "items": _TENSOR_METADATA},
                   "outputs": {"type": "array", "items": _TENSOR_METADATA}},
}
_PARAMETERS = {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}
_TENSOR_DATA = {"type": "array", "items": {}}
_INFER_REQUEST = {
    "type": "object", "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": _PARAMETERS,
        "inputs": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["name", "shape", "datatype"],
            "properties": {"name": {"type": "string"}, "datatype": {"type": "string"},
                           "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                           "parameters": _PARAMETERS, "data": _TENSOR_DATA}}},
        "outputs": {"type": "array", "items": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}, "parameters": _PARAMETERS}}},
    },
}
_INFER_RESPONSE = {
    "type": "object", "required": ["model_name", "outputs"],
    "properties": {
        "model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"},
        "outputs": {"type": "array", "items": {
            "type": "object", "required": ["name", "shape", "datatype"],
            "properties": {"name": {"type": "string"}, "datatype": {"type": "string"},
                           "shape": {"type": "array", "items": {"type": "integer"}},
                           "parameters": _PARAMETERS, "data": _TENSOR_DATA}}},
    },
}
_BINARY = {"schema": {"type": "string", "format": "binary"}}

INFER_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A JSON inference request, optionally followed by binary tensor data (Triton's binary "
        "data extension: the `Inference-Header-Content-Length` header gives the JSON's length).",
        "content": {"application/json": {"schema": _INFER_REQUEST}, "application/octet-stream": _BINARY},
    }
}
INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The outputs: JSON, or JSON then binary data (`Inference-Header-Content-Length`)",
          "content": {"application/json": {"schema": _INFER_RESPONSE}, "application/octet-stream": _BINARY}},
    **_errors(400, 404, 413, 503),
}


@router.get("", summary="Server metadata", responses={200: {"content": {"application/json": {"schema": {
    "type": "object", "required": ["name", "version", "extensions"],
    "properties": {"name": {"type": "string"}, "version": {"type": "string"},
                   "extensions": {"type": "array", "items": {"type": "string"}}}}}}}})
async def server_metadata(request: Request) -> Response:
    """The server's name, version and protocol extensions."""
    return _json(_plane(request).server_metadata())


@router.get("/", include_in_schema=False)  # the protocol's OpenAPI file spells it `/v2/`
async def server_metadata_slash(request: Request) -> Response:
    return _json(_plane(request).server_metadata())


@router.get("/health/live", summary="Server live",
            responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}})
async def server_live() -> Response:
    """Live while the process answers (Kubernetes livenessProbe)."""
    return _json({"live": True})


@router.get("/health/ready", summary="Server ready",
            responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}},
                       503: {"model": ErrorBody, "description": "Some model is not ready"}})
async def server_ready(request: Request) -> Response:
    """200 when every model is ready to infer, else 503 (Kubernetes readinessProbe)."""
    monitor = getattr(request.app.state, "saturation", None)
    if monitor is not None:
        try:
            monitor.check()  # a worker whose queue stays full is not ready either (service.server.limits)
        except ServiceError as exc:
            return _json({"ready": False, "error": exc.message}, status_code=503)
    if _plane(request).server_ready():
        return _json({"ready": True})
    return _json({"ready": False, "error": "not every model is ready; see GET /models"}, status_code=503)


_METADATA_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"schema": _MODEL_METADATA}}}, **_errors(404)}
_READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"schema": {"type": "object"}}}}, **_errors(404, 503)}


@router.get("/models/{model_name}", summary="Model metadata", responses=_METADATA_RESPONSES)
async def model_metadata(request: Request, model_name: ModelName) -> Response:
    """The model's versions, platform, inputs and outputs (current version)."""
    return _json(_plane(request).model_metadata(model_name, None))


@router.get("/models/{model_name}/versions/{model_version}", summary="Model version metadata",
            responses=_METADATA_RESPONSES)
async def model_version_metadata(request: Request, model_name: ModelName, model_version: ModelVersion) -> Response:
    """The metadata of one version of the model."""
    return _json(_plane(request).model_metadata(model_name, check_version(model_version)))


@router.get("/models/{model_name}/ready", summary="Model ready", responses=_READY_RESPONSES)
async def model_ready(request: Request, model_name: ModelName) -> Response:
    """200 when the model's current version is ready to infer, else 503."""
    return _readiness(_plane(request), model_name, None)


@router.get("/models/{model_name}/versions/{model_version}/ready", summary="Model version ready",
            responses=_READY_RESPONSES)
async def model_version_ready(request: Request, model_name: ModelName, model_version: ModelVersion) -> Response:
    """200 when that version of the model is ready to infer, else 503."""
    return _readiness(_plane(request), model_name, check_version(model_version))


def _readiness(plane: InferencePlane, name: str, version: str | None) -> Response:
    model = plane.model(name, version)
    if model.ready:
        return _json({"name": model.name, "ready": True})
    return _json({"name": model.name, "ready": False, "error": f"model {model.name!r} is not ready: "
                           f"{model.reason or 'not loaded'}"}, status_code=503)


@router.post("/models/{model_name}/infer", summary="Inference", responses=INFER_RESPONSES, openapi_extra=INFER_DOC)
async def infer(request: Request, model_name: ModelName) -> Response:
    """Run the model's current version on the request's input."""
    return await _infer(request, model_name, None)


@router.post("/models/{model_name}/versions/{model_version}/infer", summary="Inference on a version",
             responses=INFER_RESPONSES, openapi_extra=INFER_DOC)
async def infer_version(request: Request, model_name: ModelName, model_version: ModelVersion) -> Response:
    """Run one version of the model on the request's input."""
    return await _infer(request, model_name, check_version(model_version))


async def _infer(request: Request, name: str, version: str | None) -> Response:
    plane = _plane(request)
    model = plane.model(name, version)  # an unknown model or version is refused before the body is read
    async with upload_slot(request):
        body = await request.body()  # streamed through the body size limit
        header_length = parse_header_length(request.headers.get(HEADER_LENGTH), len(body))
        if len(body) <= INLINE_DECODE_BYTES:
            parsed = decode_request(body, header_length)
        else:
            # Parsing megabytes of JSON or splitting binary data costs milliseconds to a second: in a
            # thread, so that the event loop (and every probe and small request on it) keeps answering.
            limiter = getattr(request.app.state, "decode_threads", None)
            parsed = await anyio.to_thread.run_sync(partial(decode_request, body, header_length), limiter=limiter)
        del body
        answer = await plane.infer(name, version, parsed, model=model)
    content, headers = encode_response(answer)
    return Response(content, headers=headers)
