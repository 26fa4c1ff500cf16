"""The protocol's errors and its statuses for the service's own errors.

The specification says a failed request gets an HTTP error status, "typically 400", and the body
`{"error": "<message>"}` (the service's one error body already). Clients (tritonclient among them)
read any non-200 as an error and show `error`. The protocol's answers keep the statuses that say
something a client can act on and fold the rest of the native API's 4xx into 400:

- 404: no such model or version; 413: a body or batch over a limit; 503: a model not ready, or a
  full batch queue (retry later); 401/403: a missing or wrong admin token (the repository's load
  and unload); everything else the client sent wrong: 400.

gRPC gets the matching status codes (`grpc_status`).
"""

from __future__ import annotations

from digit_contract.errors import ServiceError

KEPT_STATUSES = frozenset({401, 403, 404, 413, 503})
"""Statuses of the native API that the protocol's routes keep; other 4xx become 400."""


class InvalidInferRequest(ServiceError):
    """The inference request does not fit the protocol or the model: datatype, shape, sizes, names."""

    status_code = 400
    title = "invalid inference request"


class VersionNotFound(ServiceError):
    """The model exists but not in that version."""

    status_code = 404
    title = "unknown model version"


class BatchTooLarge(ServiceError):
    """More images in one inference request than the protocol's batch limit."""

    status_code = 413
    title = "batch too large"


def protocol_status(error: ServiceError) -> int:
    """The status the protocol's routes answer `error` with."""
    status = error.status_code
    if status in KEPT_STATUSES or status >= 500:
        return status
    return 400


def grpc_status(status: int) -> str:
    """The gRPC status code name (`grpc.StatusCode` member) for an HTTP status of ours."""
    return {
        400: "INVALID_ARGUMENT",
        401: "UNAUTHENTICATED",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        413: "RESOURCE_EXHAUSTED",
        503: "UNAVAILABLE",
    }.get(status, "INTERNAL")
