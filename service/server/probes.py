"""The management port in a process of its own, so that no data-plane load can starve the probes.

Issue 22 measured a health p99 of 492 ms under attack on a management listener inside the worker:
that listener had its own thread, event loop and connections, but it shared the interpreter lock with
every parse and decode the data plane ran. Here the port belongs to a small child process, one per
worker (`python -m service.server.probes`, started and stopped with the worker's lifespan):

- the worker publishes its readiness answers (`/health/ready` and `/v2/health/ready`: status,
  headers and body, made by its own routes) to a shared page four times a second, from its event
  loop (`ProbeBoard`);
- the child answers the probes from that page. When the page has not been refreshed for
  `saturation_seconds`, the worker's event loop is stalled and the child says "not ready" itself; when
  it has not been refreshed for `LIVENESS_STALL_SECONDS`, the worker is stuck and liveness fails too,
  so that Kubernetes restarts it;
- everything else (`/metrics`, `/admin/*`) is forwarded to the worker's own management listener on a
  loopback port, which answers as it always did (slower under attack, but those are not probes).

The child exits when its worker does, and never imports the models, ONNX Runtime or the front end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import logging
import mmap
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from service.server.headers import HostAndOriginMiddleware, SecurityHeadersMiddleware
from service.server.http_server import (
    ConnectionLimits,
    ManagementListener,
    create_management_app,
    listen,
    management_protocol,
)
from service.server.limits import QueryLengthLimitMiddleware
from service.settings import Settings

log = logging.getLogger("service.server.probes")

READY_PATHS = ("/health/ready", "/v2/health/ready")
"""The answers the worker publishes; liveness the child answers alone."""

PUBLISH_SECONDS = 0.25
"""How often the worker refreshes its answers: a probe sees the worker as it was at most this long ago."""

LIVENESS_STALL_SECONDS = 60.0
"""A worker whose event loop has not run for this long is stuck, not busy: liveness fails."""

START_SECONDS = 10.0
SUPERVISE_SECONDS = 1.0
"""How often the worker checks that its probe process still runs."""
FORWARD_MAX_BYTES = 64 * 1024
"""Largest request body forwarded to the worker (admin requests carry none)."""


# -- the shared page --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class ProbeBoard:
    """A page of shared memory (a file under /dev/shm) that one worker writes and its child reads.

    A sequence lock keeps readers from a half-written page: the writer makes the sequence odd, writes,
    then makes it even; a reader copies the page and keeps the copy only if the sequence was the same
    even number before and after. The heartbeat is `time.monotonic()`, one clock for every process.
    """

    HEADER = struct.Struct("<Qd")  # sequence, heartbeat
    SLOT = 16 * 1024  # per answer: a JSON document of status, headers and body

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = path
        size = self.HEADER.size + self.SLOT * len(READY_PATHS)
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = os.open(path, flags, 0o600)
        try:
            if create:
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._sequence = 0

    @classmethod
    def create(cls) -> ProbeBoard:
        directory = "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()  # noqa: S108 (private name, 0600)
        handle, name = tempfile.mkstemp(prefix="digits-probes-", dir=directory)
        os.close(handle)
        os.unlink(name)
        return cls(Path(name), create=True)

    def publish(self, heartbeat: float, answers: Sequence[Answer]) -> None:
        slots = []
        for answer in answers:
            data = json.dumps({"status": answer.status, "headers": answer.headers,
                               "body": answer.body.decode("utf-8", "replace")}).encode()
            if len(data) + 4 > self.SLOT:  # never expected (a readiness body names the models)
                data = json.dumps({"status": 503, "headers": [["content-type", "application/json"]],
                                   "body": '{"error": "the readiness answer is too long to publish"}'}).encode()
            slots.append(struct.pack("<I", len(data)) + data)
        self._sequence += 1
        self._map[:8] = struct.pack("<Q", self._sequence)  # odd: being written
        self._map[8:16] = struct.pack("<d", heartbeat)
        for k, slot in enumerate(slots):
            start = self.HEADER.size + k * self.SLOT
            self._map[start:start + len(slot)] = slot
        self._sequence += 1
        self._map[:8] = struct.pack("<Q", self._sequence)

    def read(self) -> tuple[float, dict[str, Answer]] | None:
        """(heartbeat, answers by path), or None before the first publication."""
        for _ in range(1000):
            before = struct.unpack_from("<Q", self._map)[0]
            if before % 2:
                time.sleep(0)
                continue
            page = bytes(self._map)
            if struct.unpack_from("<Q", self._map)[0] != before:
                continue
            if before == 0:
                return None
            heartbeat = struct.unpack_from("<d", page, 8)[0]
            answers = {}
            for k, path in enumerate(READY_PATHS):
                start = self.HEADER.size + k * self.SLOT
                (length,) = struct.unpack_from("<I", page, start)
                slot = json.loads(page[start + 4:start + 4 + length])
                answers[path] = Answer(slot["status"], [tuple(h) for h in slot["headers"]], slot["body"].encode())
            return heartbeat, answers
        return None

    def close(self, *, unlink: bool = False) -> None:
        self._map.close()
        if unlink:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


# -- the worker's side ------------------------------------------------------------------------------


async def ask(app: Any, path: str) -> Answer:
    """What `app` answers to `GET path` from loopback, called in-process (no socket)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0)}
    status, headers, body = 500, [], bytearray()

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [(k.decode(), v.decode()) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    await app(scope, receive, send)
    return Answer(status, headers, bytes(body))


async def publish_forever(app: Any, board: ProbeBoard) -> None:
    """Refresh the board from the worker's own routes until cancelled (a task of the lifespan)."""
    while True:
        board.publish(time.monotonic(), [await ask(app, path) for path in READY_PATHS])
        await asyncio.sleep(PUBLISH_SECONDS)


@contextlib.asynccontextmanager
async def serve_management(app: Any, settings: Settings) -> AsyncIterator[ProbeProcess | None]:
    """Run the management port while the block runs, when `management_port` is set: the probe process
    on the port, the worker's own listener on a loopback port behind it."""
    if settings.management_port is None:
        yield None
        return
    management = create_management_app(app, settings)
    listener = ManagementListener(management, settings, host="127.0.0.1", port=0)
    public = listen(settings.host, settings.management_port)  # bound here: a taken port fails the start-up
    board = ProbeBoard.create()
    publisher: asyncio.Task[None] | None = None
    process: ProbeProcess | None = None
    try:
        await listener.start()
        board.publish(time.monotonic(), [await ask(management, path) for path in READY_PATHS])
        publisher = asyncio.create_task(publish_forever(management, board))
        process = await ProbeProcess.start(public, board, listener.port, settings)
        app.state.management = process
        log.info("management port (health, metrics, admin) on http://%s:%d, probes in process %d",
                 settings.host, process.port, process.pid)
        yield process
    finally:
        if process is not None:
            await process.stop()
        if publisher is not None:
            publisher.cancel()
        public.close()
        await listener.stop()
        board.close(unlink=True)


class ProbeProcess:
    """The child that holds the management port, started again if it ever exits on its own."""

    def __init__(self, public: socket.socket, board: ProbeBoard, upstream_port: int, settings: Settings) -> None:
        self.public = public
        self.port: int = public.getsockname()[1]
        self.config = {
            "upstream_port": upstream_port,
            "board": str(board.path),
            "limits": asdict(ConnectionLimits.from_settings(settings)),
            "max_connections": settings.management_max_connections,
            "allowed_hosts": settings.allowed_hosts,
            "saturation_seconds": settings.saturation_seconds,
            "log_level": settings.log_level,
        }
        self.child: subprocess.Popen[bytes] | None = None
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child is not None else None

    @classmethod
    async def start(cls, public: socket.socket, board: ProbeBoard, upstream_port: int,
                    settings: Settings) -> ProbeProcess:
        process = cls(public, board, upstream_port, settings)
        await process._spawn()
        process._supervisor = asyncio.create_task(process._supervise())
        return process

    async def _spawn(self) -> None:
        child = subprocess.Popen(  # noqa: S603 (this interpreter, this module)
            [sys.executable, "-m", "service.server.probes", "--fd", str(self.public.fileno())],
            pass_fds=[self.public.fileno()], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        self.child = child
        assert child.stdin is not None and child.stdout is not None
        try:
            child.stdin.write(json.dumps(self.config).encode())  # not the command line: `ps` shows that
            child.stdin.close()
            line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), START_SECONDS)
        except (TimeoutError, OSError) as exc:
            await self._end_child()
            raise OSError(f"the management port's probe process did not start: {exc}") from exc
        if line.strip() != b"listening":
            await self._end_child()
            raise OSError(f"the management port's probe process did not start (exit status {child.poll()})")

    async def _supervise(self) -> None:
        """Start the child again when it exits on its own: without it the probes fail and the pod would
        be restarted for a fault of the probe process, not of the worker."""
        while True:
            await asyncio.sleep(SUPERVISE_SECONDS)
            if self.child is not None and self.child.poll() is not None:
                log.error("the management port's probe process %d exited (status %s); starting it again",
                          self.child.pid, self.child.returncode)
                await self._end_child()
                try:
                    await self._spawn()
                except OSError as exc:
                    log.error("%s; trying again in %.0f s", exc, SUPERVISE_SECONDS)

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
        await self._end_child()

    async def _end_child(self) -> None:
        child = self.child
        if child is None:
            return
        if child.poll() is None:
            child.terminate()
            try:
                await asyncio.to_thread(child.wait, 5.0)
            except subprocess.TimeoutExpired:
                child.kill()
                await asyncio.to_thread(child.wait)
        if child.stdout is not None:
            child.stdout.close()


# -- the child's side -------------------------------------------------------------------------------


def _json(status: int, document: dict[str, Any], extra: Sequence[tuple[str, str]] = ()) -> Answer:
    body = json.dumps(document).encode()
    return Answer(status, [("content-type", "application/json"), *extra], body)


class ProbeApp:
    """The child's ASGI app: probes from the board, everything else forwarded to the worker."""

    def __init__(self, board: ProbeBoard, upstream_port: int, saturation_seconds: float) -> None:
        self.board = board
        self.upstream_port = upstream_port
        self.saturation_seconds = saturation_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path in ("/health/live", "/v2/health/live") and method in ("GET", "HEAD"):
            answer = self.live(path)
        elif path in READY_PATHS and method in ("GET", "HEAD"):
            answer = self.ready(path)
        else:
            answer = await self.forward(scope, receive)
        headers = [(k.lower().encode(), v.encode()) for k, v in answer.headers
                   if k.lower() not in ("content-length", "connection", "transfer-encoding", "keep-alive")]
        headers.append((b"content-length", str(len(answer.body)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else answer.body})

    def _stalled_for(self) -> tuple[float, dict[str, Answer]]:
        page = self.board.read()
        if page is None:
            return float("inf"), {}
        heartbeat, answers = page
        return time.monotonic() - heartbeat, answers

    def live(self, path: str) -> Answer:
        stalled, _ = self._stalled_for()
        if stalled > LIVENESS_STALL_SECONDS:
            message = f"this worker's event loop has not run for {stalled:.0f} s"
            return _json(503, {"live": False, "error": message} if path.startswith("/v2") else {"error": message})
        return _json(200, {"live": True} if path.startswith("/v2") else {"status": "alive"})

    def ready(self, path: str) -> Answer:
        stalled, answers = self._stalled_for()
        if stalled > self.saturation_seconds or path not in answers:
            # As the worker's own saturation monitor words it (service.observability.saturation).
            message = (f"this worker's event loop has not run for {stalled:.0f} s; retry on another worker "
                       "or later")
            document = {"ready": False, "error": message} if path.startswith("/v2") else {"error": message}
            return _json(503, document, [("retry-after", "5")])
        return answers[path]

    async def forward(self, scope: Scope, receive: Receive) -> Answer:
        body = bytearray()
        while True:
            message = await receive()
            body.extend(message.get("body", b""))
            if len(body) > FORWARD_MAX_BYTES:
                return _json(413, {"error": f"the body is longer than the management port's limit of "
                                            f"{FORWARD_MAX_BYTES:,} bytes"})
            if not message.get("more_body", False):
                break
        target = scope["path"] + (f"?{scope['query_string'].decode('latin-1')}" if scope["query_string"] else "")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                   if k not in (b"content-length", b"connection", b"transfer-encoding", b"keep-alive")}
        try:
            return await asyncio.to_thread(self._forward, scope["method"], target, headers, bytes(body))
        except OSError:
            return _json(502, {"error": "the worker behind this management port is not answering"})

    def _forward(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        try:
            connection.request(method, target, body=body or None, headers=headers)
            response = connection.getresponse()
            return Answer(response.status, response.getheaders(), response.read())
        finally:
            connection.close()


async def _run(server: Any, sock: socket.socket, parent: int) -> None:
    async def watch() -> None:
        announced = False
        while not server.should_exit:
            if server.started and not announced:
                print("listening", flush=True)  # the worker waits for this line
                announced = True
            if os.getppid() != parent:  # the worker is gone (even by SIGKILL): so is its port
                server.should_exit = True
            await asyncio.sleep(0.05 if not announced else 0.5)

    watcher = asyncio.create_task(watch())
    try:
        await server.serve(sockets=[sock])
    finally:
        watcher.cancel()


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description="The management port's probe process (started by a worker).")
    parser.add_argument("--fd", type=int, required=True, help="the listening socket, inherited")
    args = parser.parse_args(argv)
    config = json.loads(sys.stdin.read())
    parent = os.getppid()
    board = ProbeBoard(Path(config["board"]))
    app: Any = ProbeApp(board, config["upstream_port"], config["saturation_seconds"])
    app = QueryLengthLimitMiddleware(app)
    app = HostAndOriginMiddleware(app, allowed_hosts=config["allowed_hosts"])
    app = SecurityHeadersMiddleware(app)
    limits = ConnectionLimits(**{**config["limits"], "max_connections": config["max_connections"]})
    sock = socket.socket(fileno=args.fd)
    server = uvicorn.Server(uvicorn.Config(
        app, http=management_protocol(limits), lifespan="off", log_config=None, log_level=config["log_level"],
        access_log=False, server_header=False, limit_concurrency=config["max_connections"],
        timeout_graceful_shutdown=2,
    ))
    asyncio.run(_run(server, sock, parent))
    board.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
