"""Request limits: the body size, enforced while the body streams in, and the query string length.

A pure ASGI middleware wraps `receive`: a declared `Content-Length` over the limit is refused on
the first read, before any body byte is taken, and a body without one (chunked) is counted chunk
by chunk and refused as soon as it passes the limit. Nothing above the limit is ever buffered.
Routes that never read the body (health, metrics) are not affected, and the route is already
matched when the limit trips, so metrics label the 413 with its route.

Whatever the application does with the error (FastAPI wraps failures of its own body parsing
into a 400), the client gets the 413 and the one error body.

After a 413 the connection stays open when the whole body is at most `DRAIN_FACTOR` times the
limit, so the client can finish sending, read its 413 and reuse the connection; the rest is read
and discarded, never kept. A declared `Content-Length` is answered at once (uvicorn discards the
rest of an answered request's body); a chunked body, whose end is unknown, is discarded up to that
size and for at most `DRAIN_SECONDS` before the answer. Anything larger or slower is answered with
`Connection: close`. Closing a socket with unread data makes the kernel reset the connection, so
then a client that only reads after it finished writing may see a reset instead of the 413;
clients that read while they write (curl, httpx, browsers) get the answer.
"""

from __future__ import annotations

import json
import logging

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLarge, RequestTimeout, ServiceError

log = logging.getLogger(__name__)

DRAIN_FACTOR = 4
"""A 413 keeps the connection (and the server drains the body) up to this many times the limit."""

DRAIN_SECONDS = 2.0
"""Longest a chunked body over the limit is drained before the 413 is sent with a close instead."""

MAX_QUERY_BYTES = 4096
"""Longest query string accepted. The API's only query parameter is `model` (at most 64 characters);
anything far longer is a probe or a mistake, refused (414) before routing or parsing it."""


def too_large_message(limit: int) -> str:
    return f"request body is larger than the limit of {limit:,} bytes"


CLIENT_CLOSED_REQUEST = 499
"""Status recorded (nginx's convention) for a request whose client went away before its body ended.
Nothing is sent: there is no one to send it to."""


class BodyLimitMiddleware:
    """Refuse a request body over `max_bytes` (413) or too slow to arrive (408); count a client that
    leaves mid-body as 499, without an error.

    The time limits start at the application's first read, not when the headers arrived: a large
    upload may wait its turn (`max_large_uploads`) with its body unread in the socket. After that the
    whole body must arrive within `timeout` seconds with no pause longer than `idle_timeout`, so a
    body shorter than its `Content-Length`, or one sent a byte at a time, cannot hold a request open.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float = 60.0, idle_timeout: float = 10.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.idle_timeout = idle_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        received = 0
        failure: ServiceError | None = None  # the answer that replaces the application's
        ended = False
        disconnected = False
        started = False
        deadline: float | None = None

        async def limited_receive() -> Message:
            nonlocal received, failure, ended, disconnected, deadline
            if declared is not None and declared > self.max_bytes:
                failure = PayloadTooLarge(too_large_message(self.max_bytes))
                raise failure
            if ended or disconnected:
                return await receive()  # after the body: waiting for a disconnect is not slow sending
            now = anyio.current_time()
            if deadline is None:
                deadline = now + self.timeout
            with anyio.move_on_after(min(self.idle_timeout, deadline - now)) as waited:
                message = await receive()
            if waited.cancelled_caught:
                whole_body = anyio.current_time() >= deadline
                limit, seconds = ("in full", self.timeout) if whole_body else ("without a pause", self.idle_timeout)
                failure = RequestTimeout(f"the request body did not arrive {limit} within {seconds:g} s")
                raise failure
            if message["type"] == "http.disconnect":
                disconnected = True
            elif message["type"] == "http.request":
                received += len(message.get("body", b""))
                ended = not message.get("more_body", False)
                if received > self.max_bytes:
                    failure = PayloadTooLarge(too_large_message(self.max_bytes))
                    raise failure
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if (failure is not None or disconnected) and not started:
                return  # the app's own answer to the aborted read is replaced below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception as exc:
            # Whatever the app made of the aborted read (FastAPI wraps some into a 400 of its own, and
            # Starlette raises ClientDisconnect), the answer is decided here.
            ours = failure is not None and _caused_by(exc, failure)
            if not (ours or disconnected):
                raise
        if started:
            return
        if disconnected and failure is None:
            log.info("%s %s: the client closed the connection before its request body ended",
                     scope.get("method"), scope.get("path"))
            # Nobody receives this; it tells the metrics (and any middleware outside) what happened.
            await send({"type": "http.response.start", "status": CLIENT_CLOSED_REQUEST, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        elif isinstance(failure, RequestTimeout):
            await _send_error(send, failure.status_code, failure.message, close=True)
        elif failure is not None:
            budget = DRAIN_FACTOR * self.max_bytes
            if declared is not None:
                # Known length: answer now; if the rest is moderate uvicorn discards it afterwards.
                keep = declared <= budget
            else:
                # Chunked: the rest has no known end, so discard it here, within a budget of bytes
                # and time, before answering; a body that does not end within it gets a close.
                keep = ended or await _drain(receive, budget - received, DRAIN_SECONDS)
            await _send_error(send, 413, too_large_message(self.max_bytes), close=not keep)


def _caused_by(exc: BaseException, cause: BaseException) -> bool:
    """Whether `cause` is in `exc`'s chain (FastAPI re-raises body errors wrapped in its own)."""
    seen = exc
    while seen is not None:
        if seen is cause:
            return True
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    return False


class QueryLengthLimitMiddleware:
    """Refuse (414) any HTTP request whose query string is longer than `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_QUERY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope.get("query_string", b"")) > self.max_bytes:
            await _send_error(send, 414, f"the query string is longer than the limit of {self.max_bytes:,} bytes")
            return
        await self.app(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server (h11/httptools) rejects malformed lengths itself
    return None


async def _drain(receive: Receive, budget: int, seconds: float) -> bool:
    """Read and discard the rest of a request body; True if it ended within `budget` bytes and `seconds`."""
    with anyio.move_on_after(seconds):
        while budget >= 0:
            message = await receive()
            if message["type"] != "http.request":
                return False  # the client went away
            budget -= len(message.get("body", b""))
            if not message.get("more_body", False):
                return budget >= 0
    return False


async def _send_error(send: Send, status: int, message: str, *, close: bool = False) -> None:
    """The one error body, sent from below the app (its exception handlers never see these requests)."""
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
