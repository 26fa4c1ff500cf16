"""Triton's extensions over HTTP, with Triton's paths (`extensions.py` does the work):

- `GET /v2/models/{name}[/versions/{v}]/config`: the model configuration;
- `GET /v2/models/stats`, `GET /v2/models/{name}[/versions/{v}]/stats`: statistics;
- `POST /v2/repository/index`, `POST /v2/repository/models/{name}/load|unload`: the model
  repository (load and unload need `Authorization: Bearer <DIGITS_ADMIN_TOKEN>`).

This router is mounted before `rest.router`, whose `/v2/models/{model_name}` would otherwise
take `/v2/models/stats` for a model called "stats".
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Request, Response

from service.inference_protocol.extensions import TritonExtensions, bearer_token
from service.inference_protocol.rest import ModelName, ModelVersion, ProtocolRoute, _errors, _json

router = APIRouter(prefix="/v2", tags=["open inference protocol: Triton's extensions"], route_class=ProtocolRoute)

Authorization = Annotated[str | None, Header(description="`Bearer <DIGITS_ADMIN_TOKEN>`")]

_JSON_OBJECT: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {"schema": {"type": "object"}}}}}


def _extensions(request: Request) -> TritonExtensions:
    extensions: TritonExtensions = request.app.state.triton_extensions
    return extensions


@router.get("/models/stats", summary="Statistics of every model", responses=_JSON_OBJECT)
async def all_statistics(request: Request) -> Response:
    """Triton's statistics of every loaded model version (this worker process's requests)."""
    return _json(_extensions(request).model_statistics(None, None))


@router.get("/models/{model_name}/config", summary="Model configuration", responses={**_JSON_OBJECT, **_errors(404)})
async def model_config(request: Request, model_name: ModelName) -> Response:
    """Triton's model configuration of the model (its `config.pbtxt`, with this server's inputs)."""
    return _json(_extensions(request).model_config(model_name, None))


@router.get("/models/{model_name}/versions/{model_version}/config", summary="Model version configuration",
            responses={**_JSON_OBJECT, **_errors(404)})
async def model_version_config(request: Request, model_name: ModelName, model_version: ModelVersion) -> Response:
    """Triton's model configuration of one version of the model."""
    return _json(_extensions(request).model_config(model_name, (model_version or None)))


@router.get("/models/{model_name}/stats", summary="Model statistics", responses={**_JSON_OBJECT, **_errors(404)})
async def model_statistics(request: Request, model_name: ModelName) -> Response:
    """Triton's statistics of each loaded version of the model."""
    return _json(_extensions(request).model_statistics(model_name, None))


@router.get("/models/{model_name}/versions/{model_version}/stats", summary="Model version statistics",
            responses={**_JSON_OBJECT, **_errors(404)})
async def model_version_statistics(request: Request, model_name: ModelName, model_version: ModelVersion) -> Response:
    """Triton's statistics of one version of the model."""
    return _json(_extensions(request).model_statistics(model_name, (model_version or None)))


@router.post("/repository/index", summary="Model repository index",
             responses={200: {"content": {"application/json": {"schema": {"type": "array"}}}}})
async def repository_index(request: Request) -> Response:
    """Every model of the store with its state; the body `{"ready": true}` lists the ready ones only."""
    body = await request.body()
    ready = False
    if body.strip():
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            document = None
        ready = isinstance(document, dict) and document.get("ready") is True
    return Response(orjson.dumps(_extensions(request).repository_index(ready)), media_type="application/json")


@router.post("/repository/models/{model_name}/load", summary="Load a model", responses=_errors(400, 404))
async def load_model(request: Request, model_name: ModelName, authorization: Authorization = None) -> Response:
    """Load the model from the store (again), validated and warmed up, without a restart (admin token)."""
    await _extensions(request).load(model_name, bearer_token(authorization))
    return _json({})


@router.post("/repository/models/{model_name}/unload", summary="Unload a model", responses=_errors(400, 404))
async def unload_model(request: Request, model_name: ModelName, authorization: Authorization = None) -> Response:
    """Stop serving the model until it is loaded again (admin token)."""
    await _extensions(request).unload(model_name, bearer_token(authorization))
    return _json({})
