"""Soak under attack: the ordinary request mix, while every attack of issues 9 and 22 runs at once.

    .venv/bin/python -m bench.attack --store model_store                 # 15 s warm-up, 90 s attack, 20 s after
    .venv/bin/python -m bench.attack --store model_store --attack 20 --warmup 5 --cooldown 5   # a smoke

It starts `python -m service` with its default limits on a free loopback port and runs, together:

- the soak's mix (`bench.soak`: valid uploads, JSON pixels, listings and ordinary invalid requests)
  on `--concurrency` keep-alive connections, each answer checked as the soak checks it;
- during the attack phase, one task per attack, each looping: progressive-JPEG scan bombs, PNGs of
  empty chunks, JPEGs of comment markers (4 MB each), 128 MiB headers sent in 1 MiB writes, a few
  thousand silent sockets kept open, headers sent a byte at a time, invented HTTP methods and a
  flood of /metrics scrapes, bodies shorter than their Content-Length, clients leaving mid-body,
  64 concurrent 4 MB photo uploads, and a SIGHUP every 10 s;
- issue 22's (`--only "22:"` runs them alone): requests of sixteen 4096x4096 lossless WebPs, sent
  whole and abandoned; `/v2` bodies of a million empty BYTES elements and of 150,000 nested `[""]`;
  8 MiB gRPC `ModelInfer` calls, 24 at once; a 128 MiB header pipelined behind a slow `/predict`;
  uploads that send a byte every 9 s; `/v2` requests with a 7 MiB `id` whose answers are never read;
  100 concurrent bodies of exactly 1 MiB; EXIF bombs; Unicode-digit versions; foreign `Host`s and
  cross-site form posts;
- a health probe (`GET /health/live` on a fresh connection every 200 ms), as a kubelet sends it, on
  the management port (`DIGITS_MANAGEMENT_PORT`, what the manifests probe) and, for comparison, on
  the data port.

It reports each attack's outcomes, the probes' latency before, during and after the attack (the
target: p99 < 100 ms on the management port during it, on a 2-core machine), the mix's statuses and
latency, the server's own 5xx count (HTTP, and gRPC's INTERNAL), and its resident memory: before, at
its peak, and after the cool-down. Results go to
`bench/results/attack.json` and `attack.md`; the exit status is 0 when nothing answered 5xx, no
valid request was dropped and the memory came back within `--max-rss-growth` of where it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import bombs
from bench.payloads import load_digits, realistic_uploads
from bench.soak import (
    REQUEST_TIMEOUT_S,
    RESULTS,
    Tally,
    build_mix,
    percentiles,
    raw_request,
    read_response,
    record_expected,
    server_5xx,
    worker,
)
from bench.toolkit import free_port, service_process, tree_rss_bytes

HOST = "127.0.0.1"
UPLOAD_LIMIT = 8 * 1024 * 1024  # the service's default


class Outcomes:
    """What one attack got back: statuses, resets, closes and timeouts, counted."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.latencies: list[float] = []

    def add(self, outcome: str, seconds: float | None = None) -> None:
        self.counts[outcome] += 1
        if seconds is not None:
            self.latencies.append(seconds)


async def _request(request: bytes, outcomes: Outcomes, timeout: float = REQUEST_TIMEOUT_S) -> None:
    """Send one whole request on a fresh connection and count what comes back."""
    start = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, PORT[0]), timeout)
    except (OSError, TimeoutError):
        outcomes.add("connect failed")
        return
    try:
        writer.write(request)
        await writer.drain()
        status, _, _ = await asyncio.wait_for(read_response(reader), timeout)
        outcomes.add(str(status), time.monotonic() - start)
    except TimeoutError:
        outcomes.add("timeout")
    except (ConnectionError, OSError):
        outcomes.add("reset")
    except Exception as exc:  # Dropped: closed without an answer
        outcomes.add(type(exc).__name__)
    finally:
        writer.close()


PORT = [0]  # set by run(); module state keeps the attack functions' signatures small
GRPC_PORT = [0]
MANAGEMENT_PORT = [0]


def post(body: bytes, content_type: str = "application/octet-stream", target: str = "/predict") -> bytes:
    return raw_request("POST", target, body, content_type)


async def repeat(stop: asyncio.Event, outcomes: Outcomes, request: bytes, concurrency: int = 1,
                 pause: float = 0.0) -> None:
    async def loop() -> None:
        while not stop.is_set():
            await _request(request, outcomes)
            if pause:
                await asyncio.sleep(pause)

    await asyncio.gather(*(loop() for _ in range(concurrency)))


async def big_headers(stop: asyncio.Event, outcomes: Outcomes) -> None:
    """A 128 MiB header in 1 MiB writes; the server should answer 431 after the first."""
    chunk = b"a" * (1 << 20)
    while not stop.is_set():
        start = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(HOST, PORT[0])
        except OSError:
            outcomes.add("connect failed")
            continue
        try:
            writer.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ")
            for _ in range(128):
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), 10)
            outcomes.add("all 128 MiB accepted")
        except (ConnectionError, OSError, TimeoutError):
            pass
        try:
            status, _, _ = await asyncio.wait_for(read_response(reader), 5)
            outcomes.add(str(status), time.monotonic() - start)
        except Exception:
            outcomes.add("closed (reset before the 431 was read)", time.monotonic() - start)
        writer.close()


async def connect_or_pause(outcomes: Outcomes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """A new connection, or None (counted, after a pause) when the server did not take one."""
    try:
        return await asyncio.open_connection(HOST, PORT[0])
    except OSError:
        outcomes.add("connect failed")
        await asyncio.sleep(1.0)
        return None


async def silent_sockets(stop: asyncio.Event, outcomes: Outcomes, count: int = 3000) -> None:
    """Keep `count` connections open that never send a byte; count how the server ends them."""
    async def hold() -> None:
        while not stop.is_set():
            connection = await connect_or_pause(outcomes)
            if connection is None:
                continue
            reader, writer = connection
            start = time.monotonic()
            try:
                data = await reader.read(65536)
                what = "closed by the server" if not data else f"answered {data.split(b' ', 2)[1].decode()}"
                outcomes.add(what, time.monotonic() - start)
            except (ConnectionError, OSError):
                outcomes.add("reset", time.monotonic() - start)
            writer.close()

    tasks = [asyncio.ensure_future(hold()) for _ in range(count)]
    await stop.wait()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def slow_headers(stop: asyncio.Event, outcomes: Outcomes, count: int = 200) -> None:
    """Headers sent a byte every 2 s: each should end with 408 at the header timeout."""
    async def crawl() -> None:
        while not stop.is_set():
            connection = await connect_or_pause(outcomes)
            if connection is None:
                continue
            reader, writer = connection
            start = time.monotonic()
            try:
                for byte in b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 1000:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    try:
                        data = await asyncio.wait_for(reader.read(65536), 2.0)
                    except TimeoutError:
                        continue
                    outcomes.add(data.split(b" ", 2)[1].decode() if data else "closed", time.monotonic() - start)
                    break
            except (ConnectionError, OSError):
                outcomes.add("reset", time.monotonic() - start)
            writer.close()

    await asyncio.gather(*(crawl() for _ in range(count)))


async def short_bodies(stop: asyncio.Event, outcomes: Outcomes, digit: bytes, concurrency: int = 20) -> None:
    head = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            f"Content-Length: {len(digit) + 100}\r\n\r\n").encode()
    await repeat(stop, outcomes, head + digit, concurrency)


async def disconnects(stop: asyncio.Event, outcomes: Outcomes, photo: bytes) -> None:
    """Half a photo, then gone."""
    head = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {len(photo)}\r\n\r\n").encode()
    while not stop.is_set():
        try:
            _, writer = await asyncio.open_connection(HOST, PORT[0])
            writer.write(head + photo[: len(photo) // 2])
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.transport.abort()
            outcomes.add("sent half and left")
        except OSError:
            outcomes.add("connect failed")
        await asyncio.sleep(0.02)


async def odd_methods_and_scrapes(stop: asyncio.Event, outcomes: Outcomes) -> None:
    rng = random.Random(7)  # noqa: S311 (a load pattern, not a secret)
    while not stop.is_set():
        method = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(8))
        await _request(raw_request(method, "/predict"), outcomes)
        await _request(raw_request("GET", "/metrics"), outcomes)


async def sighups(stop: asyncio.Event, outcomes: Outcomes, pid: int) -> None:
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 10.0)
        except TimeoutError:
            os.kill(pid, signal.SIGHUP)
            outcomes.add("SIGHUP sent")


# -- issue 22 -------------------------------------------------------------------------------------


def lossless_webp(side: int = 4096) -> bytes:
    """A digit-like bar on white, lossless: ~1 KB that decodes to `side` x `side` pixels."""
    import io

    import numpy as np
    from PIL import Image

    plane = np.full((side, side), 255, np.uint8)
    plane[side // 4 : 3 * side // 4, side // 2 - side // 32 : side // 2 + side // 32] = 0
    buffer = io.BytesIO()
    Image.fromarray(plane).save(buffer, "WEBP", lossless=True)
    return buffer.getvalue()


def multipart_body(files: Sequence[bytes], content_type: str = "image/webp") -> tuple[bytes, str]:
    boundary = "digitsattackboundary"
    parts = [(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d{i}\"\r\n"
              f"Content-Type: {content_type}\r\n\r\n").encode() + data + b"\r\n" for i, data in enumerate(files)]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def send_and_leave(stop: asyncio.Event, outcomes: Outcomes, request: bytes, concurrency: int,
                         linger: float = 0.01) -> None:
    """Send a whole request, wait `linger` seconds, close without reading: work nobody waits for."""
    async def loop() -> None:
        while not stop.is_set():
            try:
                _, writer = await asyncio.open_connection(HOST, PORT[0])
                writer.write(request)
                await writer.drain()
                await asyncio.sleep(linger)
                writer.transport.abort()
                outcomes.add("sent and left")
            except OSError:
                outcomes.add("connect failed")
                await asyncio.sleep(0.5)

    await asyncio.gather(*(loop() for _ in range(concurrency)))


def v2_binary(inputs: list[dict[str, Any]], data: bytes, model: str = "cnn") -> bytes:
    header = json.dumps({"inputs": inputs}).encode()
    head = (f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
            f"Inference-Header-Content-Length: {len(header)}\r\nContent-Length: {len(header) + len(data)}\r\n\r\n")
    return head.encode() + header + data


def v2_many_bytes_elements(count: int = 1_000_000) -> bytes:
    """`/v2` binary data of `count` empty BYTES elements (4 MB at a million), declared as such."""
    return v2_binary([{"name": "image_file", "datatype": "BYTES", "shape": [count],
                       "parameters": {"binary_data_size": 4 * count}}], b"\x00\x00\x00\x00" * count)


def v2_nested_json(arrays: int = 150_000) -> bytes:
    body = (b'{"inputs":[{"name":"image_file","datatype":"BYTES","shape":[1],"data":['
            + b",".join([b'[""]'] * arrays) + b"]}]}")
    return post(body, "application/json", "/v2/models/cnn/infer")


def v2_long_id(size: int = 7 * 1024 * 1024) -> bytes:
    body = json.dumps({"id": "x" * size, "inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 28, 28, 1],
                                                      "data": [0.5] * 784}]}).encode()
    return post(body, "application/json", "/v2/models/cnn/infer")


async def slow_readers(stop: asyncio.Event, outcomes: Outcomes, request: bytes, count: int = 60) -> None:
    """Send a request whose answer would be large, never read it, hold the connection until closed."""
    async def hold() -> None:
        while not stop.is_set():
            connection = await connect_or_pause(outcomes)
            if connection is None:
                continue
            reader, writer = connection
            writer.transport.set_write_buffer_limits(high=1 << 30)
            start = time.monotonic()
            writer.write(request)
            try:
                await asyncio.wait_for(writer.drain(), 30)
                # Read nothing for 40 s (the server's send timeout is 30 s) or until the attack ends.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 40)
                data = await asyncio.wait_for(reader.read(65536), 5)
                outcomes.add(f"answered {data.split(b' ', 2)[1].decode()}" if data else "closed by the server",
                             time.monotonic() - start)
            except (ConnectionError, OSError, TimeoutError, IndexError):
                outcomes.add("reset or timeout", time.monotonic() - start)
            writer.close()

    await asyncio.gather(*(hold() for _ in range(count)))


async def slow_senders(stop: asyncio.Event, outcomes: Outcomes, count: int = 4) -> None:
    """Declare a 2 MiB upload and send a byte every 9 s: the upload slots they held kept photos waiting."""
    async def crawl() -> None:
        while not stop.is_set():
            connection = await connect_or_pause(outcomes)
            if connection is None:
                continue
            reader, writer = connection
            start = time.monotonic()
            writer.write(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
                         b"Content-Length: 2097152\r\n\r\n")
            try:
                while not stop.is_set():
                    writer.write(b"\xff")
                    await writer.drain()
                    try:
                        data = await asyncio.wait_for(reader.read(65536), 9.0)
                    except TimeoutError:
                        continue
                    outcomes.add(data.split(b" ", 2)[1].decode() if data else "closed", time.monotonic() - start)
                    break
            except (ConnectionError, OSError, IndexError):
                outcomes.add("reset", time.monotonic() - start)
            writer.close()

    await asyncio.gather(*(crawl() for _ in range(count)))


async def pipelined_big_header(stop: asyncio.Event, outcomes: Outcomes, slow: bytes) -> None:
    """A slow `/predict`, then on the same connection a GET whose header is 128 MiB in 1 MiB writes."""
    chunk = b"a" * (1 << 20)
    while not stop.is_set():
        start = time.monotonic()
        connection = await connect_or_pause(outcomes)
        if connection is None:
            continue
        _, writer = connection
        sent = 0
        try:
            writer.write(slow + b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
            for _ in range(128):
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), 10)
                sent += 1
            outcomes.add("all 128 MiB accepted")
        except (ConnectionError, OSError, TimeoutError):
            outcomes.add(f"closed after {sent} MiB" if sent < 4 else "closed after 4+ MiB", time.monotonic() - start)
        writer.close()
        await asyncio.sleep(0.2)


async def grpc_large_calls(stop: asyncio.Event, outcomes: Outcomes, concurrency: int = 24) -> None:
    """8 MiB `ModelInfer` messages (raw FP32 just under the limit), `concurrency` at once."""
    import grpc
    from grpc import aio

    from service.inference_protocol.proto import open_inference_grpc_pb2 as pb

    images = (UPLOAD_LIMIT - 4096) // (784 * 4)
    message = pb.ModelInferRequest(model_name="cnn", raw_input_contents=[b"\x00" * (images * 784 * 4)])
    message.inputs.add(name="image", datatype="FP32", shape=[images, 28, 28, 1])
    payload = message.SerializeToString()
    options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
    async with aio.insecure_channel(f"{HOST}:{GRPC_PORT[0]}", options=options) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                   request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw)

        async def loop() -> None:
            while not stop.is_set():
                start = time.monotonic()
                try:
                    await call(payload, timeout=REQUEST_TIMEOUT_S)
                    outcomes.add("OK", time.monotonic() - start)
                except aio.AioRpcError as exc:
                    outcomes.add(exc.code().name, time.monotonic() - start)
                    if exc.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE):
                        await asyncio.sleep(0.1)

        await asyncio.gather(*(loop() for _ in range(concurrency)))


def exif_bomb_png(tags: int = 20_000) -> bytes:
    import io
    import struct

    import numpy as np
    from PIL import Image

    entries = [struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0)]
    entries += [struct.pack("<HHIHH", 0x9000 + i % 0x6000, 3, 1, 1, 0) for i in range(tags - 1)]
    block = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", tags) + b"".join(entries) + struct.pack("<I", 0)
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64), 255, np.uint8)).save(buffer, "PNG", exif=block)
    return buffer.getvalue()


def origin_requests(digit: bytes) -> list[bytes]:
    """Requests a DNS-rebinding page or a cross-site form would send, and Unicode-digit versions."""
    body, content_type = multipart_body([digit], "image/png")
    form = (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://attacker.example\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    return [
        b"GET /models HTTP/1.1\r\nHost: attacker.example\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: attacker.example\r\n\r\n",
        form,
        b"GET /v2/models/cnn/versions/%C2%B2 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET /v2/models/cnn/versions/%C2%B2/ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    ]


async def cycle(stop: asyncio.Event, outcomes: Outcomes, requests: Sequence[bytes], pause: float = 0.05) -> None:
    while not stop.is_set():
        for request in requests:
            await _request(request, outcomes)
        await asyncio.sleep(pause)


def server_not_ready(host: str, port: int) -> int:
    """`/health/ready` answers of 503 the server counted (saturation: its documented answer)."""
    import urllib.request

    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:  # loopback
        text = response.read().decode()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith("digits_http_requests_total{") and 'route="/health/ready"' in line
               and 'status="503"' in line)


def metric_sum(host: str, port: int, name: str) -> float:
    """The sum of a metric's samples on the server's /metrics (e.g. requests still in flight)."""
    import urllib.request

    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:  # loopback
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith(name + "_"))


def grpc_5xx(host: str, port: int) -> int:
    """gRPC calls the server answered INTERNAL (its `digits_grpc_requests` counter)."""
    import urllib.request

    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as response:  # loopback
        text = response.read().decode()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith("digits_grpc_requests_total{") and 'code="INTERNAL"' in line)


def probe_process(port: int, until: float, results: Any) -> None:
    """Probe `GET /health/live` on a fresh connection every 200 ms until `until` (`time.monotonic()`,
    one clock for every process on Linux); send back (when, latency or None for a failure, status).

    A process of its own: in the attackers' event loop, its timings would include the attackers'
    own work (opening thousands of sockets, say) and not only the server's.
    """
    import socket as sockets

    request = raw_request("GET", "/health/live")
    samples: list[tuple[float, float | None, str]] = []
    while (now := time.monotonic()) < until:
        try:
            with sockets.create_connection((HOST, port), timeout=5) as sock:
                sock.sendall(request)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(4096)
                    if not chunk:
                        raise ConnectionError("closed")
                    data += chunk
            status = data.split(b" ", 2)[1].decode()
            elapsed = time.monotonic() - now
            samples.append((now, elapsed if status == "200" else None, status))
        except Exception as exc:
            samples.append((now, None, type(exc).__name__))
        time.sleep(max(0.0, 0.2 - (time.monotonic() - now)))
    results.send(samples)


async def run(args: argparse.Namespace, pid: int) -> dict[str, Any]:
    mix = await record_expected(HOST, PORT[0], build_mix(UPLOAD_LIMIT))
    digits = load_digits(16)
    photo = realistic_uploads("photo_12mp", digits, count=1)[0].data
    canvas_png = realistic_uploads("canvas", digits, count=1)[0].data
    webps, webp_type = multipart_body([lossless_webp()] * 16)
    slow_predict = post(photo, "image/jpeg")

    origin = time.monotonic()
    attack_start = origin + args.warmup
    attack_end = attack_start + args.attack
    stop_at = attack_end + args.cooldown

    def phase() -> str:
        now = time.monotonic()
        return "before" if now < attack_start else "during" if now < attack_end else "after"

    tally = Tally()
    probe_ports = {"management": MANAGEMENT_PORT[0], "data": PORT[0]}
    probe_latencies: dict[str, dict[str, list[float]]] = {
        port: {"before": [], "during": [], "after": []} for port in probe_ports}
    probe_failures: dict[str, Counter[str]] = {port: Counter() for port in probe_ports}
    rss: list[tuple[float, str, int]] = []

    async def sample() -> None:
        while time.monotonic() < stop_at:
            rss.append((time.monotonic() - origin, phase(), tree_rss_bytes(pid)))
            await asyncio.sleep(1.0)

    stop = asyncio.Event()
    attacks_by_name: dict[str, Callable[[Outcomes], Awaitable[None]]] = {
        "progressive-JPEG scan bomb, 150 KB (x4)":
            lambda o: repeat(stop, o, post(bombs.progressive_scan_bomb(size=150_000)), 4),
        "PNG of 340,000 empty chunks, 4 MB (x2)": lambda o: repeat(stop, o, post(bombs.png_chunk_bomb(340_000)), 2),
        "JPEG of 1,000,000 comment markers, 4 MB (x2)":
            lambda o: repeat(stop, o, post(bombs.jpeg_comment_bomb(1_000_000)), 2),
        "128 MiB header in 1 MiB writes": lambda o: big_headers(stop, o),
        f"{args.silent:,} silent sockets": lambda o: silent_sockets(stop, o, args.silent),
        "headers a byte every 2 s (x200)": lambda o: slow_headers(stop, o),
        "invented methods + /metrics flood": lambda o: odd_methods_and_scrapes(stop, o),
        "body shorter than Content-Length (x20)": lambda o: short_bodies(stop, o, canvas_png),
        "client leaves mid-body (4 MB photo)": lambda o: disconnects(stop, o, photo),
        "64 concurrent 4 MB photo uploads": lambda o: repeat(stop, o, post(photo, "image/jpeg"), 64),
        "SIGHUP every 10 s": lambda o: sighups(stop, o, pid),
        "22: sixteen 4096x4096 lossless WebPs per request (x2)": lambda o: repeat(stop, o, post(webps, webp_type), 2),
        "22: the same, sent and abandoned after 10 ms (x4)":
            lambda o: send_and_leave(stop, o, post(webps, webp_type), 4),
        "22: /v2 with 1,000,000 empty BYTES elements, 4 MB (x4)": lambda o: repeat(stop, o, v2_many_bytes_elements(), 4),
        "22: /v2 JSON of 150,000 nested [\"\"] (x4)": lambda o: repeat(stop, o, v2_nested_json(), 4),
        "22: gRPC ModelInfer of 8 MiB (x24)": lambda o: grpc_large_calls(stop, o, 24),
        "22: 128 MiB header pipelined behind a slow /predict": lambda o: pipelined_big_header(stop, o, slow_predict),
        "22: 2 MiB uploads sent a byte every 9 s (x4)": lambda o: slow_senders(stop, o, 4),
        "22: /v2 with a 7 MiB id, answer never read (x60)": lambda o: slow_readers(stop, o, v2_long_id(), 60),
        "22: bodies of exactly 1 MiB (x100)":
            lambda o: repeat(stop, o, post(canvas_png + b"\x00" * (1024 * 1024 - len(canvas_png)), "image/png"), 100),
        "22: PNG with 20,000 EXIF tags (x2)": lambda o: repeat(stop, o, post(exif_bomb_png(), "image/png"), 2),
        "22: foreign Host, cross-site form, Unicode versions": lambda o: cycle(stop, o, origin_requests(canvas_png)),
    }
    if args.only:
        attacks_by_name = {k: v for k, v in attacks_by_name.items() if args.only.lower() in k.lower()}
    for skipped in args.skip or ():
        attacks_by_name = {k: v for k, v in attacks_by_name.items() if skipped.lower() not in k.lower()}
    outcomes = {name: Outcomes() for name in attacks_by_name}

    async def attacks() -> None:
        await asyncio.sleep(args.warmup)
        running = [make(outcomes[name]) for name, make in attacks_by_name.items()]
        tasks = [asyncio.ensure_future(a) for a in running]
        await asyncio.sleep(args.attack)
        stop.set()
        await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_S + 15)

    import multiprocessing

    probers = {}
    for which, port in probe_ports.items():
        receiving, sending = multiprocessing.Pipe(duplex=False)
        prober = multiprocessing.get_context("spawn").Process(
            target=probe_process, args=(port, stop_at, sending), daemon=True)
        prober.start()
        probers[which] = (prober, receiving)
    await asyncio.gather(
        sample(),
        attacks(),
        *(worker(args.seed + i, HOST, PORT[0], mix, tally, origin, stop_at) for i in range(args.concurrency)),
    )
    rss.append((time.monotonic() - origin, "end", tree_rss_bytes(pid)))
    for which, (prober, receiving) in probers.items():
        probed = await asyncio.get_running_loop().run_in_executor(None, receiving.recv)
        prober.join(timeout=10)
        for at, latency, what in probed:
            name = "before" if at < attack_start else "during" if at < attack_end else "after"
            if latency is None:
                probe_failures[which][f"{name}: {what}"] += 1
            else:
                probe_latencies[which][name].append(latency)
    not_ready_counted = server_not_ready(HOST, MANAGEMENT_PORT[0])
    in_flight_after = metric_sum(HOST, MANAGEMENT_PORT[0], "digits_http_requests_in_flight")
    counted_5xx = server_5xx(HOST, PORT[0]) - not_ready_counted + grpc_5xx(HOST, MANAGEMENT_PORT[0])

    def rss_of(name: str) -> list[int]:
        return [value for _, p, value in rss if p == name]

    before = sorted(rss_of("before")[-5:])
    after = rss_of("after")[-5:] + rss_of("end")
    rss_before = before[len(before) // 2] if before else rss[0][2]
    rss_after = sorted(after)[len(after) // 2]
    growth = (rss_after - rss_before) / rss_before
    # Readiness answering 503 while the worker is saturated is its documented answer (issue 22), not a
    # failure: counted apart.
    not_ready = tally.statuses["ready"].get(503, 0)
    five_xx = sum(v for s in tally.statuses.values() for k, v in s.items() if k >= 500) - not_ready
    five_xx += sum(v for o in outcomes.values() for k, v in o.counts.items() if k.startswith("5"))
    valid_dropped = sum(v for k, v in tally.dropped.items() if any(m.name == k and m.valid for m in mix))
    during = probe_latencies["management"]["during"]
    checks = {
        "no 5xx (clients)": five_xx == 0,
        "no 5xx (server's own counter, HTTP and gRPC)": counted_5xx == 0,
        "no valid request of the mix dropped": valid_dropped == 0,
        "health probe on the management port answered every time": not probe_failures["management"],
        "health probe p99 < 100 ms on the management port during the attack (target)": bool(during)
        and float(percentiles(during)["p99_ms"] or 1e9) < 100.0,
        f"memory back within {args.max_rss_growth:.0%} after the attack": growth < args.max_rss_growth,
    }
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": {"warmup_s": args.warmup, "attack_s": args.attack, "cooldown_s": args.cooldown,
                     "concurrency": args.concurrency, "silent_sockets": args.silent, "seed": args.seed},
        "passed": all(v for k, v in checks.items() if "(target)" not in k),
        "checks": checks,
        "probe": {which: {name: {"probes": len(values), **percentiles(values)} for name, values in phases.items()}
                  for which, phases in probe_latencies.items()},
        "probe_failures": {which: dict(failures) for which, failures in probe_failures.items()},
        "attacks": {name: {"outcomes": dict(o.counts.most_common()), **percentiles(o.latencies)}
                    for name, o in outcomes.items()},
        "mix": {
            "requests": sum(sum(s.values()) for s in tally.statuses.values()),
            "unexpected_status": {k.name: {str(s): n for s, n in tally.statuses[k.name].items() if s != k.status}
                                  for k in mix if any(s != k.status for s in tally.statuses[k.name])},
            "dropped": dict(tally.dropped),
            "latency_valid": percentiles([v for k in mix if k.valid for v in tally.latencies[k.name]]),
        },
        "server_counted_5xx": counted_5xx,
        "readiness_not_ready": {"mix": not_ready, "server_counted": not_ready_counted},
        "http_requests_in_flight_at_the_end": in_flight_after,
        "rss_mib": {"before": round(rss_before / 2**20, 1), "peak": round(max(v for _, _, v in rss) / 2**20, 1),
                    "after": round(rss_after / 2**20, 1), "growth": round(growth, 4),
                    "timeline": [(round(t), p, round(v / 2**20, 1)) for t, p, v in rss[::3]]},
    }


def markdown(report: dict[str, Any], command: str) -> str:
    s = report["settings"]
    lines = [
        f"# Soak under attack: {'PASS' if report['passed'] else 'FAIL'}",
        "",
        f"`{command}` on {report['when']}: {s['warmup_s']} s of the soak's mix at concurrency {s['concurrency']}, "
        f"then {s['attack_s']} s with every attack running as well, then {s['cooldown_s']} s of the mix alone; "
        f"`python -m service` with its default limits (gRPC and the management port on), one worker, {report['machine']['cpus']} CPUs shared by the "
        "server, the attackers and the mix's clients.",
        "",
        "| check | result |", "| --- | --- |",
        *(f"| {name} | {'pass' if ok else '**FAIL**'} |" for name, ok in report["checks"].items()),
        "",
        "Health probes (`GET /health/live`, fresh connection, every 200 ms), on the management port (what "
        "the manifests probe) and on the data port:",
        "",
        "| port | phase | probes | p50 ms | p90 ms | p99 ms | max ms |", "| --- | --- | --- | --- | --- | --- | --- |",
        *(f"| {which} | {name} | {p['probes']} | {p['p50_ms']} | {p['p90_ms']} | {p['p99_ms']} | {p['max_ms']} |"
          for which, phases in report["probe"].items() for name, p in phases.items()),
        "",
        f"Probe failures: {report['probe_failures'] or 'none'}.",
        "",
        "| attack | outcomes | p50 ms | p99 ms |", "| --- | --- | --- | --- |",
        *(f"| {name} | {', '.join(f'{k}: {v:,}' for k, v in a['outcomes'].items())} | {a['p50_ms']} | {a['p99_ms']} |"
          for name, a in report["attacks"].items()),
        "",
        f"The mix: {report['mix']['requests']:,} requests; unexpected statuses {report['mix']['unexpected_status'] or 'none'}; "
        f"dropped {report['mix']['dropped'] or 'none'}; valid requests p50 {report['mix']['latency_valid']['p50_ms']} ms, "
        f"p99 {report['mix']['latency_valid']['p99_ms']} ms. The server counted {report['server_counted_5xx']} 5xx "
        f"besides readiness's 503 while saturated ({report['readiness_not_ready']['mix']} of the mix's readiness "
        "checks were answered 503, the documented answer of a saturated worker).",
        "",
        f"HTTP requests still in flight at the end: {report['http_requests_in_flight_at_the_end']:g}.",
        "",
        f"Resident memory: {report['rss_mib']['before']} MiB before, peak {report['rss_mib']['peak']} MiB, "
        f"{report['rss_mib']['after']} MiB after the cool-down ({report['rss_mib']['growth']:+.1%}).",
        "",
        "Timeline (s, phase, MiB): " + ", ".join(f"{t} {p} {m}" for t, p, m in report["rss_mib"]["timeline"]),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.attack", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=Path("model_store"), help="model store to serve")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds of the mix alone first (15)")
    parser.add_argument("--attack", type=float, default=90.0, help="seconds of attack (90)")
    parser.add_argument("--cooldown", type=float, default=20.0, help="seconds of the mix alone after (20)")
    parser.add_argument("--concurrency", type=int, default=16, help="connections of the ordinary mix (16)")
    parser.add_argument("--silent", type=int, default=3000, help="silent sockets held open (3000)")
    parser.add_argument("--max-rss-growth", type=float, default=0.15, help="allowed RSS growth after the attack")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", help="run only the attacks whose name contains this text (to study one)")
    parser.add_argument("--skip", action="append", help="leave out the attacks whose name contains this (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for attack.json and attack.md")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    command = "python -m bench.attack " + " ".join(argv if argv is not None else sys.argv[1:])
    GRPC_PORT[0], MANAGEMENT_PORT[0] = free_port(), free_port()
    server = service_process(args.store, workers="1", max_upload_bytes=str(UPLOAD_LIMIT), log_level="warning",
                             stop_grace_s=60.0, grpc_port=str(GRPC_PORT[0]), management_port=str(MANAGEMENT_PORT[0]),
                             allowed_hosts="localhost")  # as deploy/ sets it; IP-literal hosts always pass
    PORT[0] = server.port
    try:
        with server:
            report = asyncio.run(run(args, server.pid))
        tail = server.output()[-4000:]
    finally:
        server.close()
    report["server_log_tail"] = tail
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "attack.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "attack.md").write_text(markdown(report, command))
    print(markdown(report, command))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
