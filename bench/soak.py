"""Soak test: minutes of mixed valid and hostile traffic on loopback, and what the service did with it.

    .venv/bin/python -m bench.soak --store model_store                  # 30 s warm-up + 180 s at c=64
    .venv/bin/python -m bench.soak --store model_store --duration 20 --warmup 5 --concurrency 8   # a smoke

It starts `python -m service` on a free loopback port (or uses `--url`/`--pid` of a running one),
keeps `--concurrency` keep-alive connections busy with a weighted mix of requests (valid uploads,
JSON pixels, model listings, and invalid ones: not-an-image, decompression bombs, bodies over the
limit, unknown and path-like models, malformed JSON, too many parts, overlong queries), and checks:

- no 5xx, and every request kind answered with its expected status (a valid upload gets exactly the
  answer it got before the load: same digit, same confidence);
- no dropped connection: no reset, no early close, no timeout (a server that closes after a 413
  says so with `Connection: close`, which is counted apart, as the protocol intends);
- resident memory stable: under `--max-rss-growth` (10%) from the end of the warm-up to the end;
- latency percentiles per request kind and overall, throughput, server CPU.

The report goes to `bench/results/soak.json` and `bench/results/soak.md`; the exit status is 0 only
when every check passed. The client is a minimal asyncio HTTP/1.1 loop (on uvloop where installed),
so no load generator needs installing and each answer's status and body can be checked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import socket
import statistics
import struct
import sys
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.payloads import json_pixels_body, load_digits, multipart_body
from bench.toolkit import ServerProcess, service_process, tree_cpu_seconds, tree_rss_bytes

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
REQUEST_TIMEOUT_S = 30.0
STREAM_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Kind:
    """One kind of request in the mix: its raw HTTP requests, its weight and the status it must get."""

    name: str
    weight: float
    requests: list[bytes]
    status: int
    valid: bool
    expected: list[tuple[int, float] | None] = field(default_factory=list)
    """Per request, the (digit, confidence) it answered before the load (valid single answers only)."""
    streams: bool = False
    """Write the body while already reading: the server answers (413) before the body is all sent."""


def raw_request(method: str, target: str, body: bytes = b"", content_type: str | None = None) -> bytes:
    head = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "User-Agent: digits-soak"]
    if content_type:
        head.append(f"Content-Type: {content_type}")
    if body or method == "POST":
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(
        b"IEND", b"")


def photo_of(digit: np.ndarray) -> bytes:
    """A digit as a phone photo would have it: dark ink on light paper, large, JPEG."""
    import io

    from PIL import Image

    page = Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    page.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def just_over_pixel_limit() -> tuple[int, int]:
    """A width and height whose product is just over the service's default DIGITS_MAX_IMAGE_PIXELS."""
    from service.settings import Settings  # the service's own default, whatever it is today

    limit = int(Settings.model_fields["max_image_pixels"].default)
    side = math.isqrt(limit)
    return side, limit // side + 1


def build_mix(upload_limit: int) -> list[Kind]:
    """The weighted request mix: about 80% valid requests, 20% invalid ones of ten kinds."""
    digits = load_digits(64)
    pngs, images = digits.pngs, digits.images
    boundary = "----digitbench7MA4YWxkTrZu0gW"
    multipart = f"multipart/form-data; boundary={boundary}"
    png_type = "image/png"
    rng = np.random.default_rng(7)
    return [
        Kind("upload_multipart", 34, [raw_request("POST", "/predict", multipart_body([p]), multipart) for p in pngs],
             200, True),
        Kind("upload_raw_png", 15, [raw_request("POST", "/predict?model=cnn", p, png_type) for p in pngs], 200, True),
        Kind("upload_photo_jpeg", 8, [raw_request("POST", "/predict", photo_of(d), "image/jpeg") for d in images[:16]],
             200, True),
        Kind("upload_batch_4", 5, [raw_request("POST", "/predict?model=mlp", multipart_body(pngs[i:i + 4]), multipart)
                                   for i in range(0, 32, 4)], 200, True),
        Kind("json_pixels_2", 5, [raw_request("POST", "/predict?model=cnn_noise", json_pixels_body(images[i:i + 2]),
                                              "application/json") for i in range(0, 32, 2)], 200, True),
        Kind("compare_models", 3, [raw_request("POST", "/models/compare", p, png_type) for p in pngs[:16]], 200, True),
        Kind("list_models", 3, [raw_request("GET", "/models")], 200, True),
        Kind("ready", 5, [raw_request("GET", "/health/ready")], 200, True),
        Kind("not_an_image", 4, [raw_request("POST", "/predict", rng.bytes(1500), png_type)], 415, False),
        Kind("truncated_png", 2, [raw_request("POST", "/predict", p[: len(p) // 2], png_type) for p in pngs[:8]], 400,
             False),
        # Far over any limit, and one pixel row over the service's default (16.7 MP today, 6 MP before):
        # derived from the default so that raising it does not turn the second one into a truncated PNG (400).
        Kind("decompression_bomb", 3, [raw_request("POST", "/predict", png_declaring(100_000, 100_000), png_type),
                                       raw_request("POST", "/predict", png_declaring(*just_over_pixel_limit()),
                                                   png_type)], 413, False),
        Kind("unknown_model", 2, [raw_request("POST", "/predict?model=resnet50", pngs[0], png_type)], 404, False),
        Kind("path_like_model", 2, [raw_request("POST", "/predict?model=..%2F..%2Fetc%2Fpasswd", pngs[0], png_type),
                                    raw_request("GET", "/models/..%2F..%2Fetc%2Fpasswd")], 404, False),
        Kind("malformed_json", 2, [raw_request("POST", "/predict", b'{"images": [[0.5, NaN', "application/json")],
             422, False),
        Kind("wrong_field", 1, [raw_request("POST", "/predict", multipart_body([pngs[0]]).replace(
            b'name="file"', b'name="image"'), multipart)], 422, False),
        Kind("too_many_parts", 1, [raw_request("POST", "/predict", multipart_body([pngs[0]] * 40), multipart)], 413,
             False),
        Kind("long_query", 1, [raw_request("GET", "/models?" + "x" * 8000)], 414, False),
        # Over the upload limit with a declared length: answered at once, the rest drained, connection kept.
        Kind("over_upload_limit", 1, [raw_request("POST", "/predict", b"\0" * (upload_limit + upload_limit // 4),
                                                  png_type)], 413, False, streams=True),
        # Over it in chunks of unknown total: cut off while streaming, answered, connection closed.
        Kind("over_upload_limit_chunked", 0.5, [chunked_request("/predict", png_type, 2 * upload_limit)], 413, False,
             streams=True),
    ]


def chunked_request(target: str, content_type: str, size: int, chunk: int = 64 * 1024) -> bytes:
    head = (f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: digits-soak\r\n"
            f"Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    piece = f"{chunk:x}\r\n".encode() + b"\0" * chunk + b"\r\n"
    return head + piece * (size // chunk) + b"0\r\n\r\n"


# -- the HTTP/1.1 client -----------------------------------------------------------------------


class Dropped(Exception):
    """The connection failed under a request: reset, closed early, or no answer in time."""


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise Dropped("closed before a response" if not exc.partial else "closed mid-response") from exc
    status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" not in headers:
        raise Dropped(f"response without Content-Length: {status_line}")
    try:
        body = await reader.readexactly(int(headers["content-length"]))
    except asyncio.IncompleteReadError as exc:
        raise Dropped("closed mid-body") from exc
    return int(status_line.split()[1]), headers, body


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes,
                   streams: bool) -> tuple[int, dict[str, str], bytes, bool]:
    """Send one request, read its answer: (status, headers, body, whether the connection is reusable)."""
    if not streams:
        writer.write(request)
        await writer.drain()
        status, headers, body = await read_response(reader)
        return status, headers, body, headers.get("connection", "").lower() != "close"
    # A body over the limit: read while writing, as a careful client does, since the server answers
    # (413) on its first read. The body is sent to its end unless the server closes: a server that
    # keeps the connection discards the rest, and only then is the connection usable again.
    answer = asyncio.ensure_future(read_response(reader))
    complete = True
    try:
        for start in range(0, len(request), STREAM_CHUNK):
            writer.write(request[start : start + STREAM_CHUNK])
            await writer.drain()
    except (ConnectionError, OSError):
        complete = False  # the server closed its side after answering; the answer is what counts
    status, headers, body = await answer
    return status, headers, body, complete and headers.get("connection", "").lower() != "close"


@dataclass
class Tally:
    """Everything the workers observed, split by request kind."""

    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    wrong: Counter[str] = field(default_factory=Counter)
    """Answers with the expected status but the wrong content (another digit, no `error`, ...)."""
    dropped: Counter[str] = field(default_factory=Counter)
    server_closes: Counter[str] = field(default_factory=Counter)
    connects: int = 0
    warmup_requests: int = 0
    examples: dict[str, str] = field(default_factory=dict)


def check_body(kind: Kind, index: int, status: int, body: bytes) -> str | None:
    """Why this answer is wrong, or None. Status mismatches are counted by the caller."""
    try:
        answer = json.loads(body)
    except ValueError:
        return "not JSON"
    if status != 200:
        return None if isinstance(answer, dict) and isinstance(answer.get("error"), str) else "no `error` field"
    expected = kind.expected[index] if kind.expected else None
    if expected is not None:
        digit, confidence = expected
        if answer.get("digit") != digit or abs(answer.get("confidence", -1.0) - confidence) > 1e-6:
            return f"answered {answer.get('digit')} ({answer.get('confidence')}), not {digit} ({confidence}) as unloaded"
    return None


async def worker(seed: int, host: str, port: int, mix: list[Kind], tally: Tally, warm_until: float,
                 stop_at: float) -> None:
    rng = random.Random(seed)  # noqa: S311 (a load mix, not a secret)
    weights = [kind.weight for kind in mix]
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while time.monotonic() < stop_at:
        kind = rng.choices(mix, weights)[0]
        index = rng.randrange(len(kind.requests))
        if connection is None:
            try:
                connection = await asyncio.wait_for(asyncio.open_connection(host, port), REQUEST_TIMEOUT_S)
                tally.connects += 1
            except (OSError, TimeoutError):
                tally.dropped["connect"] += 1
                await asyncio.sleep(0.05)
                continue
        reader, writer = connection
        start = time.monotonic()
        try:
            status, _, body, reusable = await asyncio.wait_for(
                exchange(reader, writer, kind.requests[index], kind.streams), REQUEST_TIMEOUT_S)
        except (Dropped, ConnectionError, OSError, TimeoutError) as exc:
            tally.dropped[kind.name] += 1
            tally.examples.setdefault(f"dropped:{kind.name}", f"{type(exc).__name__}: {exc}")
            writer.close()
            connection = None
            continue
        elapsed = time.monotonic() - start
        if start < warm_until:
            tally.warmup_requests += 1
        else:
            tally.statuses[kind.name][status] += 1
            tally.latencies[kind.name].append(elapsed)
            problem = check_body(kind, index, status, body) if status == kind.status else None
            if problem:
                tally.wrong[kind.name] += 1
                tally.examples.setdefault(f"wrong:{kind.name}", problem)
            elif status != kind.status:
                tally.examples.setdefault(f"status:{kind.name}:{status}", body[:300].decode(errors="replace"))
        if not reusable:
            tally.server_closes[kind.name] += 1
            writer.close()
            connection = None
    if connection is not None:
        connection[1].close()


async def record_expected(host: str, port: int, mix: list[Kind]) -> list[Kind]:
    """Each valid single-answer request once, unloaded: the answers the load must reproduce."""
    reader, writer = await asyncio.open_connection(host, port)
    checked = []
    for kind in mix:
        expected: list[tuple[int, float] | None] = []
        for request in kind.requests:
            status, _, body, reusable = await exchange(reader, writer, request, kind.streams)
            if status != kind.status:
                raise SystemExit(f"{kind.name}: expected {kind.status} before the load, got {status}: {body[:300]!r}")
            answer = json.loads(body)
            single = kind.valid and isinstance(answer, dict) and "digit" in answer
            expected.append((answer["digit"], answer["confidence"]) if single else None)
            if not reusable:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
        checked.append(Kind(kind.name, kind.weight, kind.requests, kind.status, kind.valid, expected, kind.streams))
    writer.close()
    return checked


# -- the server and its memory -----------------------------------------------------------------


async def sample_rss(pid: int, samples: list[tuple[float, int]], stop_at: float, origin: float) -> None:
    while time.monotonic() < stop_at:
        samples.append((time.monotonic() - origin, tree_rss_bytes(pid)))
        await asyncio.sleep(1.0)


def service(store: Path, workers: int, upload_limit: int) -> ServerProcess:
    """The service under test (not started): its own settings only, whatever DIGITS_* this shell has."""
    return service_process(store, workers=str(workers), max_upload_bytes=str(upload_limit), log_level="warning",
                           stop_grace_s=60.0)


def server_5xx(host: str, port: int) -> int:
    """5xx answers the server itself counted (its Prometheus counter), across all its workers."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(raw_request("GET", "/metrics"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data:
                head, body = data.split(b"\r\n\r\n", 1)
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                if len(body) >= length:
                    break
    total = 0
    for line in body.decode().splitlines():
        if line.startswith("digits_http_requests_total{") and 'status="5' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


# -- the run and its report --------------------------------------------------------------------


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    ms = np.asarray(values) * 1000.0
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p90_ms": round(float(np.percentile(ms, 90)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "max_ms": round(float(ms.max()), 2)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    host, port = "127.0.0.1", args.port
    mix = await record_expected(host, port, build_mix(args.upload_limit))
    tally = Tally()
    origin = time.monotonic()
    warm_until, stop_at = origin + args.warmup, origin + args.warmup + args.duration
    samples: list[tuple[float, int]] = []
    cpu_start = tree_cpu_seconds(args.pid)
    sampler = asyncio.ensure_future(sample_rss(args.pid, samples, stop_at, origin))
    await asyncio.gather(*(worker(args.seed + i, host, port, mix, tally, warm_until, stop_at)
                           for i in range(args.concurrency)))
    await sampler
    samples.append((time.monotonic() - origin, tree_rss_bytes(args.pid)))
    cpu_used = tree_cpu_seconds(args.pid) - cpu_start
    counted_5xx = server_5xx(host, port)

    measured = [s for s in samples if s[0] >= args.warmup]
    window = max(3, min(10, len(measured) // 4))
    rss_start = statistics.median(rss for _, rss in measured[:window])
    rss_end = statistics.median(rss for _, rss in measured[-window:])
    growth = (rss_end - rss_start) / rss_start
    kinds: dict[str, dict[str, Any]] = {}
    for kind in mix:
        statuses = tally.statuses[kind.name]
        kinds[kind.name] = {"expected_status": kind.status, "valid": kind.valid, "requests": sum(statuses.values()),
                            "statuses": {str(k): v for k, v in sorted(statuses.items())},
                            "unexpected_status": sum(v for k, v in statuses.items() if k != kind.status),
                            "wrong_answers": tally.wrong[kind.name], "dropped": tally.dropped[kind.name],
                            "server_closes": tally.server_closes[kind.name],
                            **percentiles(tally.latencies[kind.name])}
    total = sum(k["requests"] for k in kinds.values())
    five_xx = sum(v for s in tally.statuses.values() for k, v in s.items() if k >= 500)
    dropped = sum(tally.dropped.values())
    unexpected = sum(k["unexpected_status"] for k in kinds.values())
    wrong = sum(tally.wrong.values())
    checks: dict[str, bool] = {
        "no 5xx (client)": five_xx == 0,
        "no 5xx (server's own counter)": counted_5xx == 0,
        "no dropped connections": dropped == 0,
        "every kind got its expected status": unexpected == 0,
        "valid answers identical to the unloaded ones": wrong == 0,
        f"RSS growth after warm-up < {args.max_rss_growth:.0%}": growth < args.max_rss_growth,
    }
    valid_latencies = [v for kind in mix if kind.valid for v in tally.latencies[kind.name]]
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": {"concurrency": args.concurrency, "warmup_s": args.warmup, "duration_s": args.duration,
                     "workers": args.workers, "upload_limit_bytes": args.upload_limit, "store": str(args.store),
                     "seed": args.seed},
        "passed": all(checks.values()),
        "checks": checks,
        "totals": {"requests": total, "requests_per_s": round(total / args.duration, 1),
                   "valid_requests": sum(k["requests"] for k in kinds.values() if k["valid"]),
                   "invalid_requests": sum(k["requests"] for k in kinds.values() if not k["valid"]),
                   "warmup_requests": tally.warmup_requests, "5xx": five_xx, "server_counted_5xx": counted_5xx,
                   "dropped": dropped, "dropped_by_kind": dict(tally.dropped), "unexpected_status": unexpected,
                   "wrong_answers": wrong, "connections_opened": tally.connects,
                   "server_closes_after_413": sum(tally.server_closes.values()),
                   "server_cpu_s": round(cpu_used, 1),
                   "server_cpu_cores": round(cpu_used / (args.warmup + args.duration), 2)},
        "latency_all": percentiles([v for values in tally.latencies.values() for v in values]),
        "latency_valid": percentiles(valid_latencies),
        "rss": {"after_warmup_mib": round(rss_start / 2**20, 1), "end_mib": round(rss_end / 2**20, 1),
                "peak_mib": round(max(rss for _, rss in measured) / 2**20, 1), "growth": round(growth, 4),
                "timeline_mib": [(round(t), round(rss / 2**20, 1)) for t, rss in samples[::5]]},
        "kinds": kinds,
        "examples": tally.examples,
    }


def markdown(report: dict[str, Any], command: str) -> str:
    totals, rss, settings = report["totals"], report["rss"], report["settings"]
    lines = [
        f"# Soak test: {'PASS' if report['passed'] else 'FAIL'}",
        "",
        f"`{command}` on {report['when']}: {settings['warmup_s']} s warm-up, then {settings['duration_s']} s at "
        f"concurrency {settings['concurrency']} against `python -m service` with {settings['workers']} worker(s) "
        f"on loopback, {report['machine']['cpus']} CPUs shared by the server and this client.",
        "",
        "| check | result |", "| --- | --- |",
        *(f"| {name} | {'pass' if ok else '**FAIL**'} |" for name, ok in report["checks"].items()),
        "",
        f"**{totals['requests']:,} requests** measured ({totals['requests_per_s']}/s; {totals['valid_requests']:,} "
        f"valid, {totals['invalid_requests']:,} invalid), {totals['5xx']} 5xx, {totals['dropped']} dropped, "
        f"{totals['unexpected_status']} unexpected statuses, {totals['wrong_answers']} wrong answers; "
        f"{totals['server_closes_after_413']} connections closed by the server after a 413 (announced); server "
        f"CPU {totals['server_cpu_cores']} cores on average.",
        "",
        f"Latency, all requests: p50 {report['latency_all']['p50_ms']} ms, p90 {report['latency_all']['p90_ms']} ms, "
        f"p99 {report['latency_all']['p99_ms']} ms, max {report['latency_all']['max_ms']} ms. Valid requests: "
        f"p50 {report['latency_valid']['p50_ms']} ms, p99 {report['latency_valid']['p99_ms']} ms.",
        "",
        f"Resident memory (server): {rss['after_warmup_mib']} MiB after warm-up, {rss['end_mib']} MiB at the end "
        f"({rss['growth']:+.1%}), peak {rss['peak_mib']} MiB.",
        "",
        "| kind | expected | requests | statuses | p50 ms | p90 ms | p99 ms | max ms | dropped |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, kind in report["kinds"].items():
        statuses = ", ".join(f"{k}: {v}" for k, v in kind["statuses"].items())
        lines.append(f"| {name} | {kind['expected_status']} | {kind['requests']:,} | {statuses} | {kind['p50_ms']} | "
                     f"{kind['p90_ms']} | {kind['p99_ms']} | {kind['max_ms']} | {kind['dropped']} |")
    lines += ["", "RSS timeline (s, MiB): " + ", ".join(f"{t}: {m}" for t, m in rss["timeline_mib"]), ""]
    if report["examples"]:
        lines += ["Examples of failures:", "", *(f"- `{k}`: {v}" for k, v in report["examples"].items()), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=REPO / "model_store", help="model store to serve")
    parser.add_argument("--duration", type=float, default=180.0, help="measured seconds, after the warm-up (180)")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds of load before measuring (30)")
    parser.add_argument("--concurrency", type=int, default=64, help="connections kept busy (64)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (1)")
    parser.add_argument("--upload-limit", type=int, default=4 * 1024 * 1024, help="server's DIGITS_MAX_UPLOAD_BYTES")
    parser.add_argument("--max-rss-growth", type=float, default=0.10, help="allowed RSS growth after warm-up (0.10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--url", help="use a running server (http://127.0.0.1:PORT) instead of starting one")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, for its memory and CPU")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for soak.json and soak.md")
    args = parser.parse_args(argv)
    if not 1 <= args.concurrency <= 1024 or args.duration <= 0 or args.duration > 3600 or args.warmup < 0:
        parser.error("concurrency must be 1-1024, duration 0-3600 s, warm-up >= 0")
    if args.url and not args.pid:
        parser.error("--url needs --pid (the soak reads the server's memory from /proc)")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    command = "python -m bench.soak " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.url:
        args.port = int(args.url.rstrip("/").rsplit(":", 1)[1])
        report, server_log = asyncio.run(run(args)), ""
    else:
        server = service(args.store, args.workers, args.upload_limit)
        try:
            with server:
                args.port, args.pid = server.port, server.pid
                report = asyncio.run(run(args))
            server_log = server.output()  # after the stop: what it logged while shutting down too
        finally:
            server.close()
    report["server_log_errors"] = [line for line in server_log.splitlines() if "ERROR" in line or "Traceback" in line]
    if report["server_log_errors"]:
        report["checks"]["no errors in the server log"] = False
        report["passed"] = False
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report, command)
    (args.out / "soak.md").write_text(text)
    print(text)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
