"""Domain errors that carry their HTTP status as data, and the one JSON error body the service sends.

Code below the routes raises these; `service.api.error_handlers` turns them (and FastAPI's own
validation and routing errors) into `{"error": "<message>", ...}` with the status of the class.
This module imports no web framework, so the domain modules that raise these stay free of it
(tests/service/test_layering.py checks it). No body ever holds a traceback, an exception's repr or a
server path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from digit_contract.errors import PayloadTooLarge, ServiceError

__all__ = [
    "DeviceUnavailable",
    "ErrorBody",
    "InvalidInput",
    "MalformedBody",
    "ModelNotFound",
    "ModelNotReady",
    "NoModelReady",
    "NotAuthenticated",
    "NotAuthorized",
    "ReloadFailed",
    "RequestTimeout",
    "StoreUnavailable",
    "TooManyFiles",
    "UnsupportedMediaType",
    "describe_validation_errors",
    "safe_echo",
]

# Only names that could be model names are echoed back; anything else (a path, a script) is not.
# `fullmatch`, not `match` with `$`: `$` also matches before a trailing newline, which would echo it.
_ECHOABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")



class ModelNotFound(ServiceError):
    """No model of that name is in the registry."""

    status_code = 404
    title = "unknown model"

    def __init__(self, name: str, available: Iterable[str]) -> None:
        names = sorted(available)
        shown = repr(name) if _ECHOABLE_NAME.fullmatch(name) else "with that name"
        super().__init__(f"no model {shown}; available: {', '.join(names) or 'none'}", available=names)


class ModelNotReady(ServiceError):
    """The model exists but failed to load or validate; the reason says why."""

    status_code = 503
    title = "model not ready"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"model {name!r} is not ready: {reason}", model=name, reason=reason)


class NoModelReady(ServiceError):
    """No model at all can answer (every model failed to load)."""

    status_code = 503
    title = "no model ready"





class RequestTimeout(ServiceError):
    """The request body did not arrive in time (`body_timeout`, `body_idle_timeout`)."""

    status_code = 408
    title = "request body too slow"



class TooManyFiles(PayloadTooLarge):
    """More images in one request than `max_files_per_request`."""

    title = "too many images"




class InvalidInput(ServiceError):
    """The request is well-formed HTTP but its content is not what the endpoint takes."""

    status_code = 422
    title = "invalid input"


class MalformedBody(ServiceError):
    """The body cannot be parsed as the content type it declares (a broken multipart body)."""

    status_code = 400
    title = "malformed body"


class UnsupportedMediaType(ServiceError):
    """The request's content type is none of those the endpoint takes."""

    status_code = 415
    title = "unsupported content type"


class NotAuthenticated(ServiceError):
    """An admin endpoint was called without a bearer token."""

    status_code = 401
    title = "admin token required"
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012 (read-only, shared by every instance)


class NotAuthorized(ServiceError):
    """An admin endpoint was called with a token that is not the configured one."""

    status_code = 403
    title = "wrong admin token"


class ReloadFailed(ServiceError):
    """The store could not be reloaded as a whole; the models loaded before keep serving."""

    status_code = 409
    title = "reload failed"


class DeviceUnavailable(RuntimeError):
    """The configured device cannot be used. Raised at start-up; the service refuses to start."""


class StoreUnavailable(RuntimeError):
    """The model store is missing, empty or unreadable. At start-up the service refuses to start; on a
    reload the models loaded before keep serving.

    `str()` is for the operator's log and may name the store's directory; `public` is what a client
    may be told, with no path in it (paths can hold anything, spaces included, so none is echoed).
    """

    def __init__(self, message: str, *, public: str) -> None:
        super().__init__(message)
        self.public = public


class ErrorBody(BaseModel):
    """The body of every error response. Some errors add fields (`available`, `reason`, `detail`)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="What went wrong, in words meant for the client.")


ECHO_MAX_CHARS = 64
"""Longest piece of client data (a JSON key, a filename) ever repeated in an answer."""

_UNSAFE_ECHO = re.compile(r"[\x00-\x1f\x7f-\x9f<>&\"'`\\]")


def safe_echo(value: object, limit: int = ECHO_MAX_CHARS) -> str:
    """Client data made fit to repeat: control and markup characters replaced, cut to `limit` characters.

    Answers are JSON (and `nosniff`), so nothing here could run in a browser; but logs, terminals and
    careless HTML renderings of an answer also read these strings, and a 500 KB key has no business
    coming back at all.
    """
    text = _UNSAFE_ECHO.sub("_", str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _validation_detail(errors: Sequence[Any]) -> list[dict[str, Any]]:
    # Keep where and what; drop `input` and `ctx`, which echo arbitrary client data back. The
    # location can hold client data too (a JSON key): cut and cleaned.
    return [
        {"loc": [part if isinstance(part, int) else safe_echo(part) for part in error.get("loc", ())],
         "msg": safe_echo(error.get("msg", ""), 200)}
        for error in errors[:20]
    ]


def describe_validation_errors(errors: Sequence[Any]) -> dict[str, Any]:
    """The `error`/`detail` fields for a pydantic or FastAPI validation failure."""
    detail = _validation_detail(errors)
    first = detail[0] if detail else {"loc": [], "msg": "invalid"}
    where = ".".join(str(part) for part in first["loc"]) or "body"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return {"error": f"invalid request: {where}: {first['msg']}{more}", "detail": detail}
