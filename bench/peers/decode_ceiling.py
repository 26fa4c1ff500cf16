"""The decode ceiling: an upload read and decoded the fastest correct way, then a constant answer.

What no image service on this stack can beat for a given file: the multipart parsing of the
upload ceiling (bench/peers/ceiling.py) plus the decode every pipeline needs before its first
pixel operation. "Correct" means what a safe service must do anyway:

- the format is decided from the bytes, among the formats the service accepts;
- the pixel count is checked from the header, before any pixel is decoded (decompression bombs);
- JPEGs are decoded at a reduced DCT scale (1/2, 1/4 or 1/8, libjpeg's own scaling) to about the
  size a digit pipeline works at, never below `MIN_SIDE` on the longest side; other formats have
  no reduced decode and are decoded whole;
- the EXIF orientation is applied.

Pillow, not OpenCV: measured single-threaded on a noisy 3 MB 12 MP JPEG, Pillow's `draft` decode
at 1/8 takes the same ~29 ms as `cv2.imdecode(..., IMREAD_REDUCED_COLOR_8)` (the entropy decoding
dominates both; 1/4 costs ~33 ms in either), 500-900 px PNGs decode at the same speed in both, and
Pillow reads the header (size check) and the EXIF block without decoding anything.

The answer is a constant (the upload ceiling's), plus an `X-Decoded` header with the decoded size
so a check can see that the decode happened. Decoding runs on the event loop: a thread-pool hop
would only add cost.

    python -m uvicorn bench.peers.decode_ceiling:app --workers 2 --no-access-log
"""

from __future__ import annotations

import io
import json
import os

from fastapi import FastAPI, Request, Response
from PIL import Image, ImageOps

from bench.peers.ceiling import CONSTANT

FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
"""The formats the service accepts: the decoders Pillow may try."""

MIN_SIDE = 384
"""Reduced JPEG decoding stops at the smallest scale whose longest side is still >= this: about
the 512 px a pipeline works at (a 4032x3024 photo decodes at 1/8, 504x378; 1600x1200 at 1/4, 400x300)."""

MAX_PIXELS = int(os.environ.get("BENCH_MAX_IMAGE_PIXELS", "50000000"))
"""Header pixel limit (the harness passes the service's effective DIGITS_MAX_IMAGE_PIXELS)."""


class RefusedImage(ValueError):
    """Not an image in an accepted format, or more pixels than the limit."""


def decode_upload(data: bytes, *, max_pixels: int = MAX_PIXELS, min_side: int = MIN_SIDE) -> Image.Image:
    """Decode an uploaded file's first frame, oriented, JPEGs at a reduced scale (see the module text)."""
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
    except Exception as exc:  # unidentified, corrupt header, Pillow's own bomb check
        raise RefusedImage(f"not an accepted image: {exc}") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise RefusedImage(f"{width}x{height} is over the {max_pixels:,}-pixel limit")
    if image.format == "JPEG":
        scale = min_side / max(width, height)
        if scale < 1:
            # draft picks the smallest DCT scale whose size is still >= the one asked for.
            image.draft(image.mode, (max(1, round(width * scale)), max(1, round(height * scale))))
    image.load()
    return ImageOps.exif_transpose(image)


app = FastAPI(title="decode ceiling")


@app.post("/predict")
async def predict(request: Request) -> Response:
    """Read and decode every multipart `file` part, answer a constant."""
    sizes = []
    async with request.form(max_files=1024, max_fields=1024) as form:
        for part in form.getlist("file"):
            if isinstance(part, str):
                continue
            try:
                image = decode_upload(await part.read())
            except RefusedImage as error:
                return Response(json.dumps({"error": str(error)}).encode(), status_code=415,
                                media_type="application/json")
            sizes.append(f"{image.width}x{image.height}")
    return Response(CONSTANT, media_type="application/json", headers={"X-Decoded": ",".join(sizes)})


@app.get("/health/ready")
async def ready() -> Response:
    return Response(b'{"status":"ready"}', media_type="application/json")
