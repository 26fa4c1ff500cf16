"""The body size limit: a declared length over it, or a stream that grows over it, is 413 at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace

import anyio
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.request_inputs import upload_slot
from service.server.app import queued_work
from service.server.limits import DRAIN_FACTOR, BodyLimitMiddleware, CountingSemaphore
from tests.factories import bar_digit, encode
from tests.service.conftest import multipart

LIMIT = 64 * 1024
TOO_LARGE = {"error": "request body is larger than the limit of 65,536 bytes"}


def test_a_declared_length_over_the_limit_is_413(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory(max_upload_bytes=LIMIT)) as client:
        for response in (
            client.post("/predict", content=b"\0" * (LIMIT + 1), headers={"content-type": "image/png"}),
            client.post("/predict", files=multipart(b"\0" * LIMIT)),
            client.post("/models/compare", content=b"\0" * (LIMIT + 1), headers={"content-type": "image/png"}),
            client.post("/predict", content=b"[" * (LIMIT + 1), headers={"content-type": "application/json"}),
        ):
            assert (response.status_code, response.json()) == (413, TOO_LARGE)
        # Under the limit, the same client is answered normally.
        assert client.post("/predict", files=multipart(encode(bar_digit(100)))).status_code == 200
        text = client.get("/metrics").text
    assert 'digits_http_requests_total{method="POST",model="",route="/predict",status="413"} 3.0' in text


async def _stream_through_limit(app: ASGIApp, chunks: int, chunk_size: int) -> tuple[int, list[Message]]:
    """Feed a chunked body (no Content-Length) to `app` behind the limit; count the chunks it pulled."""
    pulled = 0
    sent: list[Message] = []

    async def receive() -> Message:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"\0" * chunk_size, "more_body": pulled < chunks}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": [(b"content-type", b"image/png")]}
    await BodyLimitMiddleware(app, max_bytes=LIMIT)(scope, receive, send)
    return pulled, sent


def test_a_streamed_body_is_cut_off_as_it_passes_the_limit() -> None:
    async def reads_everything(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive())["more_body"]:
            pass

    pulled, sent = anyio.run(_stream_through_limit, reads_everything, 1000, 16 * 1024)
    # The app saw the first chunk over the limit, then the middleware discarded chunks up to 4x the
    # limit (a body ending by then keeps its connection); this one does not end, so it stopped there.
    assert pulled == DRAIN_FACTOR * LIMIT // (16 * 1024) + 1  # not 1000
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]
    assert sent[1]["body"] == b'{"error": "request body is larger than the limit of 65,536 bytes"}'


def test_a_chunked_body_that_ends_soon_after_the_limit_keeps_its_connection() -> None:
    async def reads_everything(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive())["more_body"]:
            pass

    pulled, sent = anyio.run(_stream_through_limit, reads_everything, 8, 16 * 1024)  # 128 KiB in all
    assert pulled == 8
    assert sent[0]["status"] == 413 and (b"connection", b"close") not in sent[0]["headers"]


def test_the_app_answer_to_an_aborted_read_is_replaced_by_413() -> None:
    async def swallows_errors(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            while (await receive())["more_body"]:
                pass
        except Exception:
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b"parse error"})

    _, sent = anyio.run(_stream_through_limit, swallows_errors, 1000, 16 * 1024)
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]
    assert b"parse error" not in b"".join(m.get("body", b"") for m in sent)


# -- large uploads wait for a slot before their body is read ----------------------------------


def _request(length: str | None, gate: asyncio.Semaphore) -> Request:
    app = SimpleNamespace(state=SimpleNamespace(large_uploads=gate))
    headers = [] if length is None else [(b"content-length", length.encode())]
    return Request({"type": "http", "method": "POST", "path": "/predict", "headers": headers, "app": app})


def test_large_uploads_take_turns_and_small_ones_never_wait() -> None:
    async def scenario() -> list[str]:
        gate = asyncio.Semaphore(1)
        events: list[str] = []

        async def upload(name: str, length: str | None, hold: float) -> None:
            async with upload_slot(_request(length, gate)):
                events.append(f"{name} in")
                await asyncio.sleep(hold)
            events.append(f"{name} out")

        await asyncio.gather(
            upload("photo", str(3 * 2**20), 0.05),
            upload("second photo", str(3 * 2**20), 0.0),
            upload("unknown length", None, 0.0),
            upload("drawing", "20000", 0.0),
        )
        return events

    events = asyncio.run(scenario())
    # The drawing goes straight in while the photo holds the only slot; the others wait their turn.
    assert events.index("drawing in") < events.index("photo out")
    assert events.index("photo out") < events.index("second photo in")
    assert events.index("second photo out") < events.index("unknown length in")


def test_the_large_upload_gate_says_how_many_wait_for_it(app_factory: Callable[..., FastAPI]) -> None:
    # Readiness counts the requests queued at this gate (issue 22) from its public count, not from
    # asyncio.Semaphore's private list of waiters.
    async def scenario() -> tuple[int, int, int]:
        gate = CountingSemaphore(1)
        await gate.acquire()
        taken_at_once = gate.waiting
        waiter = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0)
        queued = gate.waiting
        gate.release()
        await waiter
        return taken_at_once, queued, gate.waiting

    assert asyncio.run(scenario()) == (0, 1, 0)
    with TestClient(app_factory()) as client:
        app = client.app
        assert isinstance(app.state.large_uploads, CountingSemaphore)  # type: ignore[attr-defined]
        assert queued_work(app) == 0  # type: ignore[arg-type]
        app.state.large_uploads.waiting = 2  # type: ignore[attr-defined]
        try:
            assert queued_work(app) == 2  # type: ignore[arg-type]
        finally:
            app.state.large_uploads.waiting = 0  # type: ignore[attr-defined]
