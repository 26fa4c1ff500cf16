"""Request bodies the load runs send: real MNIST test digits as uploads and as JSON pixels.

Every scenario cycles through many different digits (where the load generator allows it), so a
server cannot answer from a cache keyed on the bytes, and each body is a file a user could send.

Besides round 1's 28x28 PNGs (which the service passes through untouched), the payload kinds of
`PAYLOAD_KINDS` are what users really upload: canvas exports, scans and phone photos, rendered
from the same MNIST digits (each body labelled with its true digit) by the realistic renderer of
evaluation/render.py.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from evaluation.render import render_upload
from training.data import load_split

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "mnist-sample"
"""The IDX sample committed with the tests: real digits, no download needed."""

BOUNDARY = "----digitbench7MA4YWxkTrZu0gW"
"""Fixed multipart boundary, so a body built once can be replayed by any load generator."""

FILE_FIELD = "file"


@dataclass(frozen=True)
class Digits:
    """uint8 test digits (N, 28, 28), their labels, and each one encoded as a PNG file."""

    images: npt.NDArray[np.uint8]
    labels: npt.NDArray[np.uint8]
    pngs: list[bytes]


@dataclass(frozen=True)
class Payload:
    """What one scenario sends: a method, a path and the bodies to cycle through."""

    method: str
    path: str
    content_type: str | None = None
    bodies: list[bytes] = field(default_factory=list)
    images_per_request: int = 1
    labels: list[list[int]] = field(default_factory=list)
    """Per body, the true digit of each image in it (checked once before the load starts)."""


def load_digits(count: int = 64, data_dir: Path = SAMPLE_DIR) -> Digits:
    """The first `count` test digits of `data_dir`, with PNG encodings (8-bit greyscale)."""
    split, _ = load_split(data_dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    images, labels = split.images[:count], split.labels[:count]
    return Digits(images=images, labels=labels, pngs=[png_bytes(image) for image in images])


def png_bytes(image: npt.NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def multipart_body(files: list[bytes], *, boundary: str = BOUNDARY, formats: list[str] | None = None) -> bytes:
    """A multipart/form-data body with one `file` part per image, as `curl -F file=@x.png` sends.

    `formats` (default: all PNG) names each file's format, for its filename and content type, as
    curl derives them; the service decides the format from the bytes anyway.
    """
    chunks = []
    for index, data in enumerate(files):
        fmt = formats[index] if formats else "PNG"
        chunks.append(
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{FILE_FIELD}\"; "
            f"filename=\"digit{index}.{fmt.lower()}\"\r\nContent-Type: {CONTENT_TYPES.get(fmt, 'image/png')}"
            "\r\n\r\n".encode()
        )
        chunks.append(data)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


def json_pixels_body(images: npt.NDArray[np.uint8]) -> bytes:
    """`{"images": [...]}` with each pixel as a float in [0, 1], as a client normalising itself would send."""
    pixels = (images.astype(np.float64) / 255.0).tolist()
    return json.dumps({"images": pixels}).encode()


def _groups(digits: Digits, per_request: int, bodies: int) -> list[list[int]]:
    n = len(digits.labels)
    return [[(start * per_request + i) % n for i in range(per_request)] for start in range(bodies)]


def upload_payload(digits: Digits, path: str, *, per_request: int = 1, bodies: int = 32) -> Payload:
    """Multipart PNG uploads, `per_request` `file` parts each, `bodies` distinct bodies."""
    groups = _groups(digits, per_request, bodies)
    return Payload(
        method="POST",
        path=path,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        bodies=[multipart_body([digits.pngs[i] for i in group]) for group in groups],
        images_per_request=per_request,
        labels=[[int(digits.labels[i]) for i in group] for group in groups],
    )


def json_payload(digits: Digits, path: str, *, per_request: int = 1, bodies: int = 32) -> Payload:
    """JSON pixel arrays (the service's tensor path), `per_request` images each."""
    groups = _groups(digits, per_request, bodies)
    return Payload(
        method="POST",
        path=path,
        content_type="application/json",
        bodies=[json_pixels_body(digits.images[group]) for group in groups],
        images_per_request=per_request,
        labels=[[int(digits.labels[i]) for i in group] for group in groups],
    )


def get_payload(path: str) -> Payload:
    return Payload(method="GET", path=path)


# -- realistic uploads -------------------------------------------------------------------------


@dataclass(frozen=True)
class PayloadKind:
    """One kind of upload users send, and how many distinct bodies a full run cycles through."""

    name: str
    condition: str | None
    """The renderer's condition (evaluation/render.py); None for the plain MNIST PNG."""
    description: str
    bodies: int
    quick_bodies: int


PAYLOAD_KINDS: dict[str, PayloadKind] = {kind.name: kind for kind in (
    PayloadKind("mnist_png", None, "28x28 MNIST test digit, 8-bit greyscale PNG (round 1's payload)", 32, 32),
    PayloadKind("canvas", "canvas_black", "canvas export: RGBA PNG 300-600 px, transparent background, dark strokes",
                16, 8),
    PayloadKind("scan", "scan_grey", "scan crop: greyscale PNG, dark ink on white paper, 400-1100 px", 16, 8),
    PayloadKind("photo_2mp", "photo_desk", "phone photo of a page on a desk, JPEG 1.5-3.1 MP (e.g. 1600x1200)",
                16, 8),
    # Big bodies: a few are enough to defeat any cache, and each costs seconds to render.
    PayloadKind("photo_12mp", "photo_12mp", "phone photo of a page on a desk, JPEG 4032x3024 (~2-4 MB)", 6, 4),
)}
"""Ordered from small to big, so the 12 MP photos run last in each server's session."""

CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "BMP": "image/bmp",
                 "GIF": "image/gif", "TIFF": "image/tiff"}


@dataclass(frozen=True)
class UploadFile:
    """One image file as a user would upload it, with the digit drawn in it."""

    data: bytes
    format: str
    """PNG, JPEG, ...: what the bytes are (the multipart part's filename and type follow it)."""
    width: int
    height: int
    label: int


def balanced_indices(labels: npt.NDArray[np.uint8], count: int) -> list[int]:
    """`count` digit indices taking each label in turn (0, 1, ..., 9, 0, ...), so every class is sent."""
    by_label = [list(np.flatnonzero(labels == digit)) for digit in range(10)]
    chosen: list[int] = []
    rank = 0
    while len(chosen) < count and any(rank < len(pool) for pool in by_label):
        chosen += [int(pool[rank]) for pool in by_label if rank < len(pool)][: count - len(chosen)]
        rank += 1
    return chosen


def realistic_uploads(kind: str, digits: Digits, *, count: int | None = None, seed: int = 0) -> list[UploadFile]:
    """`count` files of one payload kind (default: the kind's full-run number), reproducible from `seed`.

    `mnist_png` files are the digits' own PNGs, in order (round 1's bodies); the other kinds are
    rendered from balanced digits with the realistic renderer.
    """
    spec = PAYLOAD_KINDS[kind]
    count = spec.bodies if count is None else count
    if spec.condition is None:
        return [UploadFile(digits.pngs[i % len(digits.pngs)], "PNG", 28, 28, int(digits.labels[i % len(digits.pngs)]))
                for i in range(count)]
    # One generator per kind, so adding a kind or changing a count elsewhere changes nothing here.
    rng = np.random.default_rng([seed, list(PAYLOAD_KINDS).index(kind)])
    files = []
    for index in balanced_indices(digits.labels, count):
        upload = render_upload(digits.images[index], spec.condition, rng)
        files.append(UploadFile(upload.data, upload.format, upload.width, upload.height, int(digits.labels[index])))
    return files


def files_payload(files: list[UploadFile], path: str) -> Payload:
    """One multipart upload per file (field `file`, filename and type after the file's format)."""
    return Payload(
        method="POST",
        path=path,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        bodies=[multipart_body([f.data], formats=[f.format]) for f in files],
        labels=[[f.label] for f in files],
    )

