"""A real uvicorn server: bodies cut off while they stream, SIGHUP reloads, SIGTERM drains.

These behaviours live between the socket and the app, so they are tested on `python -m service`
in a subprocess, talking raw HTTP/1.1 over loopback sockets where the client's timing matters.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from digit_contract.store import latest_version, version_dir
from tests.factories import bar_digit, encode
from tests.service.conftest import edit_card
from tests.service.live_server import LiveServer, live_server, read_response

DIGIT = encode(bar_digit(120))


def request_head(target: str, content_type: str, length: int | None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return f"POST {target} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n{framing}\r\n\r\n".encode()


def refused(server: LiveServer) -> bool:
    """Whether the server no longer accepts connections (it has begun to shut down)."""
    try:
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def publish_copy(store: Path, name: str, *, broken: bool = False) -> int:
    current = latest_version(store, name)
    assert current is not None
    target = version_dir(store, name, current + 1)
    shutil.copytree(version_dir(store, name, current), target)
    edit_card(target / "card.json", version=current + 1)
    if broken:
        (target / "model.onnx").write_bytes(b"not an onnx file")
    return current + 1


def wait_for(condition: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


# -- the body limit on the wire ----------------------------------------------------------------


LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def limited_server(store: Path) -> LiveServer:
    with live_server(store, max_upload_bytes=str(LIMIT), log_level="warning") as server:
        yield server  # type: ignore[misc]


def test_a_declared_length_over_the_limit_is_refused_before_any_body_byte(limited_server: LiveServer) -> None:
    with limited_server.connect() as sock:
        sock.sendall(request_head("/predict", "image/png", 10 * 1024**3))  # announces 10 GiB, sends none
        start = time.perf_counter()
        status, headers, body = read_response(sock, timeout=5)
    assert (status, json.loads(body)) == (413, {"error": "request body is larger than the limit of 65,536 bytes"})
    assert headers["connection"] == "close"
    assert time.perf_counter() - start < 2


def test_a_chunked_upload_is_cut_off_while_it_streams(limited_server: LiveServer) -> None:
    """The 413 arrives while the client is still sending: the server did not wait for (or keep) the body."""
    planned = 256 * 1024 * 1024  # 4096 times the limit
    chunk = b"4000\r\n" + b"\0" * 0x4000 + b"\r\n"  # 16 KiB chunks
    answer: list[tuple[int, dict[str, str], bytes]] = []
    rss_before = limited_server.rss_bytes()
    with limited_server.connect() as sock:
        reader = threading.Thread(target=lambda: answer.append(read_response(sock, timeout=30)), daemon=True)
        sock.sendall(request_head("/predict", "image/png", None))
        reader.start()
        sent = 0
        try:
            while sent < planned and not answer:
                sock.sendall(chunk)
                sent += 0x4000
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection after answering: expected
        reader.join(timeout=30)
    assert answer, "no answer"
    status, headers, body = answer[0]
    assert (status, json.loads(body)) == (413, {"error": "request body is larger than the limit of 65,536 bytes"})
    assert headers["connection"] == "close"
    # What the client got into the socket before it saw the answer: the limit plus what the kernel's
    # socket buffers absorbed (a few MiB on loopback), far from the 256 MiB it meant to send.
    assert sent < planned // 16, f"sent {sent / 2**20:.0f} MiB before the 413"
    assert limited_server.rss_bytes() - rss_before < 32 * 1024 * 1024


def test_a_moderately_oversized_body_is_drained_and_the_connection_reused(limited_server: LiveServer) -> None:
    """Up to 4x the limit (declared or chunked), the server discards the rest instead of resetting."""
    piece = b"4000\r\n" + b"\0" * 0x4000 + b"\r\n"
    chunked = request_head("/predict", "image/png", None) + piece * (3 * LIMIT // 0x4000) + b"0\r\n\r\n"
    declared = request_head("/predict", "image/png", 3 * LIMIT) + b"\0" * (3 * LIMIT)
    with limited_server.connect() as sock:
        for request in (declared, chunked, declared, chunked):  # then a valid request, all on one connection
            sock.sendall(request)
            status, headers, body = read_response(sock)
            assert (status, json.loads(body)) == (413, {"error": "request body is larger than the limit of 65,536 bytes"})
            assert "connection" not in headers
        sock.sendall(request_head("/predict", "image/png", len(DIGIT)) + DIGIT)
        status, _, body = read_response(sock)
    assert status == 200 and json.loads(body)["digit"] == 1


def test_a_body_within_the_limit_still_works_on_the_same_server(limited_server: LiveServer) -> None:
    response = httpx.post(f"{limited_server.base_url}/predict", content=DIGIT, headers={"content-type": "image/png"})
    assert response.status_code == 200 and response.json()["digit"] == 1


# -- SIGHUP: reload without a restart ----------------------------------------------------------


def test_sighup_reloads_the_store_and_a_broken_version_keeps_the_old_one(copy_store: Callable[..., Path]) -> None:
    store = copy_store("cnn", "mlp")
    with live_server(store) as server, httpx.Client(base_url=server.base_url, timeout=10) as client:
        def mlp_version() -> int:
            version: int = client.post("/predict?model=mlp", content=DIGIT, headers={"content-type": "image/png"}
                                       ).json()["version"]
            return version

        def reloads() -> str:
            return "\n".join(line for line in client.get("/metrics").text.splitlines()
                             if line.startswith("digits_store_reloads_total{"))

        first = mlp_version()
        second = publish_copy(store, "mlp")
        server.signal(signal.SIGHUP)
        wait_for(lambda: mlp_version() == second, what="the new version to serve")
        assert reloads() == 'digits_store_reloads_total{outcome="succeeded",trigger="signal"} 1.0'

        broken = publish_copy(store, "mlp", broken=True)
        server.signal(signal.SIGHUP)
        wait_for(lambda: "2.0" in reloads(), what="the second reload")
        assert mlp_version() == second  # v3 failed to load; v2 keeps serving
        assert client.get("/health/ready").json()["status"] == "ready"
        assert server.process.poll() is None  # SIGHUP's default action would have ended the process
        output = server.output()
    assert first < second < broken
    assert "SIGHUP received: reloading the model store" in output
    assert f"model mlp v{broken} failed" in output and f"v{second} keeps serving" in output


# -- SIGTERM: graceful shutdown ----------------------------------------------------------------


def test_sigterm_lets_requests_in_flight_finish_and_refuses_new_ones(store: Path) -> None:
    with live_server(store) as server:
        # Three requests in flight: headers and half of each body sent, the rest still to come.
        in_flight = [server.connect() for _ in range(3)]
        for sock in in_flight:
            sock.sendall(request_head("/predict?model=cnn", "image/png", len(DIGIT)) + DIGIT[: len(DIGIT) // 2])
        idle = server.connect()  # a keep-alive connection between two requests
        idle.sendall(b"GET /health/live HTTP/1.1\r\nHost: test\r\n\r\n")
        assert read_response(idle)[0] == 200
        time.sleep(0.3)  # let the server parse the three heads

        server.signal(signal.SIGTERM)

        wait_for(lambda: refused(server), timeout=10, what="the listening socket to close")
        idle.settimeout(10)
        assert idle.recv(1) == b""  # the idle connection is closed cleanly (FIN, no half answer)
        idle.close()

        answers = []
        for sock in in_flight:
            sock.sendall(DIGIT[len(DIGIT) // 2 :])
            answers.append(read_response(sock))
            sock.close()
        code, output = server.wait_exit(timeout=30)
    for status, headers, body in answers:
        assert status == 200 and json.loads(body)["digit"] == 1
        assert headers["connection"] == "close"  # the server tells the client not to reuse it
    # uvicorn re-raises the SIGTERM it handled once it has shut down, so the exit is "by SIGTERM".
    assert code in (0, -signal.SIGTERM), output
    assert "Traceback" not in output and "ERROR" not in output, output
    assert "Waiting for application shutdown." in output and "Application shutdown complete." in output


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_answers_requests_sent_on_idle_keep_alive_connections(store: Path, workers: str) -> None:
    """A client that sends its next request just as the server starts to stop gets an answer, not a reset."""
    with live_server(store, workers=workers) as server:
        wait_for(lambda: httpx.get(f"{server.base_url}/health/ready", timeout=2).status_code == 200,
                 what="every worker to be ready")
        idle = [server.connect() for _ in range(8)]
        for sock in idle:
            sock.sendall(request_head("/predict?model=cnn", "image/png", len(DIGIT)) + DIGIT)
            assert read_response(sock)[0] == 200
        server.signal(signal.SIGTERM)
        if workers == "1":
            wait_for(lambda: refused(server), timeout=10, what="the shutdown to begin")
        else:
            time.sleep(0.6)  # the supervisor passes the signal on within 0.5 s
        for sock in idle:  # the clients send their next requests as the server starts to stop
            sock.sendall(request_head("/predict?model=cnn", "image/png", len(DIGIT)) + DIGIT)
        answers = [read_response(sock) for sock in idle]  # a reset would raise here
        for sock in idle:
            assert sock.recv(1) == b""  # then a clean close (FIN), within the drain
            sock.close()
        code, output = server.wait_exit(timeout=30)
    assert [(status, json.loads(body)["digit"]) for status, _, body in answers] == [(200, 1)] * 8
    if workers == "1":  # sent once the drain had begun: answered, with notice that it closes
        assert all(headers["connection"] == "close" for _, headers, _ in answers)
    assert code == 0, output  # the same status whatever the worker count
    assert "Traceback" not in output, output


def test_a_stalled_upload_gets_408_and_does_not_hold_up_shutdown(store: Path) -> None:
    with live_server(store, body_idle_timeout="2") as server:
        stalled = server.connect()
        stalled.sendall(request_head("/predict", "image/png", len(DIGIT)) + DIGIT[:10])
        time.sleep(0.3)
        server.signal(signal.SIGTERM)
        start = time.monotonic()
        status, headers, body = read_response(stalled, timeout=10)
        code, output = server.wait_exit(timeout=30)
    assert status == 408 and headers["content-type"] == "application/json" and "error" in json.loads(body)
    assert time.monotonic() - start < 5
    assert code == 0, output


def test_sighup_with_two_workers_reloads_both_and_drops_no_request(store: Path) -> None:
    with live_server(store, workers="2", log_level="info") as server:
        wait_for(lambda: httpx.get(f"{server.base_url}/health/ready", timeout=2).status_code == 200,
                 what="every worker to be ready")
        failures: list[str] = []
        answered = [0]
        stop = threading.Event()

        def keep_alive_client() -> None:
            with httpx.Client(base_url=server.base_url, timeout=10) as client:
                while not stop.is_set():
                    try:
                        response = client.post("/predict?model=mlp", content=DIGIT,
                                               headers={"content-type": "image/png"})
                        if response.status_code != 200:
                            failures.append(f"status {response.status_code}")
                        answered[0] += 1
                    except httpx.TransportError as exc:
                        failures.append(repr(exc))

        clients = [threading.Thread(target=keep_alive_client) for _ in range(4)]
        for thread in clients:
            thread.start()
        for _ in range(3):
            time.sleep(1.0)
            server.signal(signal.SIGHUP)
        time.sleep(1.5)
        stop.set()
        for thread in clients:
            thread.join(timeout=30)
        output = server.output()
    assert failures == [], failures[:5]
    assert answered[0] > 50
    assert output.count("SIGHUP received: reloading the model store") == 6  # 3 signals x 2 workers
    assert "Child process" not in output and "Started server process" in output
    assert output.count("Started server process") == 2  # no worker was replaced


def test_a_client_leaving_mid_body_is_counted_499_and_logged_once(store: Path) -> None:
    with live_server(store, log_level="info") as server:
        for _ in range(3):
            with server.connect() as sock:
                sock.sendall(request_head("/predict", "image/png", 100_000) + DIGIT)
                time.sleep(0.2)
        time.sleep(0.5)
        metrics = httpx.get(f"{server.base_url}/metrics", timeout=5).text
        output = server.output()
    counted = [line for line in metrics.splitlines() if line.startswith("digits_http_requests_total{")
               and 'route="/predict"' in line]
    assert any('status="499"' in line and line.endswith(" 3.0") for line in counted), counted
    assert not any('status="500"' in line for line in counted), counted
    assert "Traceback" not in output and "ERROR" not in output, output
    assert output.count("the client closed the connection before its request body ended") == 3
