"""Hostile and broken input, table-driven over every endpoint.

Each row is one request a careless or malicious client could send. Every one must get its
documented 4xx with the exact JSON error body, quickly (a decompression bomb is refused from its
header, never decoded), with no stack trace and no server path in the answer. Afterwards the
service must still answer a valid request exactly as before, with no 5xx counted, and, on a real
server, with its resident memory back where it was.

The rows are plain bytes (method, target, content type, body), so the same table runs in-process
through the ASGI app and over HTTP against a real uvicorn server.
"""

from __future__ import annotations

import json
import re
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import PngImagePlugin

from bench import bombs
from service.server.app import create_app
from tests.factories import bar_digit, encode
from tests.service.conftest import MODEL_NAMES, REPO, make_settings
from tests.service.live_server import live_server

UPLOAD_LIMIT = 256 * 1024
FILE_CAP = 4
JSON_LIMIT = FILE_CAP * 32 * 1024
TABLE_SETTINGS: dict[str, Any] = {"max_upload_bytes": UPLOAD_LIMIT, "max_files_per_request": FILE_CAP}

DIGIT_PNG = encode(bar_digit(120))
PAGE = bar_digit(200)
JPEG = encode(PAGE, "JPEG")
PNG = encode(PAGE, "PNG")
AVAILABLE = ", ".join(MODEL_NAMES)
UNKNOWN_MODEL = {"error": f"no model with that name; available: {AVAILABLE}", "available": list(MODEL_NAMES)}
NOT_AN_IMAGE = {"error": ("the file is not an image in a supported format (PNG, JPEG, BMP, GIF, WebP or TIFF): "
     "export or save it as a JPEG or PNG and send that")}
TRUNCATED = {"error": "the image data is truncated or corrupt"}
CORRUPT_HEADER = {"error": "the image header is corrupt"}
EMPTY = {"error": "the image file is empty"}
BOMB = {"error": "the image declares too many pixels; the limit is 16,777,216"}
TOO_LARGE = {"error": f"request body is larger than the limit of {UPLOAD_LIMIT:,} bytes"}
TOO_MANY_PARTS = {"error": f"too many parts in one request; the limit is {FILE_CAP}"}
NO_FILE_PART = {"error": "the multipart body has no `file` part: send the image as -F file=@digit.png"}
QUERY_TOO_LONG = {"error": "the query string is longer than the limit of 4,096 bytes"}
# What must never reach a client: tracebacks, and paths of this machine.
LEAKS = re.compile(r"Traceback|File \"|site-packages|/work/|/tmp/|/home/|/usr/|\.py\b|" + re.escape(str(REPO)))


# -- payloads ----------------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A valid-looking greyscale PNG header declaring `width` x `height`, with almost no pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 1024))
            + png_chunk(b"IEND", b""))


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real JPEG whose start-of-frame is patched to declare `width` x `height`."""
    data = bytearray(JPEG)
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_declaring(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0) + b",\0\0\0\0\1\0\1\0\0\2\2D\1\0;"


def png_with_text_bomb() -> bytes:
    """A small valid PNG with a zTXt chunk that inflates to 64 MB (Pillow caps text chunks)."""
    text = png_chunk(b"zTXt", b"comment\0\0" + zlib.compress(b"a" * 64_000_000, 9))
    return DIGIT_PNG[:33] + text + DIGIT_PNG[33:]


def multipart_body(parts: list[tuple[str, str | None, bytes]], boundary: str = "hostile-boundary") -> bytes:
    """A multipart/form-data body from (field name, filename or None, content) parts."""
    out = []
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: image/png\r\n\r\n".encode()
                   + content + b"\r\n")
    return b"".join(out) + f"--{boundary}--\r\n".encode()


MULTIPART = "multipart/form-data; boundary=hostile-boundary"


def pixels_json(images: Any) -> bytes:
    return json.dumps({"images": images}).encode()


def nan_image(token: str) -> bytes:
    """One 28x28 image of zeros whose last pixel is the bare JSON token `token` (NaN, Infinity, ...)."""
    return pixels_json([[[0.0] * 28] * 28]).replace(b"0.0]]]}", token.encode() + b"]]]}")


def validation(where: str, message: str, loc: list[Any], more: int = 0) -> dict[str, Any]:
    extra = f" (and {more} more)" if more else ""
    return {"error": f"invalid request: {where}: {message}{extra}", "detail": [{"loc": loc, "msg": message}]}


# -- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    """One request and the exact answer it must get."""

    id: str
    method: str
    target: str
    content_type: str | None
    content: bytes
    status: int
    body: dict[str, Any] | None
    """The exact JSON answer; None where another suite owns the wording (the Open Inference Protocol
    routes, tests/oip/): then any `{"error": "..."}` body."""


# Image files that are not a digit image. Each goes to both image endpoints, as a raw body and as a
# multipart `file` part, labelled image/png whatever it really is: the type comes from the bytes.
BAD_FILES: list[tuple[str, bytes, int, dict[str, Any]]] = [
    ("empty-file", b"", 400, EMPTY),
    ("random-bytes-as-png", np.random.default_rng(5).bytes(128 * 1024), 415, NOT_AN_IMAGE),
    ("png-signature-only", PNG[:8], 415, NOT_AN_IMAGE),
    ("truncated-png", PNG[: len(PNG) // 2], 400, TRUNCATED),
    ("truncated-jpeg", JPEG[: len(JPEG) // 2], 400, TRUNCATED),
    ("jpeg-header-only", JPEG[:100], 400, CORRUPT_HEADER),
    ("text", b"seven\n", 415, NOT_AN_IMAGE),
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><text y="20">7</text></svg>', 415,
     NOT_AN_IMAGE),
    ("html", b"<!doctype html><script>alert(1)</script>", 415, NOT_AN_IMAGE),
    ("eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n", 415, NOT_AN_IMAGE),  # would run Ghostscript
    ("png-bomb-100k-squared", png_declaring(100_000, 100_000), 413, BOMB),
    ("png-bomb-under-pillow-limit", png_declaring(5000, 4000), 413,
     {"error": "the image is 5000x4000 = 20,000,000 pixels; the limit is 16,777,216"}),
    ("jpeg-bomb", jpeg_declaring(65_000, 65_000), 413, BOMB),
    ("gif-bomb", gif_declaring(65_535, 65_535), 413, BOMB),
    ("png-text-chunk-bomb", png_with_text_bomb(), 400, CORRUPT_HEADER),
    ("blank-page", encode(np.full((64, 64), 255, dtype=np.uint8)), 422,
     {"error": "no ink found: the image is blank or has too little contrast to hold a digit"}),
]

IMAGE_ENDPOINTS = ("/predict", "/models/compare", "/read")
GET_ENDPOINTS = ("/models", "/models/compare", "/models/cnn", "/metrics", "/health/live", "/health/ready", "/version")


def hostile_table() -> list[Hostile]:
    rows = []
    for path in IMAGE_ENDPOINTS:
        for name, data, status, body in BAD_FILES:
            rows.append(Hostile(f"{path}:raw:{name}", "POST", path, "image/png", data, status, body))
            rows.append(Hostile(f"{path}:part:{name}", "POST", path, MULTIPART,
                                multipart_body([("file", "digit.png", data)]), status, body))
        rows += [
            Hostile(f"{path}:empty-body", "POST", path, "image/png", b"", 400, EMPTY),
            Hostile(f"{path}:empty-body-no-type", "POST", path, None, b"", 415, {
                "error": "unsupported content type '(none)': send multipart/form-data with `file` parts, or an "
                         "image/* body" + (", or application/json pixels" if path == "/predict" else "")}),
            Hostile(f"{path}:text-plain", "POST", path, "text/plain", DIGIT_PNG, 415, {
                "error": "unsupported content type 'text/plain': send multipart/form-data with `file` parts, or an "
                         "image/* body" + (", or application/json pixels" if path == "/predict" else "")}),
            Hostile(f"{path}:over-the-upload-limit", "POST", path, "image/png", b"\0" * (UPLOAD_LIMIT + 1), 413,
                    TOO_LARGE),
            Hostile(f"{path}:2000-file-parts", "POST", path, MULTIPART,
                    multipart_body([("file", f"{i}.png", b"x") for i in range(2000)]), 413, TOO_MANY_PARTS),
            Hostile(f"{path}:2000-fields", "POST", path, MULTIPART,
                    multipart_body([(f"f{i}", None, b"x") for i in range(2000)]), 413, TOO_MANY_PARTS),
            Hostile(f"{path}:wrong-field-name", "POST", path, MULTIPART,
                    multipart_body([("image", "digit.png", DIGIT_PNG)]), 422, NO_FILE_PART),
            Hostile(f"{path}:file-field-without-filename", "POST", path, MULTIPART,
                    multipart_body([("file", None, DIGIT_PNG)]), 422,
                    {"error": "each `file` part must be a file upload (a part with a filename)"}),
            Hostile(f"{path}:empty-multipart", "POST", path, MULTIPART, b"", 422, NO_FILE_PART),
            Hostile(f"{path}:multipart-without-boundary", "POST", path, "multipart/form-data", b"--x\r\n", 400,
                    {"error": "malformed multipart body: Missing boundary in multipart."}),
            Hostile(f"{path}:multipart-garbage", "POST", path, MULTIPART, b"\0" * 300, 400,
                    {"error": "malformed multipart body: Invalid multipart data."}),
            Hostile(f"{path}:long-query", "POST", f"{path}?x={'a' * 5000}", "image/png", DIGIT_PNG, 414,
                    QUERY_TOO_LONG),
        ]
    rows += [
        Hostile("/models/compare:two-files", "POST", "/models/compare", MULTIPART,
                multipart_body([("file", "a.png", DIGIT_PNG), ("file", "b.png", DIGIT_PNG)]), 422,
                {"error": "POST /models/compare takes exactly one image, got 2"}),
        Hostile("/models/compare:json", "POST", "/models/compare", "application/json", pixels_json([]), 415,
                {"error": "unsupported content type 'application/json': send multipart/form-data with `file` "
                          "parts, or an image/* body"}),
    ]
    # JSON pixels (POST /predict only).
    json_rows: list[tuple[str, bytes, int, dict[str, Any]]] = [
        ("malformed", b'{"images": [[', 422,
         validation("body", "Invalid JSON: EOF while parsing a list at line 1 column 13", [])),
        ("not-utf8", b'{"images": "\xff"}', 422,
         validation("body", "Invalid JSON: invalid unicode code point at line 1 column 13", [])),
        ("null", b"null", 422, validation("body", "Input should be an object", [])),
        ("images-null", b'{"images": null}', 422, validation("images", "Input should be a valid array", ["images"])),
        ("nan", nan_image("NaN"), 422, validation("images.0.27.27", "Input should be a finite number", ["images", 0, 27, 27])),
        ("infinity", nan_image("Infinity"), 422,
         validation("images.0.27.27", "Input should be a finite number", ["images", 0, 27, 27])),
        ("minus-infinity", nan_image("-Infinity"), 422,
         validation("images.0.27.27", "Input should be a finite number", ["images", 0, 27, 27])),
        ("overflow-1e999", nan_image("1e999"), 422,
         validation("images.0.27.27", "Input should be a finite number", ["images", 0, 27, 27])),
        ("out-of-range", nan_image("255"), 422,
         validation("images.0.27.27", "Input should be less than or equal to 1", ["images", 0, 27, 27])),
        ("string-pixel", nan_image('"x"'), 422,
         validation("images.0.27.27", "Input should be a valid number", ["images", 0, 27, 27])),
        ("numeric-string-pixel", nan_image('"0.5"'), 422,
         validation("images.0.27.27", "Input should be a valid number", ["images", 0, 27, 27])),
        ("boolean-pixel", nan_image("true"), 422,
         validation("images.0.27.27", "Input should be a valid number", ["images", 0, 27, 27])),
        ("flat-784", pixels_json([[0.0] * 784]), 422,
         validation("images.0", "List should have at most 28 items after validation, not 784", ["images", 0])),
        ("channels-last-4d", pixels_json([[[[0.0]] * 28] * 28]), 422, {
            "error": "invalid request: images.0.0.0: Input should be a valid number (and 783 more)",
            # At most 20 entries of detail, however many pixels are wrong: the answer stays small.
            "detail": [{"loc": ["images", 0, 0, i], "msg": "Input should be a valid number"} for i in range(20)]}),
        ("images-object", b'{"images": {"0": 1}}', 422, validation("images", "Input should be a valid array", ["images"])),
        ("nested-10k-deep", b'{"images": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", 422,
         validation("body", "Invalid JSON: recursion limit exceeded at line 1 column 212", [])),
        ("more-images-than-the-cap", pixels_json([[[0.0] * 28] * 28] * (FILE_CAP + 1)), 413,
         {"error": f"too many images in one request: {FILE_CAP + 1}; the limit is {FILE_CAP}"}),
        ("larger-than-the-json-limit", b'{"images": [' + b"0," * (JSON_LIMIT // 2) + b"0]}", 413,
         {"error": f"a JSON body may be at most {JSON_LIMIT:,} bytes (32 KiB per image, at most {FILE_CAP} images); "
                   "send image files for more"}),
    ]
    rows += [Hostile(f"/predict:json:{name}", "POST", "/predict", "application/json", body, status, answer)
             for name, body, status, answer in json_rows]
    # A JSON key is client data too: it comes back cut to 64 characters, not as the 100 KB it was.
    long_key = json.dumps({"images": [[[0.0] * 28] * 28], "k" * 100_000: 1}).encode()
    rows.append(Hostile("/predict:json:100kb-key", "POST", "/predict", "application/json", long_key, 422,
                        validation(f"{'k' * 63}…", "Extra inputs are not permitted", [f"{'k' * 63}…"])))
    # Files whose cost is in their framing (see test_image_structure.py for the full-size ones).
    for name, data, message in [
        ("scan-bomb", bombs.progressive_scan_bomb(size=150_000),
         "the JPEG has 318 scans; at most 67 are accepted for an image of this size (encoders write 6-20)"),
        ("png-chunk-bomb", bombs.png_chunk_bomb(20_000),
         "the PNG has more than 4,096 chunks, or more than 256 besides image data"),
        ("jpeg-marker-bomb", bombs.jpeg_comment_bomb(60_000),
         "the JPEG has more than 256 marker segments before its image data"),
        ("gif-block-bomb", bombs.gif_comment_bomb(100_000), "the GIF has more than 4,096 blocks before its first frame"),
    ]:
        rows.append(Hostile(f"/predict:raw:{name}", "POST", "/predict", "image/png", data, 422, {"error": message}))
    # Model names: only ever looked up in the registry; a name that is not a plain name is not echoed.
    for name, query in [("path-traversal", "../../etc/passwd"), ("encoded-traversal", "..%2F..%2Fetc%2Fpasswd"),
                        ("absolute-path", "/etc/passwd"), ("nul", "cnn%00"), ("newline", "cnn%0A"),
                        ("empty", ""), ("script", "%3Cscript%3E"), ("unicode", "%E2%80%AEcnn")]:
        rows.append(Hostile(f"/predict:model:{name}", "POST", f"/predict?model={query}", "image/png", DIGIT_PNG, 404,
                            UNKNOWN_MODEL))
    rows += [
        Hostile("/predict:model:unknown", "POST", "/predict?model=resnet", "image/png", DIGIT_PNG, 404,
                {"error": f"no model 'resnet'; available: {AVAILABLE}", "available": list(MODEL_NAMES)}),
        Hostile("/predict:model:65-chars", "POST", f"/predict?model={'m' * 65}", "image/png", DIGIT_PNG, 422,
                validation("query.model", "String should have at most 64 characters", ["query", "model"])),
        Hostile("/predict:model:4000-chars", "POST", f"/predict?model={'m' * 4000}", "image/png", DIGIT_PNG, 422,
                validation("query.model", "String should have at most 64 characters", ["query", "model"])),
        Hostile("/predict:model:4097-byte-query", "POST", f"/predict?model={'m' * 4091}", "image/png", DIGIT_PNG, 414,
                QUERY_TOO_LONG),
        Hostile("/predict:1000-query-params", "POST", "/predict?" + "&".join(f"p{i}=1" for i in range(1000)),
                "image/png", DIGIT_PNG, 414, QUERY_TOO_LONG),
        Hostile("/models/{name}:encoded-traversal", "GET", "/models/..%2F..%2Fetc%2Fpasswd", None, b"", 404,
                {"error": "no such endpoint"}),
        Hostile("/models/{name}:newline", "GET", "/models/cnn%0A", None, b"", 404, UNKNOWN_MODEL),
        Hostile("/models/{name}:nul", "GET", "/models/%00", None, b"", 404, UNKNOWN_MODEL),
        Hostile("/models/{name}:300-chars", "GET", f"/models/{'a' * 300}", None, b"", 404, UNKNOWN_MODEL),
        Hostile("/admin/reload:without-a-token-configured", "POST", "/admin/reload", None, b"", 404,
                {"error": "no such endpoint"}),
    ]
    # The Open Inference Protocol routes: the same limits and the same error body.
    infer = "/v2/models/cnn/infer"
    short = json.dumps({"inputs": [{"name": "image", "shape": [1, 28, 28, 1], "datatype": "FP32",
                                    "data": [0.0] * 10}]}).encode()
    rows += [
        Hostile("/v2/models/{model_name}:unknown", "GET", "/v2/models/resnet", None, b"", 404, None),
        Hostile("/v2/models/{model_name}:traversal", "GET", "/v2/models/..%2F..%2Fetc%2Fpasswd", None, b"", 404, None),
        Hostile("/v2/models/{model_name}/ready:unknown", "GET", "/v2/models/resnet/ready", None, b"", 404, None),
        Hostile("/v2/models/{model_name}/versions/{model_version}:unknown", "GET", "/v2/models/cnn/versions/99",
                None, b"", 404, None),
        Hostile("/v2/models/{model_name}/versions/{model_version}/ready:unknown", "GET",
                "/v2/models/cnn/versions/99/ready", None, b"", 404, None),
        Hostile(f"{infer}:malformed", "POST", infer, "application/json", b'{"inputs": [', 400, None),
        Hostile(f"{infer}:element-count", "POST", infer, "application/json", short, 400, None),
        Hostile(f"{infer}:over-the-limit", "POST", infer, "application/json", b"0" * (UPLOAD_LIMIT + 1), 413, TOO_LARGE),
        Hostile(f"{infer}:scan-bomb-bytes", "POST", infer, "application/octet-stream",
                bombs.progressive_scan_bomb(size=150_000), 400, None),
        Hostile("/v2/models/{model_name}/versions/{model_version}/infer:unknown", "POST",
                "/v2/models/cnn/versions/99/infer", "application/json", short, 404, None),
    ]
    # Triton's extensions: unknown models and versions, and load/unload without an admin token.
    disabled = {"error": "model load and unload are disabled: set DIGITS_ADMIN_TOKEN to enable them"}
    rows += [
        Hostile("/v2/models/{model_name}/config:unknown", "GET", "/v2/models/resnet/config", None, b"", 404, None),
        Hostile("/v2/models/{model_name}/versions/{model_version}/config:unknown", "GET",
                "/v2/models/cnn/versions/99/config", None, b"", 404, None),
        Hostile("/v2/models/{model_name}/stats:unknown", "GET", "/v2/models/resnet/stats", None, b"", 404, None),
        Hostile("/v2/models/{model_name}/versions/{model_version}/stats:unknown", "GET",
                "/v2/models/cnn/versions/99/stats", None, b"", 404, None),
        Hostile("/v2/repository/index:long-query", "POST", f"/v2/repository/index?q={'%41' * 2000}", None, b"", 414,
                QUERY_TOO_LONG),
        Hostile("/v2/repository/models/{model_name}/load:no-token", "POST", "/v2/repository/models/cnn/load", None,
                b"", 403, disabled),
        Hostile("/v2/repository/models/{model_name}/unload:no-token", "POST", "/v2/repository/models/cnn/unload",
                None, b"", 403, disabled),
    ]
    for path in ("/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/stats"):
        rows.append(Hostile(f"{path}:long-query", "GET", f"{path}?q={'%41' * 2000}", None, b"", 414, QUERY_TOO_LONG))
    for path in GET_ENDPOINTS:
        rows += [
            Hostile(f"{path}:long-query", "GET", f"{path}?q={'%41' * 2000}", None, b"", 414, QUERY_TOO_LONG),
            Hostile(f"{path}:wrong-method", "DELETE", path, None, b"", 405, {"error": "method DELETE not allowed here"}),
        ]
    return rows


TABLE = hostile_table()
BOMBS = [row for row in TABLE if "bomb" in row.id]


def answer_matches(row: Hostile, status: int, text: str) -> bool:
    """The row's status, and its exact body (or, where the row leaves the wording open, an error body)."""
    answer = json.loads(text)
    if row.body is None:
        return status == row.status and isinstance(answer, dict) and isinstance(answer.get("error"), str)
    return (status, answer) == (row.status, row.body)


def check_answer(row: Hostile, status: int, content_type: str, text: str, seconds: float) -> None:
    """The row's exact status and JSON body, quickly, and nothing of the server's insides."""
    assert answer_matches(row, status, text), (row.id, status, text)
    assert content_type == "application/json"
    assert not LEAKS.search(text), text
    assert seconds < 1.0, f"{row.id} took {seconds:.2f} s"


def send(client: TestClient | httpx.Client, row: Hostile) -> tuple[int, str, str, float]:
    headers = {"content-type": row.content_type} if row.content_type else {}
    start = time.perf_counter()
    response = client.request(row.method, row.target, content=row.content, headers=headers)
    return (response.status_code, response.headers.get("content-type", ""), response.text,
            time.perf_counter() - start)


# -- in-process, through the ASGI app ----------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_client(store: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(store, **TABLE_SETTINGS))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def baseline(hostile_client: TestClient) -> dict[str, Any]:
    """The answer to a valid request before any hostile one (the fixture is first used before the table)."""
    response = hostile_client.post("/predict?model=cnn", content=DIGIT_PNG, headers={"content-type": "image/png"})
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


def test_the_table_covers_every_endpoint(hostile_client: TestClient) -> None:
    operations = hostile_client.get("/openapi.json").json()["paths"]
    paths = {row.target.split("?")[0] for row in TABLE}
    for template in operations:
        pattern = re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(template))
        assert len([path for path in paths if re.fullmatch(pattern, path)]) >= 1, template
    assert len([row for row in TABLE if row.method == "POST"]) > 100


@pytest.mark.parametrize("row", TABLE, ids=[row.id for row in TABLE])
def test_hostile_input_gets_its_documented_error(hostile_client: TestClient, baseline: dict[str, Any],
                                                 row: Hostile) -> None:
    check_answer(row, *send(hostile_client, row))


@pytest.mark.parametrize("row", BOMBS, ids=[row.id for row in BOMBS])
def test_a_decompression_bomb_is_refused_without_decoding_it(
    hostile_client: TestClient, monkeypatch: pytest.MonkeyPatch, row: Hostile
) -> None:
    decoded: list[object] = []
    original_load = PngImagePlugin.PngImageFile.load

    def spy(image: PngImagePlugin.PngImageFile) -> Any:
        decoded.append(image.size)
        return original_load(image)

    # Pillow's decoders all go through ImageFile.load; PNG's is overridden, so watch both.
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", spy)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", spy)
    check_answer(row, *send(hostile_client, row))
    assert decoded == []


def test_after_the_table_the_service_answers_as_before(hostile_client: TestClient, baseline: dict[str, Any]) -> None:
    response = hostile_client.post("/predict?model=cnn", content=DIGIT_PNG, headers={"content-type": "image/png"})
    assert response.status_code == 200
    answer = response.json()
    assert (answer["digit"], answer["probabilities"]) == (baseline["digit"], baseline["probabilities"])
    assert hostile_client.get("/health/ready").json()["status"] == "ready"
    metrics = hostile_client.get("/metrics").text
    counted = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("digits_http_requests_total{")}
    assert sum(counted.values()) >= len(TABLE)
    assert not [series for series in counted if re.search(r'status="5\d\d"', series)]


# -- over HTTP, against a real server ----------------------------------------------------------


def test_a_real_server_survives_the_table_with_flat_memory(store: Path) -> None:
    settings = {key: str(value) for key, value in TABLE_SETTINGS.items()}
    # 8 rounds of ~140 requests: the bound is under 4 KB per request, so keeping any hostile body
    # or any exception with its traceback (and so its request) per request breaks it: the latter
    # grows RSS by ~60 MiB. Allocator noise measured here: under 1 MiB.
    rounds, allowed = 8, 4 * 1024 * 1024
    sent = rounds * sum(len(row.content) for row in TABLE)
    assert sent > 4 * allowed
    with live_server(store, log_level="warning", **settings) as server, httpx.Client(base_url=server.base_url) as client:
        def replay() -> None:
            for row in TABLE:
                status, _, text, _ = send(client, row)
                assert answer_matches(row, status, text), row.id
                assert not LEAKS.search(text), row.id

        before = client.post("/predict?model=cnn", content=DIGIT_PNG, headers={"content-type": "image/png"}).json()
        replay()  # warm-up: allocator pools, caches and lazily imported decoders settle
        warm = server.rss_bytes()
        for _ in range(rounds):
            replay()
        grown = server.rss_bytes() - warm
        after = client.post("/predict?model=cnn", content=DIGIT_PNG, headers={"content-type": "image/png"}).json()
        assert server.process.poll() is None
    assert grown < allowed, f"RSS grew by {grown / 2**20:.1f} MiB over {rounds} rounds of {len(TABLE)} requests"
    assert (after["digit"], after["probabilities"]) == (before["digit"], before["probabilities"])
