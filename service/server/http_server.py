"""The HTTP server: uvicorn, with the connection limits an exposed service needs, and a lossless SIGHUP.

uvicorn parses HTTP well and fast (httptools), but leaves the connection itself unguarded. Each of
these was measured against a live server (issue 9):

- a connection that never sends a byte is never closed: its keep-alive timer starts only after a
  first answer, so ~20,000 silent sockets exhaust the file descriptors;
- the request line and headers have no size limit, and httptools joins the pieces of one long
  header by repeated concatenation: a 128 MiB header costs 17 s of CPU on the event loop;
- a body shorter than its `Content-Length`, or one that trickles in, is waited for forever;
- on shutdown, idle keep-alive connections are closed at once, so a request a client had just
  sent on one is reset instead of answered;
- with several workers, SIGHUP makes the supervisor replace every worker (each then shuts down as
  above) instead of reloading the models, which every worker already does without a restart.

`GuardedHttpProtocol` adds the missing limits to uvicorn's own protocol class: one deadline per
connection for the request line and headers (408, or a quiet close when nothing was sent), a cap
on header bytes and count (431), a cap on open connections that closes the longest-waiting idle
one to make room, and a drain on shutdown that answers a request arriving on an idle connection
(with `Connection: close`) before closing it, and closes the others with a FIN rather than a reset.
The body's own timeouts live in the ASGI layer (`service.server.limits`), which can answer with the
service's JSON error while the application waits for the body. `serve` runs it all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.supervisors.multiprocess import Multiprocess

from service.server.headers import SECURITY_HEADERS
from service.settings import Settings

log = logging.getLogger(__name__)

PROTOCOL = "service.server.http_server:GuardedHttpProtocol"
"""The import string uvicorn is given, so that every worker process finds the class."""

APP_FACTORY = "service.server.http_server:create_served_app"
"""The app factory uvicorn is given: the application, with its start-up failures told in one line."""

DRAIN_GRACE_SECONDS = 1.0
"""On shutdown, how long an idle keep-alive connection stays open for a request already on its way."""

LINGER_SECONDS = 1.0
"""After sending FIN, how long unread bytes are still read and dropped before the socket closes, so
that the kernel sends no reset (a close with unread data in the buffer resets the connection)."""


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float
    max_header_bytes: int
    max_headers: int
    max_connections: int
    send_timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(settings.header_timeout, settings.max_header_bytes, settings.max_headers, settings.max_connections,
                   settings.send_timeout)


@cache
def connection_limits() -> ConnectionLimits:
    """The limits of this process, from its `DIGITS_*` environment (uvicorn builds a protocol object
    per connection from an import string, in every worker, so they cannot be passed in)."""
    return ConnectionLimits.from_settings(Settings())


_SECURITY_HEADER_LINES = b"".join(f"{name.lower()}: {value}\r\n".encode() for name, value in SECURITY_HEADERS.items())


class _HeadersTooLarge(Exception):
    pass


_waiting: dict[GuardedHttpProtocol, float] = {}
"""Connections with no request in progress (new, between requests, or still sending headers) and
since when, oldest first: the ones a full server closes to make room. A dict keeps insertion order,
so the oldest is found in O(1). (The management listener keeps its own: `ManagementHttpProtocol`.)"""

EVICTABLE_AFTER_SECONDS = 2.0
"""A full server closes only a connection that has waited at least this long: one that has just
connected (a health probe, a client about to send its headers) always gets its chance, and an
attacker holding more sockets than the limit cannot make the server churn through connections."""


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header limits, a header deadline, a connection cap and a clean drain."""

    waiting: ClassVar[dict[GuardedHttpProtocol, float]] = _waiting
    """The connections without a request of this listener (one dict per event loop)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = self.connection_limits()
        self._deadline: asyncio.TimerHandle | None = None
        self._send_deadline: asyncio.TimerHandle | None = None
        self._in_headers = False  # a request has begun and its headers are not complete
        self._in_request = False  # headers complete, answer not complete: the application's time
        self._message_complete = True  # the parser is not inside a request body
        self._header_bytes = 0  # of the current request's line and headers, so far
        self._header_count = 0
        self._tail = b""  # last bytes fed while in headers: the blank line may straddle two reads
        self._draining = False
        self._closing = False  # FIN sent or close decided: anything more is dropped

    # -- connection life ---------------------------------------------------------------------

    @staticmethod
    def connection_limits() -> ConnectionLimits:
        return connection_limits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not _evict_longest_waiting(self):
            self._answer_and_close(503, "the server has too many open connections; retry shortly")
            return
        self.waiting[self] = self.loop.time()
        self._arm(self.limits.header_timeout, self._header_deadline_passed)

    def connection_lost(self, exc: Exception | None) -> None:
        self.waiting.pop(self, None)
        self._disarm()
        self._stop_send_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return  # lingering after FIN, or answered and closing: read and drop
        self._unset_keepalive_if_required()
        # Header bytes are counted from the start of every request, including one pipelined behind a
        # request still in progress (its body complete): before, a 128 MiB header sent behind a slow
        # /predict was never counted and cost 14.9 s of the event loop.
        if (self._in_headers or self._message_complete) and not self._headers_fit(data):
            message = f"the request line and headers exceed {self.limits.max_header_bytes:,} bytes"
            if self._in_request:
                # An answer is being written on this connection: a 431 cannot go in the middle of it.
                log.info("%s: %s (pipelined); closing the connection", self.client, message)
                self.evict()
            else:
                self._answer_and_close(431, message)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadersTooLarge):
                self._answer_and_close(431, str(exc.__context__))
            else:
                # The client's bytes are not HTTP; one line at debug, not a warning per attempt.
                log.debug("invalid HTTP request from %s: %s", self.client, exc)
                self._answer_and_close(400, "invalid HTTP request")

    def _headers_fit(self, data: bytes) -> bool:
        """Whether `data` keeps the request line and headers within the limit (checked before httptools
        sees it, so an oversized header is never accumulated)."""
        allowed = self.limits.max_header_bytes - self._header_bytes
        if len(data) <= allowed:
            self._header_bytes += len(data)
            self._tail = data[-3:]
            return True
        # More than the limit arrived at once: fine only if the headers end within it (a body follows).
        return b"\r\n\r\n" in self._tail + data[: allowed + 4]

    # -- the parser's callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._message_complete = False
        self._header_count = 0
        self._arm(self.limits.header_timeout, self._header_deadline_passed)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            raise _HeadersTooLarge(f"the request has more than {self.limits.max_headers} header fields")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._in_request = True
        self._header_bytes = 0
        self._tail = b""
        self.waiting.pop(self, None)
        self._disarm()  # from here the body's timeouts apply (service.server.limits)
        super().on_headers_complete()
        if self._draining and self.cycle is not None:
            self.cycle.keep_alive = False  # answered, then closed: the server is going away

    def on_message_complete(self) -> None:
        self._message_complete = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a pipelined request was waiting and has just started: still in a request
        self._in_request = False
        if not self.transport.is_closing():
            self.waiting[self] = self.loop.time()
            # uvicorn's keep-alive timer closes a silent connection; this one bounds a connection that
            # keeps sending bytes that never begin a request (the rest of an unread body, say).
            self._arm(self.config.timeout_keep_alive + self.limits.header_timeout, self._header_deadline_passed)

    # -- a client that does not read -----------------------------------------------------------

    def pause_writing(self) -> None:
        """The socket's send buffer is full: the client has `send_timeout` seconds to read from it.

        asyncio keeps everything written in memory until the kernel takes it, so a client that never
        reads holds its answer (60 of them with 7 MiB answers held 440 MiB) until it disconnects.
        """
        super().pause_writing()
        self._stop_send_clock()
        self._send_deadline = self.loop.call_later(self.limits.send_timeout, self._send_timeout_passed)

    def resume_writing(self) -> None:
        self._stop_send_clock()
        super().resume_writing()

    def _stop_send_clock(self) -> None:
        if self._send_deadline is not None:
            self._send_deadline.cancel()
            self._send_deadline = None

    def _send_timeout_passed(self) -> None:
        self._send_deadline = None
        log.info("%s read nothing of its answer for %g s; closing the connection", self.client,
                 self.limits.send_timeout)
        self._closing = True
        self.waiting.pop(self, None)
        self._disarm()
        self.transport.abort()  # a FIN would wait behind the unread answer

    # -- deadlines and shutdown --------------------------------------------------------------

    def _arm(self, delay: float, action: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(delay, action)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _header_deadline_passed(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self._in_request:
            return
        if self._in_headers:
            self._answer_and_close(408, f"the request headers did not arrive within {self.limits.header_timeout:g} s")
        else:
            self._close_cleanly()

    def shutdown(self) -> None:
        """The server is stopping: finish what is in progress, answer what is on its way, then close."""
        self._draining = True
        if self._in_request:
            super().shutdown()  # the answer goes out with `Connection: close`
        elif not self._in_headers:
            # Idle between requests: a request may already be in flight towards us.
            self._arm(DRAIN_GRACE_SECONDS, self._drain_grace_passed)
        # Mid-headers: the header deadline still applies, and the answer will close.

    def _drain_grace_passed(self) -> None:
        self._deadline = None
        if not (self._in_request or self._in_headers):
            self._close_cleanly()

    def _close_cleanly(self) -> None:
        """FIN, then drop whatever the client still sends until it closes or `LINGER_SECONDS` pass."""
        if self.transport.is_closing():
            return
        self._closing = True
        self.waiting.pop(self, None)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self._arm(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def evict(self) -> None:
        """Close at once, to make room for another connection (it had no request in progress)."""
        self._closing = True
        self.waiting.pop(self, None)
        self._disarm()
        self.transport.close()

    def _answer_and_close(self, status: int, message: str) -> None:
        """Answer from below the application (no request reached it) with the service's error body."""
        self._closing = True
        self.waiting.pop(self, None)
        self._disarm()
        body = json.dumps({"error": message}).encode()
        head = [
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            _SECURITY_HEADER_LINES,  # what service.server.headers adds to the application's answers
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        if self.transport.can_write_eof():
            # The client reads its answer while the rest of what it sends waits unread in the socket
            # (reading and dropping a 128 MiB header would cost the event loop); then the close.
            self.transport.write_eof()
            self.transport.pause_reading()
            self._deadline = self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()


def _evict_longest_waiting(newcomer: GuardedHttpProtocol) -> bool:
    """Close the connection that has waited longest without a request in progress, if it has waited
    `EVICTABLE_AFTER_SECONDS`; False if none has (the newcomer is then refused)."""
    for connection, since in newcomer.waiting.items():
        if newcomer.loop.time() - since < EVICTABLE_AFTER_SECONDS:
            return False  # oldest first: if this one is too young, so are the rest
        if connection is not newcomer:
            log.debug("connection limit reached: closing the longest-waiting connection from %s", connection.client)
            connection.evict()
            return True
    return False


class QuietStartupFailure:
    """ASGI wrapper: when the lifespan fails for a reason the service has already logged in one line
    (no usable store, no usable device), uvicorn is told the start-up failed without the 20-35 line
    traceback starlette attaches to it. Any other failure (a bug) keeps its traceback."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)  # app.state and the rest, for whoever holds the served app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        from service.errors import DeviceUnavailable, StoreUnavailable

        failed: list[dict[str, Any]] = []

        async def hold_failure(message: Any) -> None:
            if message["type"] == "lifespan.startup.failed":
                failed.append(message)  # sent once the exception behind it is known
                return
            await send(message)

        try:
            await self.app(scope, receive, hold_failure)
        except (StoreUnavailable, DeviceUnavailable):
            await send({**failed[0], "message": ""} if failed else {"type": "lifespan.startup.failed"})
            return  # the lifespan logged "cannot start: <why>"; uvicorn exits with its start-up status
        except BaseException:
            if failed:
                await send(failed[0])
            raise
        if failed:
            await send(failed[0])


def create_served_app() -> Any:
    """Factory for uvicorn: the app from the environment (`service.server.app.create_app_from_env`), wrapped.

    A worker that cannot build the app (a dependency that fails to import, say) exits with uvicorn's
    start-up failure status and one line. uvicorn turns only a TypeError from a factory into that
    status; any other exception ends the worker with status 1 and a traceback, and with several
    workers the supervisor then replaces it, forever (78 tracebacks in 25 s, measured).
    """
    from uvicorn.config import STARTUP_FAILURE

    try:
        from service.server.app import create_app_from_env

        app = create_app_from_env()
    except Exception as exc:  # any failure here is a start-up failure, told in one line
        # One write of the whole line: the workers share stderr, and print() writes the newline apart.
        sys.stderr.write(f"cannot start: a worker could not build the app: {type(exc).__name__}: {exc}\n")
        sys.stderr.flush()
        sys.exit(STARTUP_FAILURE)
    return QuietStartupFailure(app)


class ReloadingMultiprocess(Multiprocess):
    """uvicorn's worker supervisor, except that SIGHUP reloads the model store instead of restarting,
    and that a worker's start-up failure is the supervisor's exit status (`failed_to_start`).

    Each worker reloads its store on SIGHUP and swaps the models atomically (`service.models.reloader`);
    restarting the workers instead would drop every connection they hold. So the supervisor passes
    the signal on to each worker and keeps them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._served_pids: set[int] = set()
        self._died_before_serving = False

    @property
    def failed_to_start(self) -> bool:
        """A worker exited with uvicorn's start-up failure status, or died before it ever served
        (uvicorn stops the others in the first case but then returns as after a clean shutdown, so a
        process supervisor would see success)."""
        from uvicorn.config import STARTUP_FAILURE

        return self._died_before_serving or any(process.exitcode == STARTUP_FAILURE for process in self.processes)

    def keep_subprocess_alive(self) -> None:
        """uvicorn's check, except that a worker that dies before it has served stops the service.

        uvicorn replaces any worker that dies unless its status is the start-up failure one; one that
        dies during start-up for another reason (a crash, an exit of its own) would fail the same way
        each time, so replacing it is a loop, not a recovery. A worker that has served and then dies is
        replaced as before. ("Has served" is what the worker answered the last check, every half
        second: one that dies within that time of becoming ready counts as one that never served.)
        """
        for process in self.processes:
            if process.pid is None or process.pid in self._served_pids:
                continue
            if process.exitcode is None and worker_has_started(process):
                self._served_pids.add(process.pid)
            elif process.exitcode is not None and not self.should_exit.is_set():
                log.error("Worker [%d] exited with status %d before it served; stopping the service.",
                          process.pid, process.exitcode)
                self._died_before_serving = True
                self.should_exit.set()
                return
        super().keep_subprocess_alive()

    def handle_hup(self) -> None:
        log.info("Received SIGHUP, asking %d workers to reload the model store.", len(self.processes))
        for process in self.processes:
            if process.pid is not None:
                # One that just exited is replaced by the supervisor, and the new one reads the new store.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGHUP)


def worker_has_started(process: Any, timeout: float = 1.0) -> bool:
    """Whether a uvicorn worker answers that its server has started (`Process.is_ready`), reading
    the answer to this question: an answer that came after an earlier check gave up is dropped first."""
    with contextlib.suppress(OSError, EOFError):
        while process.parent_conn.poll(0):
            process.parent_conn.recv()
    return bool(process.is_ready(timeout=timeout))


def raise_descriptor_limit(settings: Settings) -> None:
    """Raise this process's open-file limit to its hard limit, and warn if the connection cap exceeds it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    # Model files, the listening socket, logs, threads' pipes: keep room for them above the cap.
    if soft != resource.RLIM_INFINITY and settings.max_connections > soft - 256:
        log.warning("max_connections (%d) is close to the open-file limit (%d): lower DIGITS_MAX_CONNECTIONS",
                    settings.max_connections, soft)


def serve(settings: Settings) -> int:
    """Run the service with uvicorn as configured: one process, or a supervisor and its workers.

    The port is bound, and the store and device checked, before any model loads: a start-up that
    cannot succeed prints one line (`cannot start: ...`) and returns at once.

    Returns the exit status: uvicorn's start-up failure status (3) when the service could not start,
    with one worker or several, else 0 (a drained shutdown is a success).
    """
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    # Imported here: the store's checks load numpy, which the management port's probe process
    # (service.server.probes, which imports this module) must not carry.
    from service.server.startup import StartupFailure, bind_port, preflight

    try:
        sock = bind_port(settings)
        preflight(settings)
    except StartupFailure as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return STARTUP_FAILURE
    raise_descriptor_limit(settings)
    config = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        server_header=False,
        http=PROTOCOL,
        timeout_graceful_shutdown=30,
    )
    # What uvicorn logs when it binds the socket itself (it was bound above, before the models load).
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", settings.host, sock.getsockname()[1]
    )
    if config.workers > 1:
        supervisor = ReloadingMultiprocess(config, sockets=[sock])
        supervisor.run()
        return STARTUP_FAILURE if supervisor.failed_to_start else 0
    server = uvicorn.Server(config)
    # uvicorn re-raises the SIGTERM it handled once it has drained, which would end the process "by
    # signal"; a drained shutdown is a success, as it is with several workers (the supervisor exits 0).
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    return 0 if server.started else STARTUP_FAILURE


# -- the management listener ---------------------------------------------------------------------


def management_protocol(limits: ConnectionLimits) -> type[GuardedHttpProtocol]:
    """The guarded protocol with the management listener's own limits and its own idle-connection table."""

    class ManagementHttpProtocol(GuardedHttpProtocol):
        waiting: ClassVar[dict[GuardedHttpProtocol, float]] = {}  # this listener's own

        @staticmethod
        def connection_limits() -> ConnectionLimits:
            return limits

    return ManagementHttpProtocol


class _ReloaderOnLoop:
    """The worker's reloader, called from the management thread: the reload runs on the worker's own
    event loop, where its lock and the batcher's queues live."""

    def __init__(self, reloader: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.reloader = reloader
        self.loop = loop

    async def reload(self, trigger: Any = "admin") -> Any:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.reloader.reload(trigger), self.loop))


def create_management_app(app: Any, settings: Settings) -> Any:
    """Health, metrics and admin over the worker's app state, for the management listener.

    Called in the lifespan, once the state is complete. The routes are the data port's own, so the
    answers are the same; `/v2/health/*` answer as the protocol's routes do.
    """
    from fastapi import FastAPI
    from starlette.datastructures import State

    from service.api.error_handlers import install_error_handlers
    from service.api.routes import admin, health, metrics
    from service.inference_protocol import rest
    from service.server.headers import HostAndOriginMiddleware, SecurityHeadersMiddleware
    from service.server.limits import QueryLengthLimitMiddleware

    management = FastAPI(title="Digit serving: management", openapi_url=None, docs_url=None, redoc_url=None)
    state = dict(app.state._state)  # the same registry, data plane, metrics and saturation monitor
    if state.get("reloader") is not None:
        state["reloader"] = _ReloaderOnLoop(state["reloader"], asyncio.get_running_loop())
    management.state = State(state)
    install_error_handlers(management)
    management.include_router(health.router)
    management.include_router(metrics.router)
    management.add_api_route("/v2/health/live", rest.server_live, methods=["GET"], include_in_schema=False)
    management.add_api_route("/v2/health/ready", rest.server_ready, methods=["GET"], include_in_schema=False)
    if settings.admin_token is not None:
        management.include_router(admin.router)
    management.add_middleware(QueryLengthLimitMiddleware)
    management.add_middleware(HostAndOriginMiddleware, allowed_hosts=settings.allowed_hosts)
    management.add_middleware(SecurityHeadersMiddleware)
    return management


MANAGEMENT_START_SECONDS = 10.0


class ManagementListener:
    """The worker's management routes: their own uvicorn server, in a thread with its own event loop.

    It serves on loopback behind the probe process (`service.server.probes`), which holds the
    management port: the data port's event loop, connection budget and work threads can all be
    saturated by clients, and this listener shares none of them. It still shares the interpreter
    lock, so the probes themselves are answered by the other process.
    """

    def __init__(self, app: Any, settings: Settings, *, host: str | None = None, port: int | None = None) -> None:
        import uvicorn

        assert settings.management_port is not None
        self.settings = settings
        self.host = settings.host if host is None else host
        limits = replace(ConnectionLimits.from_settings(settings), max_connections=settings.management_max_connections)
        self.socket = listen(self.host, settings.management_port if port is None else port)
        self.port: int = self.socket.getsockname()[1]
        config = uvicorn.Config(app, http=management_protocol(limits), lifespan="off", log_config=None,
                                log_level=settings.log_level, access_log=False, server_header=False,
                                limit_concurrency=settings.management_max_connections, timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="management-listener", daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.socket]))

    async def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + MANAGEMENT_START_SECONDS
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the management listener on port {self.port} did not start")
            await asyncio.sleep(0.01)
        log.debug("management listener (health, metrics, admin) on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.to_thread(self.thread.join, 5.0)
        self.socket.close()


def listen(host: str, port: int) -> socket.socket:
    """A listening socket that each worker can bind (SO_REUSEPORT), as gRPC's port is."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.setblocking(False)
    return sock
