"""Request body size limit, enforced while the body streams in.

A pure ASGI middleware wraps `receive`: a declared `Content-Length` over the limit is refused on
the first read, before any body byte is taken, and a body without one (chunked) is counted chunk
by chunk and refused as soon as it passes the limit. Nothing above the limit is ever buffered.
Routes that never read the body (health, metrics) are not affected, and the route is already
matched when the limit trips, so metrics label the 413 with its route.

Whatever the application does with the error (FastAPI wraps failures of its own body parsing
into a 400), the client gets the 413 and the one error body.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLarge


def too_large_message(limit: int) -> str:
    return f"request body is larger than the limit of {limit:,} bytes"


class BodySizeLimitMiddleware:
    """Refuse (413) any HTTP request whose body exceeds `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if declared is not None and declared > self.max_bytes:
                exceeded = True
                raise PayloadTooLarge(too_large_message(self.max_bytes))
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise PayloadTooLarge(too_large_message(self.max_bytes))
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's own answer to the aborted read is replaced by the 413 below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except PayloadTooLarge:
            if not exceeded:
                raise
        if exceeded and not started:
            await _send_413(send, self.max_bytes)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server (h11/httptools) rejects malformed lengths itself
    return None


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps({"error": too_large_message(limit)}).encode()
    await send({
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),  # the unread rest of the body makes the connection unusable
        ],
    })
    await send({"type": "http.response.body", "body": body})
