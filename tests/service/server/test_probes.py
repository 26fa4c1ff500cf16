"""The management port's probe process (issue 22): probes answer whatever the worker's interpreter is doing.

The worker's interpreter lock is held here by one long C call (`sum` over a range never lets go of
it), which is what a data plane busy parsing or decoding looks like to any thread of the same process.
The probes are sent from another process, since a thread of this one would wait for the lock too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bench.toolkit import free_port
from service.server.probes import READY_PATHS, Answer, ProbeBoard
from tests.service.live_server import live_server

PROBER = textwrap.dedent("""
    import json, sys, time, urllib.error, urllib.request
    url, seconds = sys.argv[1], float(sys.argv[2])
    def get():
        start = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                status, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        return time.monotonic() - start, status, body.decode()[:200]
    get()
    print("go", flush=True)
    answers, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        answers.append(get())
        time.sleep(0.05)
    print(json.dumps(answers), flush=True)
""")


def hold_the_interpreter(seconds: float) -> None:
    """Hold this process's interpreter lock for about `seconds` in one C call."""
    start = time.perf_counter()
    sum(range(1_000_000))
    per_item = (time.perf_counter() - start) / 1_000_000
    sum(range(int(seconds / per_item)))


@contextmanager
def probing(url: str, seconds: float) -> Iterator[list[tuple[float, int, str]]]:
    """Probe `url` from another process every 50 ms for `seconds`; the answers fill the list on exit."""
    prober = subprocess.Popen([sys.executable, "-c", PROBER, url, str(seconds)],  # noqa: S603
                              stdout=subprocess.PIPE, text=True)
    assert prober.stdout is not None
    assert prober.stdout.readline().strip() == "go"
    answers: list[tuple[float, int, str]] = []
    try:
        yield answers
    finally:
        out, _ = prober.communicate(timeout=60)
        answers.extend(tuple(a) for a in json.loads(out))  # type: ignore[misc]


def ready_again(url: str, within: float) -> bool:
    """Whether `url` answers 200 within `within` seconds (the loop's next heartbeat, on a busy machine
    some hundreds of milliseconds after the interpreter is let go)."""
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - the test server, over http
                return bool(answer.status == 200)
        except urllib.error.HTTPError as error:
            if error.code != 503 or time.monotonic() > deadline:
                return False
        time.sleep(0.05)


def test_probes_answer_while_the_worker_holds_the_interpreter(app_factory: Callable[..., FastAPI]) -> None:
    port = free_port()
    with TestClient(app_factory(management_port=port)), \
            probing(f"http://127.0.0.1:{port}/health/ready", seconds=2.5) as answers:
        hold_the_interpreter(2.0)
    latencies = [latency for latency, _, _ in answers]
    assert len(answers) >= 10
    # The in-process listener of before answered none of these until the lock was let go (~2 s).
    assert max(latencies) < 0.5, latencies
    assert {status for _, status, _ in answers} == {200}


def test_a_worker_whose_loop_stops_is_reported_not_ready(app_factory: Callable[..., FastAPI]) -> None:
    port = free_port()
    with TestClient(app_factory(management_port=port, saturation_seconds=0.5)):
        with probing(f"http://127.0.0.1:{port}/health/ready", seconds=2.0) as answers:
            hold_the_interpreter(1.8)
        assert ready_again(f"http://127.0.0.1:{port}/health/ready", within=3.0)  # on its own, once the loop runs
    stalled = [body for _, status, body in answers if status == 503]
    assert stalled and "event loop has not run" in stalled[0]
    assert answers[0][1] == 200


def test_the_probe_process_leaves_with_its_worker(store: Path) -> None:
    management = free_port()
    with live_server(store, management_port=str(management)) as server:
        assert server.process is not None
        children = _wait_for_children(server.process.pid)
        assert children, "the worker started no probe process"
        server.process.send_signal(signal.SIGKILL)  # no lifespan to stop the child: it must notice by itself
        server.process.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in children)
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", management), timeout=1):
            pass


def _wait_for_children(pid: int, seconds: float = 60) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        children = [int(c) for task in Path(f"/proc/{pid}/task").glob("*")
                    for c in (task / "children").read_text().split()] if Path(f"/proc/{pid}").exists() else []
        probes = [c for c in children if b"service.server.probes" in Path(f"/proc/{c}/cmdline").read_bytes()]
        if probes:
            return probes
        time.sleep(0.2)
    return []


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has exited; its parent (gone) would reap it


def test_the_board_hands_over_what_was_published_and_nothing_half_written() -> None:
    board = ProbeBoard.create()
    reader = ProbeBoard(board.path)
    try:
        assert reader.read() is None  # nothing published yet
        answers = [Answer(200, [("content-type", "application/json")], b'{"status": "ready"}'),
                   Answer(503, [("retry-after", "5")], b'{"ready": false}')]
        board.publish(12.5, answers)
        heartbeat, read = reader.read()  # type: ignore[misc]
        assert heartbeat == 12.5
        assert read == dict(zip(READY_PATHS, answers, strict=True))
        board._map[:8] = (3).to_bytes(8, "little")  # an odd sequence: a write in progress
        assert reader.read() is None
    finally:
        reader.close()
        board.close(unlink=True)
    assert not board.path.exists()


def test_a_probe_process_that_dies_is_started_again(app_factory: Callable[..., FastAPI]) -> None:
    port = free_port()
    app = app_factory(management_port=port)
    with TestClient(app):
        first = app.state.management.pid
        os.kill(first, signal.SIGKILL)
        deadline, answered = time.monotonic() + 10, None
        while time.monotonic() < deadline and answered is None:
            try:
                answered = urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1).status
            except OSError:
                time.sleep(0.2)
        assert answered == 200
        assert app.state.management.pid not in (None, first)
