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

import asyncio
import contextlib
import json
import logging
from collections import deque
from typing import Literal

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digit_contract.errors import PayloadTooLarge, ServiceError
from service.errors import RequestTimeout

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


class CountingSemaphore(asyncio.Semaphore):
    """An `asyncio.Semaphore` that says how many wait for it: readiness reports a saturated queue."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.waiting = 0

    async def acquire(self) -> Literal[True]:
        self.waiting += 1  # back to its value before any other task runs when a slot is free at once
        try:
            return await super().acquire()
        finally:
            self.waiting -= 1


class BodyBudget:
    """The request body bytes one worker holds at once, over every transport (issue 22).

    A request reserves its declared length (or each chunk, for a chunked body) before its body is
    read, and gives it back when its answer is done; one that does not fit waits, first come first
    served, with its body unread in the socket. Counting bodies (`max_large_uploads`) is not enough:
    400 concurrent uploads of exactly 1 MiB took a worker from 172 to 700 MiB. A body larger than
    the whole budget waits for it to be empty, then takes all of it.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        """Requests waiting for room (what readiness reports as a saturated queue)."""
        return len(self._waiters)

    async def acquire(self, size: int) -> int:
        """Reserve `size` bytes (at most the whole budget), waiting for room; returns what was reserved."""
        size = min(size, self.limit)
        if not self._waiters and self.used + size <= self.limit:
            self.used += size
            return size
        entry = (size, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            await entry[1]
        except asyncio.CancelledError:
            if entry[1].done() and not entry[1].cancelled():
                self.release(size)  # granted, then cancelled before it could use it
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(entry)
                self._wake()  # those behind it may fit now: nothing else would wake them
            raise
        return size

    def release(self, size: int) -> None:
        self.used -= size
        self._wake()

    def _wake(self) -> None:
        """Grant waiters from the front, in order, while they fit."""
        while self._waiters and self.used + self._waiters[0][0] <= self.limit:
            size, future = self._waiters.popleft()
            if not future.done():
                self.used += size
                future.set_result(None)


class BodyLimitMiddleware:
    """Refuse a request body over `max_bytes` (413) or too slow to arrive (408); count a client that
    leaves mid-body as 499, without an error; stop the work of a client that leaves after its body.

    The time limits start at the application's first read, not when the headers arrived: a large
    upload may wait its turn (`max_large_uploads`, the `budget` of body bytes) with its body unread in
    the socket. After that the whole body must arrive within `timeout` seconds with no pause longer
    than `idle_timeout`, and, after `rate_grace` seconds, at `min_rate` bytes per second on average:
    a body shorter than its `Content-Length`, or one sent a byte every few seconds, cannot hold a
    request (and its upload slot) open. Four connections that sent a byte every 9 s kept a 12 MP
    photo waiting 45 s behind them before the rate was required.

    Once the body is in, a client that closes its connection before its answer has its request
    cancelled: work still queued for a thread or a batch is dropped (thirty abandoned requests
    burned 96 s of CPU before), and the request is counted as 499.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float = 60.0, idle_timeout: float = 10.0, *,
                 min_rate: float = 0.0, rate_grace: float = 5.0, budget: BodyBudget | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.min_rate = min_rate
        self.rate_grace = rate_grace
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        received = 0
        reserved = 0  # bytes of the budget this request holds
        failure: ServiceError | None = None  # the answer that replaces the application's
        ended = False
        disconnected = False
        client_left = False  # closed after its body, before its answer: the request was cancelled
        started = False
        deadline: float | None = None
        rate_start = 0.0
        watcher: asyncio.Task[None] | None = None
        # anyio's cancellation, not the task's: work already in a thread is waited for (with its
        # thread slot held) before the cancellation arrives. A plain `Task.cancel()` went through
        # anyio's shield, freed the slot while the thread still ran, and let the next queued request
        # start another: abandoned requests ran unbounded in parallel (+18 MiB/s, never returned).
        request_scope = anyio.CancelScope()

        async def watch_for_disconnect() -> None:
            # The body has ended, so the next message is the disconnect (uvicorn also sends one once
            # the answer is complete, by when `started` is set and nothing is cancelled).
            nonlocal client_left
            message = await receive()
            if message["type"] == "http.disconnect" and not started:
                client_left = True
                request_scope.cancel()

        async def limited_receive() -> Message:
            nonlocal received, reserved, failure, ended, disconnected, deadline, rate_start, watcher
            if declared is not None and declared > self.max_bytes:
                failure = PayloadTooLarge(too_large_message(self.max_bytes))
                raise failure
            if ended or disconnected:
                return await receive()  # after the body: waiting for a disconnect is not slow sending
            if self.budget is not None and deadline is None and declared:
                reserved += await self.budget.acquire(declared)  # before the clock starts: waiting is not sending
            now = anyio.current_time()
            if deadline is None:
                deadline = now + self.timeout
                rate_start = now + self.rate_grace
            # The first limit to pass decides the wait, and the message if it passes.
            limits = [(self.idle_timeout, f"did not arrive without a pause within {self.idle_timeout:g} s"),
                      (deadline - now, f"did not arrive in full within {self.timeout:g} s")]
            if self.min_rate > 0:
                limits.append((rate_start + received / self.min_rate - now,
                               f"arrived slower than {self.min_rate:,.0f} bytes/s"))
            wait, why = min(limits, key=lambda limit: limit[0])
            with anyio.move_on_after(wait) as waited:
                message = await receive()
            if waited.cancelled_caught:
                failure = RequestTimeout(f"the request body {why}")
                raise failure
            if message["type"] == "http.disconnect":
                disconnected = True
            elif message["type"] == "http.request":
                chunk = len(message.get("body", b""))
                received += chunk
                ended = not message.get("more_body", False)
                if received > self.max_bytes:
                    failure = PayloadTooLarge(too_large_message(self.max_bytes))
                    raise failure
                if self.budget is not None and received > reserved:
                    reserved += await self.budget.acquire(received - reserved)  # chunked: as it arrives
                if ended and watcher is None:
                    watcher = asyncio.create_task(watch_for_disconnect())
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if (failure is not None or disconnected) and not started:
                return  # the app's own answer to the aborted read is replaced below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            with request_scope:
                await self.app(scope, limited_receive, guarded_send)
            disconnected = disconnected or request_scope.cancelled_caught
        except Exception as exc:
            # Whatever the app made of the aborted read (FastAPI wraps some into a 400 of its own, and
            # Starlette raises ClientDisconnect), the answer is decided here.
            ours = failure is not None and _caused_by(exc, failure)
            if not (ours or disconnected):
                raise
        finally:
            if watcher is not None:
                watcher.cancel()
            if reserved and self.budget is not None:
                self.budget.release(reserved)
        if started:
            return
        if client_left:
            log.info("%s %s: the client closed the connection before its answer; its work was cancelled",
                     scope.get("method"), scope.get("path"))
            await send({"type": "http.response.start", "status": CLIENT_CLOSED_REQUEST, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        elif disconnected and failure is None:
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
