"""Errors that carry their HTTP status as data: the base every domain error derives from, and the
errors of reading an image, which the front end raises and every transport answers the same way.

They live in the contract because the front end (`digit_frontend`), the service and the evaluation
all raise or catch them; none of them imports a web framework. `service.errors` adds the service's
own errors and the one JSON error body.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    """Base of the domain errors: a message for the client, a status, and optional extra fields."""

    status_code: ClassVar[int] = 500
    title: ClassVar[str] = "internal error"
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **self.extra}


class InvalidImage(ServiceError):
    """The bytes are an image of a kind the service recognises, but it cannot be decoded."""

    status_code = 400
    title = "corrupt image"


class UnsupportedImage(InvalidImage):
    """The bytes are not an image in any supported format."""

    status_code = 415
    title = "not a supported image"


class PayloadTooLarge(ServiceError):
    """The request body is larger than `max_upload_bytes`."""

    status_code = 413
    title = "body too large"


class TooManyPixels(PayloadTooLarge):
    """The image declares more than `max_image_pixels` pixels (checked before decoding)."""

    title = "image too large"


class NoInk(ServiceError):
    """The image holds nothing that could be a digit (blank, or no contrast)."""

    status_code = 422
    title = "no digit in image"


class ImageTooComplex(ServiceError):
    """The image file's structure (JPEG scans, PNG chunks, ...) would cost far more to decode than any
    real image of its size (checked before decoding; see `digit_frontend.structure`)."""

    status_code = 422
    title = "image too costly to decode"
