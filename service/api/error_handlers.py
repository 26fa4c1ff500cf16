"""The domain errors as HTTP answers: the exception handlers, and the errors' OpenAPI description.

`install_error_handlers(app)` makes every error the app can produce use the one body of
`service.errors.ErrorBody`: a `ServiceError` answers with its class's status and headers,
FastAPI's validation errors with 422, its routing errors (404, 405, ...) with the same body, and
anything unexpected with a bare 500 (the traceback goes to the log, never to the client).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from digit_contract.errors import ServiceError
from service.errors import ErrorBody, describe_validation_errors

log = logging.getLogger(__name__)


def error_responses(*errors: type[ServiceError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route that can raise `errors`: the error body under each status."""
    described: dict[int, list[str]] = {}
    for error in errors:
        described.setdefault(error.status_code, []).append(error.title)
    return {
        status: {"model": ErrorBody, "description": "; ".join(titles)} for status, titles in sorted(described.items())
    }


async def _service_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(describe_validation_errors(exc.errors()), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = exc.headers
    if exc.status_code == 404:
        message = "no such endpoint"
    elif exc.status_code == 405:
        message = f"method {request.method} not allowed here"
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    else:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> str:
    # The framework's 405 names the methods of the first route whose path matched; a path served
    # by several routes (GET and POST /models/compare) must list all of them (RFC 9110, 15.5.6).
    # The OpenAPI schema (built once, cached) lists every documented method of every path.
    path = request.url.path
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        if re.fullmatch(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)), path):
            methods |= {method.upper() for method in operations}
    return ", ".join(sorted(methods))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log, never to the client.
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal server error"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Make every error the app can produce use the one body shape."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
