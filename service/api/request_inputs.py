"""Reading the image inputs of a request: multipart `file` parts, a raw image body, or JSON pixels.

The parsing is HTTP work, so it lives with the routes; it hands the data plane bytes or arrays.
Content types are only used to choose how to parse the body: the image format itself is always
decided from the bytes by the decoder.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from digit_contract.errors import PayloadTooLarge
from digit_contract.inputs import ENCODING_SHAPES, MNIST_INPUT, InputSpec
from service.errors import (
    InvalidInput,
    MalformedBody,
    TooManyFiles,
    UnsupportedMediaType,
    describe_validation_errors,
    safe_echo,
)
from service.inference.preparation import ImageFile, describe_input
from service.schemas import pixels_request
from service.settings import Settings

FILE_FIELD = "file"

FILENAME_MAX_CHARS = 128
"""Longest filename repeated in an answer (`image.filename`); longer ones are cut."""

RAW_TYPES = ("image/", "application/octet-stream")

LARGE_UPLOAD_BYTES = 1024 * 1024
"""A body over this (or of unknown length) takes one of `Settings.max_large_uploads` slots."""

JSON_BYTES_PER_IMAGE = 32 * 1024
"""Room for one 28x28 image of JSON pixels: 784 full-precision floats (~20 bytes each, with the
separator), pretty-printed. Parsing JSON costs far more memory than its size (about 25x for a body
of zeros), so a JSON body may be at most this times `max_files_per_request`, not the upload limit."""


@dataclass(frozen=True)
class FilesInput:
    files: list[ImageFile]
    as_list: bool
    """Several multipart parts are answered with a list; one part or a raw body with one answer."""


@dataclass(frozen=True)
class PixelsInput:
    images: npt.NDArray[np.float32]
    """(N, height, width, 1), values in the spec's range."""
    spec: InputSpec = MNIST_INPUT
    """The input spec the body was read against (the requested model's, or the default model's)."""


@dataclass(frozen=True)
class PixelTarget:
    """Which model JSON pixels are meant for, as far as is known before the body is read."""

    model: str | None
    """The model's name; None when it is not known (its error comes after the body is read)."""
    spec: InputSpec = MNIST_INPUT


@asynccontextmanager
async def upload_slot(request: Request) -> AsyncIterator[None]:
    """Hold one of the worker's large-upload slots while a large body is read and decoded.

    Waiting happens before the body is read, so a waiting request holds only its socket buffer.
    Small bodies (canvas drawings, MNIST PNGs, JSON pixels) never wait.
    """
    length = request.headers.get("content-length", "")
    if length.isascii() and length.isdigit() and len(length) <= 12 and int(length) <= LARGE_UPLOAD_BYTES:
        yield
        return
    gate: asyncio.Semaphore = request.app.state.large_uploads
    async with gate:
        yield


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_image_input(request: Request, settings: Settings, *, allow_pixels: bool = True,
                           target: PixelTarget | None = None) -> FilesInput | PixelsInput:
    """Parse the body by its content type.

    Raises:
        UnsupportedMediaType: neither multipart, image/* (or octet-stream) nor, if allowed, JSON.
        MalformedBody, InvalidInput, TooManyFiles: see the readers below.
    """
    media_type = _media_type(request)
    if media_type == "multipart/form-data":
        files = await read_multipart(request, settings)
        return FilesInput(files, as_list=len(files) > 1)
    if media_type.startswith(RAW_TYPES):
        return FilesInput([ImageFile(await _read_body(request))], as_list=False)
    if media_type == "application/json" and allow_pixels:
        return await read_pixels(request, settings, target or PixelTarget(None))
    accepted = "multipart/form-data with `file` parts, or an image/* body"
    if allow_pixels:
        accepted += ", or application/json pixels"
    raise UnsupportedMediaType(f"unsupported content type {media_type or '(none)'!r}: send {accepted}")


def client_filename(name: str | None) -> str | None:
    """The uploaded file's name as the answer repeats it: the last path component only (a client's
    `../../etc/passwd` names nothing here), cleaned and cut by `safe_echo`."""
    if name is None:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return safe_echo(base, FILENAME_MAX_CHARS) or None


async def read_multipart(request: Request, settings: Settings) -> list[ImageFile]:
    """The `file` parts, in order. Other fields are ignored; their count still counts to the cap."""
    cap = settings.max_files_per_request
    parser = MultiPartParser(
        request.headers, request.stream(), max_files=cap, max_fields=cap, max_part_size=settings.max_upload_bytes
    )
    # Keep file parts in memory (the body limit bounds them) instead of spilling parts over 1 MiB to
    # temporary files: no disk writes, and uploads work in a container with a read-only filesystem.
    parser.spool_max_size = settings.max_upload_bytes
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        if exc.message.startswith(("Too many files", "Too many fields")):
            raise TooManyFiles(f"too many parts in one request; the limit is {cap}") from exc
        raise MalformedBody(f"malformed multipart body: {exc.message}") from exc
    try:
        parts: list[Any] = form.getlist(FILE_FIELD)
        if not parts:
            raise InvalidInput(f"the multipart body has no `{FILE_FIELD}` part: send the image as -F {FILE_FIELD}=@digit.png")
        files = []
        for part in parts:
            if not isinstance(part, UploadFile):
                raise InvalidInput(f"each `{FILE_FIELD}` part must be a file upload (a part with a filename)")
            files.append(ImageFile(await part.read(), filename=client_filename(part.filename)))
        return files
    finally:
        await form.close()


async def _read_body(request: Request, limit: int | None = None) -> bytes:
    # Streamed, so the size-limit middleware can stop an oversized body while it arrives; `limit`
    # stops it earlier still (JSON), as soon as the bytes read pass it.
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if limit is not None and size > limit:
            raise PayloadTooLarge(f"a JSON body may be at most {limit:,} bytes "
                                  f"({JSON_BYTES_PER_IMAGE // 1024} KiB per image, at most "
                                  f"{limit // JSON_BYTES_PER_IMAGE} images); send image files for more")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_pixels(request: Request, settings: Settings, target: PixelTarget | None = None) -> PixelsInput:
    """`{"images": [height x width floats in [low, high], ...]}` for the target model's input spec
    (MNIST's: 28x28 in [0, 1]) as a (N, height, width, 1) float32 array.

    Raises:
        PayloadTooLarge: the body is larger than the JSON for `max_files_per_request` images can be.
        InvalidInput: not JSON, or not height x width finite floats in [low, high]; an image the
            shape of another input kind (28x28 to an 8x8 model, or the reverse) is told the shape the
            model takes.
    """
    target = target or PixelTarget(None)
    body = await _read_body(request, limit=settings.max_files_per_request * JSON_BYTES_PER_IMAGE)
    try:
        parsed = pixels_request(target.spec).model_validate_json(body)
    except ValidationError as exc:
        if target.model is not None:
            _check_other_shape(body, target.model, target.spec)
        described = describe_validation_errors(exc.errors())
        raise InvalidInput(described["error"], detail=described["detail"]) from exc
    images: Any = getattr(parsed, "images")  # noqa: B009 - the body model is made per spec
    return PixelsInput(np.asarray(images, dtype=np.float32)[..., np.newaxis], target.spec)


def _check_other_shape(body: bytes, model: str, spec: InputSpec) -> None:
    """Raise a clear `InvalidInput` when an image has the shape of another kind of input than `model`'s.

    Only for the shapes of the encodings the service knows (28x28, 8x8): any other malformed array
    gets the validation error naming where it is malformed, as before.
    """
    try:
        images = json.loads(body).get("images")
    except (ValueError, AttributeError, RecursionError):
        return
    if not isinstance(images, list):
        return
    for index, image in enumerate(images):
        if not (isinstance(image, list) and image and all(isinstance(row, list) for row in image)):
            return
        shape = (len(image), len(image[0]))
        if shape == spec.image_shape:
            continue
        if shape in ENCODING_SHAPES.values() and all(len(row) == shape[1] for row in image):
            raise InvalidInput(
                f"model {model!r} takes {describe_input(spec)}; image {index} of the request is "
                f"{shape[0]}x{shape[1]}",
                model=model, input_shape=list(spec.image_shape),
            )
        return
