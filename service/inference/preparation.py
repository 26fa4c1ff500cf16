"""The per-request path: from what a request sends to the batch a model takes, for any input spec.

Every upload takes the same steps, each once, in this order (the data plane orchestrates them:
it counts, picks the model, runs the work inline or in a worker thread, and records metrics):

1. **open** (`Upload.open`): the file's framing is checked (`digit_frontend.structure`) and Pillow
   reads its header, never its pixels. For a small request this happens on the event loop, where
   the header's pixel count decides whether decoding may run there too (`runs_inline`); the
   opened image is kept, so the header is parsed once whichever way the request then goes.
2. **prepare** (`prepare_upload`, once per upload): decode and find the digit (`digit_frontend`, stages
   1-5: the same robust front end for every model), then frame it once per input *encoding* the
   request's models need (`digit_frontend.model_input.frame`: 28x28 as MNIST, 8x8 block counts as UCI).
3. **batch** (`model_batch`): one model's float32 tensor for its `InputSpec`
   (`digit_frontend.model_input.model_input`).

Evaluations and benchmarks take the same path through `prepare_file`, one file at a time.

Pixel input (JSON arrays, protocol tensors) is checked against the same spec (`pixels_for`):
its shape (a 28x28 array sent to an 8x8 model is told which shape that model takes), its
range, and that it holds ink.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from digit_contract.errors import NoInk, ServiceError, TooManyPixels
from digit_contract.inputs import MNIST_INPUT, InputSpec
from digit_frontend import decode, pipeline
from digit_frontend.model_input import ENCODING_LEVELS, Encoding, frame, model_input
from digit_frontend.pipeline import BLANK_LEVEL, PreparedImage
from service.errors import InvalidInput
from service.observability.tracing import stage

INLINE_MAX_IMAGES = 16
"""Most images in a request that may run on the event loop (see `Settings.inline_max_pixels`)."""

INLINE_MAX_BYTES = 256 * 1024
"""Largest request body whose images may be opened on the event loop at all. A drawn digit is a few
KB; anything bigger is decided, and decoded, in a worker thread."""


LARGE_DECODE_PIXELS = 4_000_000
"""Decodes that produce at least this many pixels (a 12 MP PNG; never a large JPEG, decoded reduced)
run one at a time per worker (`_LARGE_DECODES`); smaller ones run in every work thread at once."""

_LARGE_DECODES = threading.Lock()


@dataclass(frozen=True)
class ImageFile:
    """An uploaded image file: its bytes and, for multipart parts, the client's filename."""

    data: bytes
    filename: str | None = None


# -- 1. open -------------------------------------------------------------------------------------


class DecodeBudget:
    """Pixels one request's files may decode to, summed over all its files and formats.

    The per-file pixel limit bounds each file, not a request: sixteen 4096x4096 lossless WebPs of a
    digit are 14 KB and 2.9 s of CPU (~215 CPU-s per MiB uploaded). Each file is charged what its
    decoder will produce (`decode.decode_cost`: a large JPEG at its reduced scale) when its header
    is read, before any pixel is decoded; the file that would pass the budget is refused (413).
    """

    def __init__(self, pixels: int) -> None:
        self.pixels = pixels
        self.spent = 0

    def charge(self, image: Image.Image) -> None:
        cost = decode.decode_cost(image)
        if self.spent + cost > self.pixels:
            raise TooManyPixels(
                f"the request's images would decode to more than {self.pixels:,} pixels in all (the limit per "
                "request, whatever the number of files): send fewer or smaller images"
            )
        self.spent += cost


class Upload:
    """One uploaded file on its way to the models: opened (framing checked, header read) at most once.

    Not shared between threads at once: the event loop may open it, then one worker decodes it.
    """

    def __init__(self, file: ImageFile, *, max_pixels: int, budget: DecodeBudget | None = None) -> None:
        self.file = file
        self.max_pixels = max_pixels
        self.budget = budget if budget is not None else DecodeBudget(max_pixels)
        """Shared by the request's uploads (`open_uploads`)."""
        self.open_seconds = 0.0
        """Time spent opening it (counted in its preprocessing time)."""
        self._image: Image.Image | None = None
        self._error: ServiceError | None = None

    def open(self) -> Image.Image:
        """The opened image; raises the file's error (the same error again, if asked again)."""
        if self._error is not None:
            raise self._error
        if self._image is None:
            start = time.perf_counter()
            try:
                image = decode.open_image(self.file.data, max_pixels=self.max_pixels)
                self.budget.charge(image)
                self._image = image
            except ServiceError as exc:
                self._error = exc
                raise
            finally:
                self.open_seconds += time.perf_counter() - start
        return self._image

    def decode(self) -> decode.DecodedImage:
        image = self.open()
        self._image = None  # decoding consumes it; nothing holds its pixels after this request
        if decode.decode_cost(image) < LARGE_DECODE_PIXELS:
            return decode.decode_opened(image)
        # A full-size decode of a large non-JPEG holds 50-70 MB at once (a 4096x4096 RGBA WebP is
        # 67 MB decoded): one at a time per worker, so the work threads cannot each hold one.
        with _LARGE_DECODES:
            return decode.decode_opened(image)


def open_uploads(files: Iterable[ImageFile], *, max_pixels: int) -> list[Upload]:
    """The request's files as uploads, none opened yet, sharing one decode budget of `max_pixels`."""
    budget = DecodeBudget(max_pixels)
    return [Upload(file, max_pixels=max_pixels, budget=budget) for file in files]


def runs_inline(uploads: Sequence[Upload], max_pixels: int) -> bool:
    """Whether the images' headers declare few enough pixels to decode on the event loop.

    Opens only small files (the header is then kept for decoding), and only files whose framing
    was checked first: an image's header can cost more to walk than its pixels to decode (see
    `digit_frontend.structure`). Anything unreadable counts as large, so that its error is raised in
    a worker thread, in its turn among the request's images.
    """
    if len(uploads) > INLINE_MAX_IMAGES or max_pixels <= 0:
        return False
    if sum(len(upload.file.data) for upload in uploads) > INLINE_MAX_BYTES:
        return False
    total = 0
    for upload in uploads:
        try:
            width, height = upload.open().size
        except Exception:
            return False
        total += width * height
        if total > max_pixels:
            return False
    return True


# -- 2. prepare ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedUpload:
    """One upload's digit, framed for each encoding the request needed."""

    image: PreparedImage
    frames: Mapping[Encoding, npt.NDArray[np.uint8]]
    """Per encoding, the digit as that encoding frames it (28x28 bytes; 8x8 block counts)."""
    seconds: float
    """Opening, decoding, finding and framing it."""

    def picture(self, encoding: Encoding) -> npt.NDArray[np.uint8]:
        """The frame as a white-on-black greyscale picture (`?explain=true`): 0-255."""
        frame = self.frames[encoding]
        top = ENCODING_LEVELS[encoding]
        if top == 255:
            return frame
        scaled: npt.NDArray[np.uint8] = np.rint(frame.astype(np.float32) * (255.0 / top)).astype(np.uint8)
        return scaled


def prepare_upload(
    upload: Upload, encodings: Collection[Encoding], observe: Callable[[float], None] | None = None
) -> PreparedUpload:
    """Decode one upload, find its digit and frame it for each of `encodings`.

    `observe` gets the seconds it took (opening included), whether it succeeded or not.

    Raises:
        the errors of `digit_frontend.pipeline.prepare_image` and `ImageTooComplex`.
    """
    start = time.perf_counter()
    seconds = 0.0
    try:
        # One span per stage when tracing is on (service.observability.tracing); no-ops otherwise.
        with stage("decode"):
            decoded = upload.decode()
        with stage("find"):
            image = pipeline.find_digit_in(decoded)
        with stage("frame"):
            frames = {encoding: frame(image, encoding) for encoding in sorted(encodings)}
    finally:
        seconds = upload.open_seconds + time.perf_counter() - start
        if observe is not None:
            observe(seconds)
    return PreparedUpload(image, frames, seconds)


def prepare_file(data: bytes, encodings: Collection[Encoding], *, max_pixels: int) -> PreparedUpload:
    """One file through the whole upload path, as a request's file takes it (header check, decode
    budget, decode, find, frame per encoding): the entry for evaluations and benchmarks, so that
    they measure exactly what the service answers.

    Raises:
        the errors of `prepare_upload`.
    """
    return prepare_upload(Upload(ImageFile(data), max_pixels=max_pixels), encodings)


# -- 3. batch ------------------------------------------------------------------------------------


def model_batch(prepared: Sequence[PreparedUpload], spec: InputSpec) -> npt.NDArray[np.float32]:
    """One model's input for prepared uploads: (N, *spec.sample_shape) float32 in [low, high]."""
    return model_input([upload.frames[spec.encoding] for upload in prepared], spec)


# -- pixel input ---------------------------------------------------------------------------------


def describe_input(spec: InputSpec) -> str:
    """e.g. "8x8 images (8 rows of 8 values in [0, 1])"."""
    return (f"{spec.height}x{spec.width} images ({spec.height} rows of {spec.width} values in "
            f"[{spec.low:g}, {spec.high:g}])")


def check_image_shape(shape: tuple[int, ...], spec: InputSpec, model: str) -> None:
    """Raise `InvalidInput` unless images of `shape` (no batch axis) are what `model` takes."""
    if shape in (spec.image_shape, (*spec.image_shape, 1), spec.sample_shape):
        return
    sent = "x".join(map(str, shape))
    raise InvalidInput(f"model {model!r} takes {describe_input(spec)}; the request sent {sent} images",
                       model=model, input_shape=list(spec.image_shape))


def check_ink(images: npt.NDArray[np.float32], spec: InputSpec = MNIST_INPUT) -> None:
    """Pixel input gets the upload path's "no ink" answer for a blank image (all at `low`, or nearly)."""
    share = BLANK_LEVEL / 255.0
    level = spec.low + share * (spec.high - spec.low)
    peaks = images.reshape(len(images), -1).max(axis=1) if len(images) else np.zeros(0)
    blank = np.flatnonzero(~(peaks >= level))  # NaN counts as blank too
    if blank.size:
        raise NoInk(f"no ink found: image {int(blank[0])} of the request is blank (every pixel below "
                    f"{level:.3f})")


def pixels_for(images: npt.NDArray[np.float32], spec: InputSpec, model: str) -> npt.NDArray[np.float32]:
    """Pixel input (N, height, width[, 1]) or (N, *sample_shape) as `model`'s input, shape-checked."""
    check_image_shape(tuple(images.shape[1:]), spec, model)
    return np.ascontiguousarray(images.reshape(len(images), *spec.sample_shape), dtype=np.float32)
