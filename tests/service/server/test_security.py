"""Security properties: image type from the bytes, model names never made into paths, CORS off
unless configured, no writes (store or temporary files), and a container recipe that runs
unprivileged over a store it cannot modify."""

from __future__ import annotations

import pathlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from digit_contract.store import latest_version, version_dir
from tests.factories import bar_digit, encode
from tests.service.conftest import REPO

DIGIT = bar_digit(120)


# -- the image type comes from the bytes -------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "claimed"),
    [("JPEG", "image/png"), ("PNG", "image/jpeg"), ("BMP", "image/gif"), ("GIF", "application/octet-stream"),
     ("WEBP", "image/svg+xml"), ("TIFF", "image/png")],
)
def test_the_format_is_read_from_the_bytes_not_the_content_type(client: TestClient, fmt: str, claimed: str) -> None:
    data = encode(DIGIT, fmt)
    raw = client.post("/predict", content=data, headers={"content-type": claimed})
    part = client.post("/predict", files=[("file", ("digit.png", data, claimed))])
    for response in (raw, part):
        assert response.status_code == 200
        assert (response.json()["image"]["format"], response.json()["digit"]) == (fmt, 1)


@pytest.mark.parametrize("fmt", ["PCX", "ICO", "TGA", "PPM", "SGI"])
def test_formats_pillow_reads_but_the_service_does_not_accept_are_refused(client: TestClient, fmt: str) -> None:
    # Every decoder is attack surface; only the six documented formats are ever tried.
    image = np.repeat(DIGIT[:64, :64, None], 3, axis=2) if fmt in ("ICO", "SGI") else DIGIT[:64, :64]
    response = client.post("/predict", content=encode(image, fmt), headers={"content-type": "image/png"})
    assert response.status_code == 415
    assert response.json() == {"error": "the file is not an image in a supported format (PNG, JPEG, BMP, GIF, WebP "
                                        "or TIFF): export or save it as a JPEG or PNG and send that"}


# -- model names are looked up, never joined into paths ----------------------------------------


@pytest.fixture
def touched_paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every filesystem path the process hands to the OS through pathlib or open(), once armed."""
    touched: list[str] = []
    fspath = pathlib.PurePath.__fspath__
    builtin_open = open

    def spy_fspath(self: pathlib.PurePath) -> str:
        touched.append(str(self))
        return fspath(self)

    def spy_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        touched.append(str(file))
        return builtin_open(file, *args, **kwargs)

    monkeypatch.setattr(pathlib.PurePath, "__fspath__", spy_fspath)
    monkeypatch.setattr("builtins.open", spy_open)
    yield touched


def test_a_model_name_is_never_made_into_a_path(
    app_factory: Callable[..., FastAPI], copy_store: Callable[..., Path], store: Path, touched_paths: list[str]
) -> None:
    target = copy_store("cnn")
    # A complete, valid model just outside the store: reachable as "../decoy" if names became paths.
    version = latest_version(store, "mlp")
    assert version is not None
    shutil.copytree(version_dir(store, "mlp", version), version_dir(target.parent / "decoy", "decoy", version))
    names = ["../decoy/decoy", "../decoy", "..", ".", "cnn/../cnn", "/etc/passwd", "../../../../etc/passwd",
             "cnn/1", "cnn/1/model.onnx", "%2e%2e", "cnn\0"]
    with TestClient(app_factory(model_store=target)) as client:
        touched_paths.clear()  # the lifespan read the store; from here on only requests run
        for name in names:
            predicted = client.post("/predict", params={"model": name}, content=encode(DIGIT),
                                    headers={"content-type": "image/png"})
            # Every character escaped, so that the client does not resolve "." and ".." itself.
            described = client.get("/models/" + quote(name, safe="").replace(".", "%2E"))
            assert predicted.status_code == 404, name
            assert described.status_code == 404, name
        assert client.post("/predict", params={"model": "cnn"}, content=encode(DIGIT),
                           headers={"content-type": "image/png"}).status_code == 200
    assert [path for path in touched_paths if "decoy" in path or "etc" in path or str(target) in path] == []


# -- CORS --------------------------------------------------------------------------------------


PREFLIGHT = {"origin": "https://app.example", "access-control-request-method": "POST",
             "access-control-request-headers": "content-type"}


def test_cors_is_off_by_default_for_every_kind_of_request(client: TestClient) -> None:
    preflight = client.options("/predict", headers=PREFLIGHT)
    simple = client.post("/predict", content=encode(DIGIT), headers={"content-type": "image/png",
                                                                     "origin": "https://app.example"})
    assert preflight.status_code == 405  # no CORS layer: OPTIONS is just another method
    assert simple.status_code == 200
    for response in (preflight, simple):
        assert not [h for h in response.headers if h.startswith("access-control-")]


def test_cors_allows_exactly_the_configured_origins(app_factory: Callable[..., FastAPI],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGITS_CORS_ORIGINS", "https://app.example, https://other.example")
    from service.settings import Settings

    origins = Settings().cors_origins
    with TestClient(app_factory(cors_origins=origins)) as client:
        allowed = client.options("/predict", headers=PREFLIGHT)
        refused = client.options("/predict", headers={**PREFLIGHT, "origin": "https://evil.example"})
        simple = client.post("/predict", content=encode(DIGIT), headers={"content-type": "image/png",
                                                                         "origin": "https://other.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert set(allowed.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST"}
    assert "access-control-allow-credentials" not in allowed.headers  # no cookies, no credentials
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    assert simple.headers["access-control-allow-origin"] == "https://other.example"


def test_cors_can_allow_any_origin(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory(cors_origins=["*"])) as client:
        response = client.get("/models", headers={"origin": "https://anywhere.example"})
    assert response.headers["access-control-allow-origin"] == "*"


# -- nothing is written ------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns) for path in root.rglob("*")}


def test_serving_and_reloading_never_write_to_the_store(app_factory: Callable[..., FastAPI],
                                                        copy_store: Callable[..., Path]) -> None:
    store = copy_store("cnn", "mlp")
    before = snapshot(store)
    token = "t" * 32
    with TestClient(app_factory(model_store=store, admin_token=token)) as client:
        client.post("/predict", content=encode(DIGIT), headers={"content-type": "image/png"})
        client.post("/models/compare", content=encode(DIGIT), headers={"content-type": "image/png"})
        client.post("/admin/reload", headers={"authorization": f"Bearer {token}"})
    assert snapshot(store) == before


def test_large_uploads_stay_in_memory_not_in_temporary_files(client: TestClient,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Starlette spools multipart files over 1 MiB to disk; the service keeps them in memory (the
    # body limit bounds them), so it works on a read-only filesystem (`docker run --read-only`).
    rolled_over: list[int] = []
    monkeypatch.setattr("tempfile.SpooledTemporaryFile.rollover", lambda self: rolled_over.append(1))
    big = encode(bar_digit(1100), "BMP")  # uncompressed: 1.2 MB
    assert len(big) > 1024 * 1024
    response = client.post("/predict", files=[("file", ("digit.bmp", big, "image/bmp"))] * 2)
    assert response.status_code == 200 and [a["digit"] for a in response.json()] == [1, 1]
    assert rolled_over == []


# -- the container -----------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_the_image_runs_unprivileged_over_a_store_it_does_not_own(dockerfile: str) -> None:
    text = (REPO / dockerfile).read_text()
    instructions = [line.split(None, 1) for line in text.splitlines() if line and not line.startswith(("#", " "))]
    keywords = [parts[0] for parts in instructions]
    assert ["USER", "10001:10001"] in instructions
    # The store is copied (as root, mode 644/755) before the switch to the unprivileged user, and
    # nothing hands it over: the service can read its models but never change them.
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "COPY")
    assert "chown" not in text and "chmod" not in text
    assert ["COPY", "model_store/ model_store/"] in instructions



# -- every response tells the browser not to sniff, frame or load from elsewhere --------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/models", 200), ("GET", "/health/live", 200), ("GET", "/metrics", 200),
     ("POST", "/predict", 415), ("GET", "/no-such-route", 404)],
)
def test_every_response_carries_the_security_headers(client: TestClient, method: str, path: str, status: int) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy


# -- what the client sent is repeated only cleaned and cut ------------------------------------


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [("digit.png", "digit.png"), ("../../etc/passwd", "passwd"), ("C:\\Users\\me\\digit.png", "digit.png"),
     ("<script>alert(1)</script>.png", "script_.png"), ("<b>bold.png", "_b_bold.png"),
     ("数字.png", "数字.png"), ("x" * 300 + ".png", "x" * 127 + "…")],
)
def test_multipart_filenames_are_echoed_cleaned(client: TestClient, sent: str, echoed: str) -> None:
    response = client.post("/predict", files=[("file", (sent, encode(DIGIT), "image/png"))])
    assert response.status_code == 200
    assert response.json()["image"]["filename"] == echoed


def test_control_characters_in_a_raw_filename_are_replaced(client: TestClient) -> None:
    # Written by hand: client libraries percent-encode these, an attacker's client need not.
    body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\x01b\x7fc\x1b[31m.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + encode(DIGIT) + b"\r\n--b--\r\n")
    response = client.post("/predict", content=body, headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 200
    assert response.json()["image"]["filename"] == "a_b_c_[31m.png"
