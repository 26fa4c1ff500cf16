"""Closed-loop HTTP load: `wrk` (preferred), `hey`, or a small pure-Python loop, behind one call.

`run_load(tool, base_url, payload, concurrency, seconds)` keeps `concurrency` keep-alive
connections busy for `seconds` and returns a `LoadResult`: requests/s, latency percentiles and the
errors split into non-2xx answers and socket errors (connect, read, write, timeout).

Why wrk first: on a 2-core machine the load generator shares the cores with the server, so its own
cost per request matters. wrk (C, one thread, event loop) spends a fraction of what hey (Go,
net/http, a goroutine per connection) spends per request, so more of the machine goes to the
server under test; both are Debian packages (`apt-get install -y wrk hey`). The Python loop is
only for the smoke test on machines without either: it saturates near 1-2k requests/s.
"""

from __future__ import annotations

import http.client
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.payloads import Payload

TOOLS = ("wrk", "hey", "python")
WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_bodies.lua"
MAX_PYTHON_REQUESTS = 200_000
"""Bound on one pure-Python run, whatever its duration."""


class LoadGeneratorFailed(RuntimeError):
    """The load generator exited with an error or printed nothing that could be parsed."""


@dataclass(frozen=True)
class LoadResult:
    tool: str
    concurrency: int
    seconds: float
    requests: int
    """Completed HTTP responses (any status)."""
    requests_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    max_ms: float | None
    non_2xx: int
    socket_errors: int

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "errors": self.errors}


def available_tools() -> list[str]:
    """Load generators usable here, best first (the Python loop always is)."""
    return [tool for tool in TOOLS if tool == "python" or shutil.which(tool)]


def pick_tool(preference: str = "auto") -> str:
    """`auto`: the first of wrk, hey, python that is installed; else the named tool, if installed."""
    tools = available_tools()
    if preference == "auto":
        return tools[0]
    if preference not in tools:
        raise LoadGeneratorFailed(f"{preference} is not installed (apt-get install -y {preference}); found {tools}")
    return preference


def run_load(tool: str, base_url: str, payload: Payload, concurrency: int, seconds: float,
             *, timeout_s: float = 10.0) -> LoadResult:
    """Drive `base_url + payload.path` for `seconds` at `concurrency` with `tool`."""
    if tool == "wrk":
        return run_wrk(base_url, payload, concurrency, seconds, timeout_s=timeout_s)
    if tool == "hey":
        return run_hey(base_url, payload, concurrency, seconds, timeout_s=timeout_s)
    if tool == "python":
        return run_python(base_url, payload, concurrency, seconds, timeout_s=timeout_s)
    raise ValueError(f"unknown load generator {tool!r}; expected one of {TOOLS}")


def _run_tool(argv: list[str], seconds: float, timeout_s: float) -> str:
    # The tools stop by themselves after `seconds`; the extra margin only catches a hung tool.
    completed = subprocess.run(  # noqa: S603 (argv is built here: a fixed tool, our URL and files)
        argv, capture_output=True, text=True, timeout=seconds + timeout_s + 30, check=False
    )
    if completed.returncode != 0:
        said = (completed.stderr.strip() or completed.stdout.strip())[-500:]
        raise LoadGeneratorFailed(f"{argv[0]} exited {completed.returncode}: {said}")
    return completed.stdout


# -- wrk ---------------------------------------------------------------------------------------


def run_wrk(base_url: str, payload: Payload, concurrency: int, seconds: float, *, timeout_s: float) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as body_dir:
        for index, body in enumerate(payload.bodies):
            (Path(body_dir) / f"body{index:04d}.bin").write_bytes(body)
        argv = [
            # wrk takes whole seconds only.
            "wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", f"--timeout={max(1, round(timeout_s))}s",
            "-s", str(WRK_SCRIPT), base_url + payload.path,
            "--", payload.method, payload.content_type or "-", body_dir, str(len(payload.bodies)),
        ]
        output = _run_tool(argv, seconds, timeout_s)
    return parse_wrk(output, concurrency)


_WRK_LINE = re.compile(r"^BENCH_RESULT (.*)$", re.MULTILINE)


def parse_wrk(output: str, concurrency: int) -> LoadResult:
    """Read the `BENCH_RESULT key=value ...` line that bench/wrk_bodies.lua prints at the end."""
    match = _WRK_LINE.search(output)
    if match is None:
        raise LoadGeneratorFailed(f"no BENCH_RESULT line in wrk's output: {output.strip()[-500:]}")
    fields = {key: float(value) for key, value in (item.split("=", 1) for item in match.group(1).split())}
    requests = int(fields["requests"])
    seconds = fields["duration_us"] / 1e6
    measured = requests > 0
    return LoadResult(
        tool="wrk",
        concurrency=concurrency,
        seconds=seconds,
        requests=requests,
        requests_per_s=requests / seconds if seconds > 0 else 0.0,
        p50_ms=fields["p50_us"] / 1e3 if measured else None,
        p95_ms=fields["p95_us"] / 1e3 if measured else None,
        p99_ms=fields["p99_us"] / 1e3 if measured else None,
        mean_ms=fields["mean_us"] / 1e3 if measured else None,
        max_ms=fields["max_us"] / 1e3 if measured else None,
        # wrk's "status" errors are responses with a status of 400 or more.
        non_2xx=int(fields["status"]),
        socket_errors=int(fields["connect"] + fields["read"] + fields["write"] + fields["timeout"]),
    )


# -- hey ---------------------------------------------------------------------------------------


def run_hey(base_url: str, payload: Payload, concurrency: int, seconds: float, *, timeout_s: float) -> LoadResult:
    argv = ["hey", "-z", f"{seconds:g}s", "-c", str(concurrency), "-t", f"{max(1, round(timeout_s))}",
            "-m", payload.method]
    with tempfile.NamedTemporaryFile(prefix="bench-hey-", suffix=".bin") as body_file:
        if payload.bodies:
            # hey replays one body: the first of the payload's (wrk cycles through all of them).
            body_file.write(payload.bodies[0])
            body_file.flush()
            argv += ["-D", body_file.name, "-T", payload.content_type or "application/octet-stream"]
        output = _run_tool([*argv, base_url + payload.path], seconds, timeout_s)
    return parse_hey(output, concurrency)


_HEY_NUMBER = r"([0-9]+(?:\.[0-9]+)?)"


def parse_hey(output: str, concurrency: int) -> LoadResult:
    """Read hey's text summary: totals, latency distribution, status codes and error distribution."""

    def seconds_of(label: str) -> float | None:
        match = re.search(rf"^\s*{label}:\s+{_HEY_NUMBER} secs", output, re.MULTILINE)
        return float(match.group(1)) if match else None

    def percentile_ms(p: int) -> float | None:
        match = re.search(rf"^\s*{p}% in {_HEY_NUMBER} secs", output, re.MULTILINE)
        return float(match.group(1)) * 1e3 if match else None

    total = seconds_of("Total")
    if total is None:
        raise LoadGeneratorFailed(f"no summary in hey's output: {output.strip()[-500:]}")
    statuses = {int(code): int(count) for code, count in re.findall(r"^\s*\[(\d{3})\]\s+(\d+) responses", output,
                                                                    re.MULTILINE)}
    errors_section = output.split("Error distribution:", 1)[1] if "Error distribution:" in output else ""
    socket_errors = sum(int(count) for count in re.findall(r"^\s*\[(\d+)\]\s", errors_section, re.MULTILINE))
    requests = sum(statuses.values())
    slowest, average = seconds_of("Slowest"), seconds_of("Average")
    return LoadResult(
        tool="hey",
        concurrency=concurrency,
        seconds=total,
        requests=requests,
        # hey's own Requests/sec also counts failed requests; count answers only.
        requests_per_s=requests / total if total > 0 else 0.0,
        p50_ms=percentile_ms(50),
        p95_ms=percentile_ms(95),
        p99_ms=percentile_ms(99),
        mean_ms=average * 1e3 if average is not None and requests else None,
        max_ms=slowest * 1e3 if slowest is not None and requests else None,
        non_2xx=sum(count for code, count in statuses.items() if not 200 <= code < 300),
        socket_errors=socket_errors,
    )


# -- pure Python -------------------------------------------------------------------------------


def run_python(base_url: str, payload: Payload, concurrency: int, seconds: float, *, timeout_s: float) -> LoadResult:
    """Threads, one keep-alive connection each, until the deadline or MAX_PYTHON_REQUESTS."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    headers = {"Content-Type": payload.content_type} if payload.content_type else {}
    latencies: list[float] = []
    counts = {"non_2xx": 0, "socket_errors": 0, "sent": 0}
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def loop(offset: int) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
        index = offset
        try:
            while time.perf_counter() < deadline:
                with lock:
                    if counts["sent"] >= MAX_PYTHON_REQUESTS:
                        return
                    counts["sent"] += 1
                body = payload.bodies[index % len(payload.bodies)] if payload.bodies else None
                index += 1
                start = time.perf_counter()
                try:
                    connection.request(payload.method, payload.path, body=body, headers=headers)
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException):
                    with lock:
                        counts["socket_errors"] += 1
                    connection.close()
                    connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
                    continue
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if not 200 <= response.status < 300:
                        counts["non_2xx"] += 1
        finally:
            connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + timeout_s + 5)
    elapsed = time.perf_counter() - started
    return _result_from_samples("python", concurrency, elapsed, latencies, counts["non_2xx"], counts["socket_errors"])


def _result_from_samples(tool: str, concurrency: int, seconds: float, latencies: list[float], non_2xx: int,
                         socket_errors: int) -> LoadResult:
    ordered = sorted(latencies)

    def percentile_ms(p: float) -> float | None:
        if not ordered:
            return None
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1e3

    return LoadResult(
        tool=tool,
        concurrency=concurrency,
        seconds=seconds,
        requests=len(ordered),
        requests_per_s=len(ordered) / seconds if seconds > 0 else 0.0,
        p50_ms=percentile_ms(50),
        p95_ms=percentile_ms(95),
        p99_ms=percentile_ms(99),
        mean_ms=statistics.fmean(ordered) * 1e3 if ordered else None,
        max_ms=ordered[-1] * 1e3 if ordered else None,
        non_2xx=non_2xx,
        socket_errors=socket_errors,
    )
