"""GET /version: which release of the service answers (the package version, as `/v2` reports it)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.inference_protocol.plane import SERVER_NAME

router = APIRouter(tags=["health"])


@router.get("/version", summary="Version", responses={200: {"content": {"application/json": {"schema": {
    "type": "object", "required": ["name", "version"],
    "properties": {"name": {"type": "string"}, "version": {"type": "string"}}}}}}})
async def server_version(request: Request) -> dict[str, str]:
    """The server's name and package version (the same as `digit-serving --version` and `GET /v2`)."""
    return {"name": SERVER_NAME, "version": request.app.version}
