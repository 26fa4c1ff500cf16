"""Issue 22: the transport's cost model, numbered as the issue numbers its cases.

Each test fails on the code before the issue: the request it sends was accepted, answered late, or
answered with a 500, and the limit it checks did not exist.
"""

from __future__ import annotations

import asyncio
import io
import os
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from uvicorn.config import Config
from uvicorn.server import ServerState

from bench.toolkit import free_port
from digit_contract.errors import ImageTooComplex
from digit_frontend import structure
from digit_frontend.structure import check_structure
from service.inference.preparation import ImageFile, open_uploads
from service.inference_protocol.batching import Batcher
from service.observability.saturation import SaturationMonitor
from service.server import limits
from service.server.http_server import ConnectionLimits, GuardedHttpProtocol
from service.server.limits import BodyLimitMiddleware
from tests.factories import bar_digit, encode
from tests.service.conftest import REPO, multipart

UPLOAD = Path(__file__).resolve().parents[2] / "data" / "uploads" / "canvas_opaque-0-digit9.png"
"""A real upload (a canvas drawing of a 9): the front end reads it as a digit."""


def upload_digit(side: int | None = None) -> Image.Image:
    image = Image.open(UPLOAD).convert("L")
    return image if side is None else image.resize((side, side))


# -- helpers -------------------------------------------------------------------------------------


def exif_block(tags: int, orientation: int = 6) -> bytes:
    """A little-endian EXIF block: Orientation, then `tags - 1` filler SHORT tags, in IFD0."""
    entries = [struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)]
    entries += [struct.pack("<HHIHH", 0x9000 + i % 0x6000, 3, 1, 1, 0) for i in range(tags - 1)]
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", tags) + b"".join(entries) + struct.pack("<I", 0)


def png_with_exif(block: bytes, side: int = 64) -> bytes:
    buffer = io.BytesIO()
    upload_digit(side).save(buffer, "PNG", exif=block)
    return buffer.getvalue()


class Transport:
    """Enough of an asyncio transport for uvicorn's protocol: records what is written and how it closes."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False
        self.aborted = False
        self.reading = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def set_protocol(self, protocol: Any) -> None:
        pass


def guarded_connection(app: Any, limits: ConnectionLimits, monkeypatch: pytest.MonkeyPatch
                       ) -> tuple[GuardedHttpProtocol, Transport]:
    """A `GuardedHttpProtocol` on a fake transport, inside the running loop, with `limits`."""
    monkeypatch.setattr(GuardedHttpProtocol, "connection_limits", staticmethod(lambda: limits), raising=False)
    monkeypatch.setattr("service.server.http_server.connection_limits", lambda: limits)
    config = Config(app=app, http=GuardedHttpProtocol, log_config=None)
    config.load()
    protocol = GuardedHttpProtocol(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


SEND_TIMEOUT = 0.2
TOKEN = "admin-token-of-the-tests"  # noqa: S105 (a test's own)


def connection_limits() -> ConnectionLimits:
    return ConnectionLimits(header_timeout=10.0, max_header_bytes=16 * 1024, max_headers=100, max_connections=100,
                            **{"send_timeout": SEND_TIMEOUT})


# -- 1. decode cost per request, cancelled work, readiness ------------------------------------------


def webp(side: int) -> bytes:
    image = np.full((side, side), 255, np.uint8)
    image[side // 4 : 3 * side // 4, side // 2 - 8 : side // 2 + 8] = 0
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "WEBP", lossless=True)
    return buffer.getvalue()


def upload_webp(side: int) -> bytes:
    buffer = io.BytesIO()
    upload_digit(side).save(buffer, "WEBP", lossless=True)
    return buffer.getvalue()


def test_the_decode_budget_counts_pixels_over_all_files_of_a_request() -> None:
    file = ImageFile(webp(1024))  # a few hundred bytes, a million pixels to decode
    assert len(file.data) < 2048
    alone = open_uploads([file], max_pixels=1024 * 1024)
    alone[0].open()  # one such file is within the per-file limit, as before
    uploads = open_uploads([file, file], max_pixels=1024 * 1024)
    uploads[0].open()
    with pytest.raises(Exception) as caught:
        uploads[1].open()
    assert getattr(caught.value, "status_code", None) == 413
    assert "in all (the limit per request" in str(caught.value)


def test_a_request_of_many_cheap_lossless_files_is_refused(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory(max_image_pixels=1024 * 1024)) as client:
        one = client.post("/predict", files=multipart(upload_webp(1024)))
        many = client.post("/predict", files=multipart(*[upload_webp(1024)] * 4))
    assert one.status_code == 200, one.text
    assert many.status_code == 413
    assert many.json()["error"].startswith("the request's images would decode to more than 1,048,576 pixels in all")


def test_large_jpegs_count_at_the_scale_they_are_decoded_at() -> None:
    photo = ImageFile(encode(bar_digit(2048), "JPEG"))  # decoded at 1/4 or 1/8: 256-512 px a side
    uploads = open_uploads([photo] * 8, max_pixels=2048 * 2048)
    for upload in uploads:
        upload.open()
    assert uploads[0].budget.spent <= 8 * 512 * 512


def test_work_of_a_client_that_left_after_its_body_is_cancelled() -> None:
    finished: list[bool] = []

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await asyncio.sleep(30)  # queued work: a thread slot, a batch
        finished.append(True)

    async def scenario() -> list[dict[str, Any]]:
        messages = [{"type": "http.request", "body": b"x" * 10, "more_body": False}]
        left = asyncio.Event()

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await left.wait()
            return {"type": "http.disconnect"}

        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        middleware = BodyLimitMiddleware(slow_app, max_bytes=1024)
        scope = {"type": "http", "method": "POST", "path": "/predict", "headers": [(b"content-length", b"10")]}
        asyncio.get_running_loop().call_later(0.1, left.set)
        await asyncio.wait_for(middleware(scope, receive, send), 5)
        return sent

    sent = asyncio.run(scenario())
    assert finished == []
    assert sent[0]["status"] == 499


def test_readiness_reports_a_saturated_queue_and_recovers(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory()) as client:
        queued = [0]
        client.app.state.saturation = monitor = SaturationMonitor(lambda: queued[0], threshold=0.3)  # type: ignore[attr-defined]
        monitor.sample()  # (the test samples by hand; the lifespan's sampler samples its own monitor)
        assert client.get("/health/ready").status_code == 200
        queued[0] = 3
        monitor.sample()
        time.sleep(0.35)
        monitor.sample()
        saturated = client.get("/health/ready")
        v2 = client.get("/v2/health/ready")
        queued[0] = 0
        monitor.sample()
        recovered = client.get("/health/ready")
    assert saturated.status_code == 503
    assert saturated.json()["error"].startswith("this worker's work queue has been full for")
    assert saturated.headers["retry-after"] == "5"
    assert v2.status_code == 503 and v2.json()["ready"] is False
    assert recovered.status_code == 200


def test_readiness_reports_a_stalled_event_loop() -> None:
    monitor = SaturationMonitor(lambda: 0, threshold=0.05)
    monitor.sample()
    time.sleep(0.1)  # no sample since: the loop that samples is blocked
    with pytest.raises(Exception, match="event loop has not run for"):
        monitor.check()


# -- 4. header bytes counted from the start of every request, pipelined ones too --------------------


def test_a_pipelined_request_gets_no_giant_header(monkeypatch: pytest.MonkeyPatch) -> None:
    release = asyncio.Event()

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()

    async def scenario() -> Transport:
        protocol, transport = guarded_connection(slow_app, ConnectionLimits(10.0, 16 * 1024, 100, 100), monkeypatch)
        protocol.data_received(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab")
        await asyncio.sleep(0)  # the slow request is in progress, its body complete
        header = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8192
        for _ in range(4):  # 32 KiB of one header, twice the limit
            protocol.data_received(header)
            header = b"a" * 8192
        release.set()
        await asyncio.sleep(0)
        return transport

    transport = asyncio.run(scenario())
    assert transport.closed


# -- 5. slow senders cannot hold an upload slot ------------------------------------------------------


def test_a_body_sent_a_byte_at_a_time_is_refused_once_the_grace_has_passed() -> None:
    async def reading_app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def scenario() -> tuple[list[dict[str, Any]], float]:
        async def trickle() -> dict[str, Any]:
            await asyncio.sleep(0.2)  # well inside the idle timeout, far below the rate
            return {"type": "http.request", "body": b"x", "more_body": True}

        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        middleware = BodyLimitMiddleware(reading_app, max_bytes=2 * 1024 * 1024, idle_timeout=9.0,
                                         **{"min_rate": 1024, "rate_grace": 0.5})
        scope = {"type": "http", "method": "POST", "path": "/predict",
                 "headers": [(b"content-length", str(2 * 1024 * 1024).encode())]}
        start = time.perf_counter()
        await asyncio.wait_for(middleware(scope, trickle, send), 10)
        return sent, time.perf_counter() - start

    sent, seconds = asyncio.run(scenario())
    assert sent[0]["status"] == 408
    assert b"arrived slower than 1,024 bytes/s" in sent[1]["body"]
    assert seconds < 2.0


# -- 6. a client that does not read its answer is disconnected --------------------------------------


def test_a_client_that_never_reads_is_closed_after_the_send_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> Transport:
        protocol, transport = guarded_connection(lambda *a: None, connection_limits(), monkeypatch)
        protocol.pause_writing()  # the socket's send buffer is full: the client reads nothing
        await asyncio.sleep(SEND_TIMEOUT + 0.2)
        return transport

    assert asyncio.run(scenario()).aborted


def test_a_client_that_reads_keeps_its_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> Transport:
        protocol, transport = guarded_connection(lambda *a: None, connection_limits(), monkeypatch)
        protocol.pause_writing()
        await asyncio.sleep(SEND_TIMEOUT / 2)
        protocol.resume_writing()
        await asyncio.sleep(SEND_TIMEOUT)
        return transport

    assert not asyncio.run(scenario()).aborted


# -- 7. in-flight body bytes, not only the count of large bodies ------------------------------------


def test_bodies_wait_for_room_in_the_byte_budget() -> None:
    """Two bodies of exactly 1 MiB (which skip the large-upload gate) do not both fit a 1 MiB budget."""

    async def scenario() -> list[str]:
        events: list[str] = []
        budget = limits.BodyBudget(1024 * 1024)
        done = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await receive()
            events.append(f"read {scope['path']}")
            if scope["path"] == "/first":
                await done.wait()
            events.append(f"done {scope['path']}")

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"x" * (1024 * 1024), "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            pass

        middleware = BodyLimitMiddleware(app, max_bytes=8 * 1024 * 1024, **{"budget": budget})

        def scope(path: str) -> dict[str, Any]:
            return {"type": "http", "method": "POST", "path": path, "headers": [(b"content-length", b"1048576")]}

        first = asyncio.create_task(middleware(scope("/first"), receive, send))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(middleware(scope("/second"), receive, send))
        await asyncio.sleep(0.05)
        events.append(f"waiting {budget.waiting}")
        done.set()
        await asyncio.gather(first, second)
        events.append(f"used {budget.used}")
        return events

    assert asyncio.run(scenario()) == ["read /first", "waiting 1", "done /first", "read /second", "done /second",
                                       "used 0"]


def test_a_cancelled_waiter_gives_its_place_back() -> None:
    async def scenario() -> tuple[int, int]:
        budget = limits.BodyBudget(100)
        await budget.acquire(100)
        waiter = asyncio.create_task(budget.acquire(50))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        budget.release(100)
        return budget.used, budget.waiting

    assert asyncio.run(scenario()) == (0, 0)


def test_a_cancelled_waiter_at_the_front_lets_the_ones_behind_it_in() -> None:
    """A waiter cancelled at the head of the queue (a gRPC call past its deadline) must wake those
    behind it that fit: nothing else would, and every later request queued behind them for good."""

    async def scenario() -> tuple[bool, int]:
        budget = limits.BodyBudget(100)
        await budget.acquire(60)
        large = asyncio.create_task(budget.acquire(50))  # does not fit: waits
        await asyncio.sleep(0)
        small = asyncio.create_task(budget.acquire(10))  # fits, but waits its turn behind `large`
        await asyncio.sleep(0)
        large.cancel()
        await asyncio.gather(large, return_exceptions=True)
        await asyncio.sleep(0)
        return small.done(), budget.used

    assert asyncio.run(scenario()) == (True, 70)


# -- 8. ONNX Runtime's telemetry ----------------------------------------------------------------------


def test_onnxruntime_telemetry_is_turned_off_at_start_up(app_factory: Callable[..., FastAPI],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    calls: list[str] = []
    monkeypatch.setattr(onnxruntime, "disable_telemetry_events", lambda: calls.append("off"), raising=False)
    with TestClient(app_factory()):
        pass
    assert calls == ["off"]


SERVE_ONCE = """
from fastapi.testclient import TestClient
from service.server.app import create_app
from service.settings import Settings
with TestClient(create_app(Settings(model_store="model_store", warmup_runs=1))) as client:
    assert client.get("/health/ready").status_code == 200
"""


def test_serving_writes_nothing_to_the_home_directory(tmp_path: Path) -> None:
    # ONNX Runtime 1.31 wrote ~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db}
    # at the first session despite disable_telemetry_events(); only its environment switch stops it.
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    subprocess.run([sys.executable, "-c", SERVE_ONCE], cwd=REPO, env=env, check=True, capture_output=True)  # noqa: S603
    assert [str(p.relative_to(home)) for p in home.rglob("*") if p.is_file()] == []


# -- 10. EXIF bombs ------------------------------------------------------------------------------------


def test_an_exif_block_with_thousands_of_tags_is_refused_before_decoding() -> None:
    bomb = png_with_exif(exif_block(20_000))
    assert len(bomb) < 300_000
    with pytest.raises(ImageTooComplex, match="EXIF block"):
        check_structure(bomb)


def test_a_camera_sized_exif_block_is_still_applied(client: TestClient) -> None:
    honest = png_with_exif(exif_block(120), side=280)
    check_structure(honest)
    assert len(exif_block(structure.MAX_EXIF_TAGS)) < 64 * 1024  # the tag cap binds before the size cap
    response = client.post("/predict", files=multipart(honest))
    assert response.status_code == 200, response.text


def test_an_exif_bomb_gets_422_not_seconds_of_event_loop(client: TestClient) -> None:
    start = time.perf_counter()
    response = client.post("/predict", files=multipart(png_with_exif(exif_block(20_000))))
    assert response.status_code == 422
    assert "EXIF block" in response.json()["error"]
    assert time.perf_counter() - start < 0.2


# -- 11. reloads with batching on release the old models -------------------------------------------


class FakeModel:
    def __init__(self, name: str, version: int = 1) -> None:
        self.name, self.version = name, version


def test_replaced_models_runners_end() -> None:
    async def run(model: Any, images: Any) -> Any:
        return np.zeros((len(images), 10), np.float32)

    async def scenario() -> tuple[bool, bool, bool]:
        batcher = Batcher(run, max_size=8, max_delay=0.0, queue_limit=64, runners=2)
        old, new = FakeModel("cnn"), FakeModel("cnn")
        await batcher.infer(old, np.zeros((1, 28, 28, 1), np.float32))  # type: ignore[arg-type]
        old_runners = list(batcher._queues[("cnn", 1)].runners)
        await batcher.infer(new, np.zeros((1, 28, 28, 1), np.float32))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        replaced_done = all(task.done() for task in old_runners)
        new_runners = list(batcher._queues[("cnn", 1)].runners)
        batcher.retire_stale([])  # a reload removed the model
        await asyncio.sleep(0.01)
        removed_done = all(task.done() for task in new_runners)
        await batcher.close()
        return replaced_done, removed_done, not batcher._queues

    assert asyncio.run(scenario()) == (True, True, True)


def test_a_reload_retires_the_batchers_queues(app_factory: Callable[..., FastAPI]) -> None:
    pixels = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 28, 28, 1], "data": [0.5] * 784}]}
    with TestClient(app_factory(batching=True, admin_token=TOKEN)) as client:
        assert client.post("/v2/models/cnn/infer", json=pixels).status_code == 200
        batcher = client.app.state.batcher  # type: ignore[attr-defined]
        runners = [task for queue in batcher._queues.values() for task in queue.runners]
        assert client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        time.sleep(0.1)
        assert all(task.done() for task in runners)


# -- 12. host names and cross-site posts ---------------------------------------------------------------


def test_unknown_hosts_are_refused_and_addresses_pass(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory(allowed_hosts="digits.example.com,localhost")) as client:
        rebound = client.get("/models", headers={"Host": "attacker.example"})
        named = client.get("/models", headers={"Host": "digits.example.com"})
        address = client.get("/health/live", headers={"Host": "10.1.2.3:8000"})
        ipv6 = client.get("/health/live", headers={"Host": "[::1]:8000"})
    assert rebound.status_code == 400
    assert rebound.json() == {"error": "unknown host 'attacker.example': this service answers to "
                                       "digits.example.com, localhost (DIGITS_ALLOWED_HOSTS)"}
    assert (named.status_code, address.status_code, ipv6.status_code) == (200, 200, 200)


def test_cross_site_form_posts_are_refused(client: TestClient) -> None:
    digit = UPLOAD.read_bytes()
    cross = client.post("/predict", files=multipart(digit), headers={"Origin": "https://attacker.example"})
    fetch_metadata = client.post("/predict", files=multipart(digit), headers={"Sec-Fetch-Site": "cross-site"})
    same = client.post("/predict", files=multipart(digit), headers={"Origin": "http://testserver"})
    no_browser = client.post("/predict", files=multipart(digit))
    assert cross.status_code == 403 and fetch_metadata.status_code == 403
    assert cross.json()["error"].startswith("cross-site requests are refused")
    assert (same.status_code, no_browser.status_code) == (200, 200)


# -- the management port -------------------------------------------------------------------------------


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_management_port_serves_health_and_metrics_only(store: Path, app_factory: Callable[..., FastAPI]) -> None:
    port = free_port()
    with TestClient(app_factory(management_port=port, admin_token=TOKEN)) as client:
        base = f"http://127.0.0.1:{port}"
        live, ready, metrics = get(f"{base}/health/live"), get(f"{base}/health/ready"), get(f"{base}/metrics")
        v2_ready = get(f"{base}/v2/health/ready")
        predict = get(f"{base}/models")
        request = urllib.request.Request(f"{base}/admin/reload", method="POST",  # noqa: S310 (loopback)
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback)
            reload_status = response.status
        assert client.get("/health/live").status_code == 200  # the data port keeps its probes too
    assert (live[0], ready[0], metrics[0], v2_ready[0], reload_status) == (200, 200, 200, 200, 200)
    assert b"digits_" in metrics[1]
    assert predict[0] == 404
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=2)  # closed with the app


def test_the_image_healthcheck_asks_the_management_port(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.server import healthcheck

    asked: list[int] = []
    monkeypatch.setattr(healthcheck, "check_ready", lambda port: asked.append(port) or True)
    monkeypatch.setenv("DIGITS_PORT", "8000")
    monkeypatch.setenv("DIGITS_MANAGEMENT_PORT", "8002")
    assert healthcheck.main() == 0
    monkeypatch.delenv("DIGITS_MANAGEMENT_PORT")
    assert healthcheck.main() == 0
    assert asked == [8002, 8000]
