"""A real `python -m service` in a subprocess, on a free loopback port, for tests that need HTTP.

Signals, socket-level behaviour (a body cut off while it streams, refused connections while
shutting down) and the process's resident memory can only be seen on a real server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from service.metrics import MULTIPROC_ENV

from .conftest import REPO


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveServer:
    """A started server: its process, base URL and a few probes."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: IO[bytes]) -> None:
        self.process = process
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self._log = log

    def output(self) -> str:
        """Everything the server logged so far (a file, not a pipe: a full pipe would block the server)."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def rss_bytes(self) -> int:
        """Resident set size of the server process, from /proc (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc status")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def wait_exit(self, timeout: float = 30) -> tuple[int, str]:
        """Wait for the process to exit on its own; (return code, its output)."""
        return self.process.wait(timeout=timeout), self.output()


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
    """Run the service on `store` with `DIGITS_<NAME>` settings; SIGKILL it if still running at the end."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("DIGITS_") and key != MULTIPROC_ENV}
    env.update({"DIGITS_WARMUP_RUNS": "2", "DIGITS_LOG_LEVEL": "info"})
    env.update({f"DIGITS_{key.upper()}": value for key, value in settings.items()})
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    process = subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
        [sys.executable, "-m", "service", "--port", str(port), "--model-store", str(store), "--device", "cpu"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    server = LiveServer(process, port, log)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                if httpx.get(f"{server.base}/health/live", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait(timeout=30)
                raise AssertionError("server did not start:\n" + server.output())
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        log.close()
