"""Request bodies the load runs send: real MNIST test digits as PNG uploads and as JSON pixels.

Every scenario cycles through many different digits (where the load generator allows it), so a
server cannot answer from a cache keyed on the bytes, and each body is a file a user could send.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

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


def multipart_body(files: list[bytes], *, boundary: str = BOUNDARY) -> bytes:
    """A multipart/form-data body with one `file` part per image, as `curl -F file=@x.png` sends."""
    chunks = []
    for index, data in enumerate(files):
        chunks.append(
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{FILE_FIELD}\"; "
            f"filename=\"digit{index}.png\"\r\nContent-Type: image/png\r\n\r\n".encode()
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
