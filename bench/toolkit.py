"""Processes and servers, for the bench scripts and the tests alike.

- `ServerProcess`: a server started as a subprocess in a session of its own (so it and its workers
  stop together), on a loopback port, its output in a file (a full pipe would block it), waited for
  until its readiness endpoint answers 200, and stopped with SIGTERM then SIGKILL to its group;
- `service_process(store, ...)`: that for `python -m service`, with a clean `DIGITS_*` environment;
- `free_port`, `http_request`: a port to listen on, one request with any status (urllib);
- /proc readings: a process tree, its commands, resident memory and CPU time (Linux).

Standard library only, so any interpreter can import it (the tests, the bench, the peers' venvs).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""The service's multiprocess-metrics directory variable (service.observability.metrics), never inherited."""


class ServerFailed(RuntimeError):
    """The server exited, or did not become ready in time, or answered wrongly."""


def write_report(out: Path, results: Mapping[str, Any], markdown: str) -> None:
    """A benchmark's `report.json` (everything it measured) and `report.md` (the tables) under `out`,
    and the tables on standard output."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "report.md").write_text(markdown)
    print(markdown)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def http_request(url: str, *, method: str = "GET", body: bytes | None = None, content_type: str | None = None,
                 timeout: float = 10.0) -> tuple[int, bytes]:
    """Status and body of one request (any status; raises OSError when nothing answers)."""
    request = urllib.request.Request(url, data=body, method=method)  # noqa: S310 (our loopback URLs)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


# -- /proc ---------------------------------------------------------------------------------------


def stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3 onwards), or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    return text[text.rindex(")") + 2:].split()


def children_map() -> dict[int, list[int]]:
    """Parent pid -> its children's pids, for every process now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := stat_fields(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_tree(root: int, children: Mapping[int, Sequence[int]] | None = None) -> list[int]:
    """`root` and all its descendants, parents before children."""
    children = children_map() if children is None else children
    tree, queue = [], [root]
    while queue:
        pid = queue.pop(0)
        tree.append(pid)
        queue.extend(sorted(children.get(pid, [])))
    return tree


def command_of(pid: int) -> str:
    """The command line of a process ("" if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (VmRSS), in bytes; 0 if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0)


def tree_rss_bytes(root: int) -> int:
    """Resident memory of `root` and its descendants (a server and its workers), summed."""
    return sum(rss_bytes(pid) for pid in process_tree(root))


def process_cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) used so far by one process, in seconds; 0 if it is gone."""
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields is not None else 0.0


def tree_cpu_seconds(root: int) -> float:
    """CPU time (user + system) used so far by `root` and its live descendants, in seconds."""
    return sum(process_cpu_seconds(pid) for pid in process_tree(root))


# -- servers -------------------------------------------------------------------------------------


class ServerProcess:
    """A server subprocess: `with ServerProcess(argv, port=...) as server:` starts it, waits until
    `ready_path` answers 200, and stops it at the end.

    Its output goes to `log_path` (which then starts with the command line) or to an anonymous
    file; `output()` reads it at any time, after the stop too.
    """

    def __init__(self, argv: Sequence[str], *, port: int, env: Mapping[str, str] | None = None,
                 ready_path: str = "/health/ready", log_path: Path | None = None, ready_timeout_s: float = 180.0,
                 stop_grace_s: float = 20.0, name: str = "server") -> None:
        self.argv = list(argv)
        self.port = port
        self.base_url = f"http://{HOST}:{port}"
        self.env = dict(os.environ if env is None else env)
        self.ready_path = ready_path
        self.log_path = log_path
        self.ready_timeout_s = ready_timeout_s
        self.stop_grace_s = stop_grace_s
        self.name = name
        self.ready_s: float | None = None
        """Seconds from spawn to the first 200 of `ready_path` (set by `wait_ready`)."""
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._started = 0.0

    def __enter__(self) -> Self:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def start(self) -> None:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("w+b")
            self._log.write(f"$ {' '.join(self.argv)}\n".encode())
            self._log.flush()
        else:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 (kept open for output(); closed by close())
        self._started = time.monotonic()
        self.process = subprocess.Popen(  # noqa: S603 (argv from our callers)
            self.argv, cwd=REPO, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def wait_ready(self, *, poll_s: float = 0.01) -> float:
        """Poll the readiness endpoint; the time from spawn to its first 200, in seconds.

        Raises:
            ServerFailed: the process exited, or `ready_timeout_s` passed (with the log's tail).
        """
        assert self.process is not None, "not started"
        deadline = self._started + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerFailed(f"{self.name} exited with {self.process.returncode}: {self.log_tail()}")
            try:
                status, _ = http_request(self.base_url + self.ready_path, timeout=2.0)
            except OSError:
                status = 0
            if status == 200:
                self.ready_s = time.monotonic() - self._started
                return self.ready_s
            time.sleep(poll_s)
        raise ServerFailed(f"{self.name} not ready after {self.ready_timeout_s:.0f} s: {self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to the server's process group (it and its workers), SIGKILL if it lingers past
        `stop_grace_s` (0: SIGKILL at once)."""
        if self.process is None or self.process.poll() is not None:
            return
        steps = ((signal.SIGTERM, self.stop_grace_s),) if self.stop_grace_s > 0 else ()
        for sig, wait_s in (*steps, (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
        # Workers left behind by a supervisor killed hard: same session, so same group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def close(self) -> None:
        """Stop the server and release its log file."""
        self.stop()
        if self._log is not None:
            self._log.close()

    def output(self) -> str:
        """Everything the server wrote so far."""
        if self._log is None or self._log.closed:
            return ""
        # pread: the server shares this file's offset; moving it would misplace its next lines.
        fd, chunks, offset = self._log.fileno(), [], 0
        while chunk := os.pread(fd, 1 << 20, offset):
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks).decode(errors="replace")

    def log_tail(self, chars: int = 1500) -> str:
        return self.output()[-chars:] or "(no output)"

    def rss_bytes(self) -> int:
        """Resident set size of the server's own process (not its workers)."""
        return rss_bytes(self.pid)

    def signal(self, signum: int) -> None:
        """Send a signal to the server's process only (a supervisor relays it to its workers)."""
        assert self.process is not None, "not started"
        self.process.send_signal(signum)

    def connect(self, timeout: float = 10.0) -> socket.socket:
        return socket.create_connection((HOST, self.port), timeout=timeout)

    def wait_exit(self, timeout: float = 30.0) -> tuple[int, str]:
        """Wait for the process to exit on its own; (return code, its output)."""
        assert self.process is not None, "not started"
        return self.process.wait(timeout=timeout), self.output()


def service_env(settings: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for `python -m service`: `base` (os.environ) without any `DIGITS_*` setting or
    multiprocess-metrics directory of its own, plus `settings` as `DIGITS_<NAME>`."""
    env = {key: value for key, value in (os.environ if base is None else base).items()
           if not key.startswith("DIGITS_") and key != MULTIPROC_ENV}
    env.update({f"DIGITS_{key.upper()}": value for key, value in (settings or {}).items()})
    return env


def service_process(store: Path, *, port: int | None = None, device: str = "cpu", python: str | None = None,
                    ready_path: str = "/health/ready", ready_timeout_s: float = 120.0, stop_grace_s: float = 20.0,
                    log_path: Path | None = None, **settings: str) -> ServerProcess:
    """`python -m service` on `store` and a free loopback port, configured only by `settings`
    (`workers="2"` is DIGITS_WORKERS=2). Not started: use it as a context manager."""
    port = free_port() if port is None else port
    argv = [python or sys.executable, "-m", "service", "--host", HOST, "--port", str(port),
            "--model-store", str(store), "--device", device]
    return ServerProcess(argv, port=port, env=service_env(settings), ready_path=ready_path, log_path=log_path,
                         ready_timeout_s=ready_timeout_s, stop_grace_s=stop_grace_s, name="service")
