"""A real `python -m service` in a subprocess, on a free loopback port, for tests that need HTTP.

Signals, socket-level behaviour (a body cut off while it streams, refused connections while
shutting down) and the process's resident memory can only be seen on a real server. The process
handling is the bench's (`bench.toolkit`); this adds the tests' settings and a raw response reader.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.toolkit import ServerProcess, service_process

LiveServer = ServerProcess
"""A started server: its process, `base_url`, `output()`, `rss_bytes()`, `signal()`, `wait_exit()`."""


def read_response(sock: socket.socket, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response with a Content-Length body: (status, headers, body)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response: {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


@contextmanager
def live_server(store: Path, *, startup_timeout: float = 60, **settings: str) -> Iterator[LiveServer]:
    """Run the service on `store` with `DIGITS_<NAME>` settings; SIGKILL it if still running at the end.

    Ready once `/health/live` answers: some tests start it on a store whose models all fail.
    """
    server = service_process(store, ready_path="/health/live", ready_timeout_s=startup_timeout, stop_grace_s=0,
                             **{"warmup_runs": "2", "log_level": "info", **settings})
    try:
        with server:
            yield server
    finally:
        server.close()
