"""Mutation fuzzing of the upload path: corrupt files get a 4xx error, never an exception.

A bounded, seeded run on every pull request: real encoders' files of the modes users send (and
the odd ones: 16-bit, float, premultiplied alpha, CMYK), with bytes flipped, cut, repeated and
spliced. 571,732 such files found two server errors once (a NaN float TIFF and an `La` TIFF, both
fixed); this keeps it that way. `FUZZ_CASES` runs more.
"""

from __future__ import annotations

import io
import os
import random

import numpy as np
from PIL import Image

from digit_contract.errors import ServiceError
from digit_frontend.pipeline import prepare_image
from service.settings import Settings
from tests.factories import bar_digit

CASES = int(os.environ.get("FUZZ_CASES", "1500"))
MAX_PIXELS = Settings().max_image_pixels


def seed_files() -> list[bytes]:
    digit = Image.fromarray(bar_digit(96))
    images = {
        "L": digit, "RGB": digit.convert("RGB"), "RGBA": digit.convert("RGBA"), "P": digit.convert("P"),
        "LA": digit.convert("LA"), "1": digit.convert("1"), "CMYK": digit.convert("CMYK"),
        "I;16": Image.fromarray(bar_digit(96).astype(np.uint16) * 257),
        "F": Image.fromarray(bar_digit(96).astype(np.float32) / 255.0),
    }
    saves: list[tuple[str, str, dict[str, object]]] = [
        ("L", "PNG", {}), ("RGBA", "PNG", {"optimize": True}), ("P", "PNG", {"transparency": 255}),
        ("LA", "PNG", {}), ("I;16", "PNG", {}), ("RGB", "PNG", {"interlace": 1}),  # Adam7
        ("L", "JPEG", {"progressive": True}), ("RGB", "JPEG", {"quality": 80}), ("CMYK", "JPEG", {}),
        ("P", "GIF", {}), ("L", "BMP", {}), ("1", "BMP", {}), ("RGB", "WEBP", {"lossless": True}),
        ("RGBA", "WEBP", {"quality": 70}), ("L", "TIFF", {"compression": "tiff_lzw"}), ("F", "TIFF", {}),
        ("I;16", "TIFF", {}), ("RGBA", "TIFF", {"compression": "tiff_adobe_deflate"}), ("1", "TIFF", {}),
    ]
    files = []
    for mode, fmt, params in saves:
        buffer = io.BytesIO()
        images[mode].save(buffer, fmt, **params)
        files.append(buffer.getvalue())
    return files


def mutate(data: bytes, rng: random.Random, others: list[bytes]) -> bytes:
    mutable = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0:  # flip a few bits
        for _ in range(rng.randint(1, 8)):
            mutable[rng.randrange(len(mutable))] ^= 1 << rng.randrange(8)
    elif kind == 1:  # extreme values in the header, where sizes and counts live
        for _ in range(rng.randint(1, 4)):
            mutable[rng.randrange(min(64, len(mutable)))] = rng.choice((0x00, 0x01, 0x7F, 0x80, 0xFF))
    elif kind == 2:  # cut short
        del mutable[rng.randrange(1, len(mutable)) :]
    elif kind == 3:  # a slice repeated
        start = rng.randrange(len(mutable))
        piece = mutable[start : start + rng.randint(1, 64)]
        mutable[start:start] = piece * rng.randint(1, 50)
    elif kind == 4:  # a slice removed
        start = rng.randrange(len(mutable))
        del mutable[start : start + rng.randint(1, 64)]
    else:  # spliced with another file
        other = rng.choice(others)
        mutable = mutable[: rng.randrange(len(mutable))] + bytearray(other[rng.randrange(len(other)) :])
    return bytes(mutable)


def test_seed_files_are_read() -> None:
    for data in seed_files():
        prepare_image(data, max_pixels=MAX_PIXELS)


def test_mutated_files_raise_only_client_errors() -> None:
    seeds = seed_files()
    rng = random.Random(20261201)  # noqa: S311 (a reproducible fuzzing sequence, not a secret)
    unexpected: list[str] = []
    for case in range(CASES):
        data = mutate(rng.choice(seeds), rng, seeds)
        try:
            prepare_image(data, max_pixels=MAX_PIXELS)
        except ServiceError as exc:
            assert 400 <= exc.status_code < 500, exc
        except Exception as exc:  # collect, then report every escape at once
            unexpected.append(f"case {case}: {type(exc).__name__}: {exc} (first bytes {data[:16]!r})")
    assert not unexpected, "\n".join(unexpected[:20])
