"""Open Inference Protocol benchmark: V2 binary against a ceiling, JSON against binary, gRPC against
REST, and the adaptive batcher against no batcher, all in one run on this machine.

    .venv/bin/python -m bench.v2 --store model_store                         # ~7 minutes on 2 cores
    .venv/bin/python -m bench.v2 --store model_store --seconds 1 --rounds 1  # a quick look

Writes bench/results/v2/report.md and report.json (or --out). Every ratio compares two figures of
the same run. Scenarios:

- `ceiling`: V2 binary infer of batches of 1, 64 and 1,024 images (wrk), the service (on the
  default upload model, a CNN, and on the MLP) against bench/peers/v2_ceiling.py (same stack;
  reads the same body, answers a constant of the same size);
- `json`: the same batches as JSON tensors (data arrays) against binary, on the service;
- `grpc`: gRPC `ModelInfer` against REST binary, batches of 1 and 64, with one Python asyncio
  client for both (grpc.aio and aiohttp, raw bytes both ways, so the clients cost about the same;
  wrk has no gRPC);
- `batching`: single-image V2 binary requests at concurrency 32 and 64 (wrk), the service with
  the batcher off, on (no wait), and on with a 2 ms wait.

The servers run one worker, with their defaults otherwise (the service logs each request, as
deployed). The load generator shares the 2 cores with the server, as in bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.loadgen import WRK_SCRIPT, _run_tool, parse_wrk
from bench.payloads import load_digits
from bench.servers import RunningServer, ServerSpec
from bench.toolkit import REPO, free_port, write_report

MODELS = ("cnn_augmented", "mlp")
"""The default upload model (a CNN: ~14k images/s on one core at any batch size) and the cheapest model
(an MLP, ~0.9M images/s at batch 1,024), so that the figures show what the protocol costs around each."""
MODEL = MODELS[0]
INFER = f"/v2/models/{MODEL}/infer"
BATCHES = (1, 64, 1024)
CONCURRENCY = {1: 16, 64: 8, 1024: 4}
"""Connections per batch size: enough to keep one worker busy without queueing seconds of work."""
SINGLE_IMAGE_CONCURRENCY = (32, 64)
"""The batcher scenario's connections, each sending one image per request."""

_ = WRK_SCRIPT  # the native benchmark's script; this one adds the binary extension's header


# -- bodies ------------------------------------------------------------------------------------------


def model_input(digits: npt.NDArray[np.uint8], batch: int, offset: int) -> npt.NDArray[np.float32]:
    picked = np.take(digits, np.arange(offset, offset + batch) % len(digits), axis=0)
    return (picked.astype(np.float32) / np.float32(255.0))[..., None]


def binary_body(images: npt.NDArray[np.float32]) -> tuple[bytes, int]:
    """A V2 infer request with the tensor as binary data, asking for binary output (as tritonclient)."""
    header = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": list(images.shape),
                                     "parameters": {"binary_data_size": images.nbytes}}],
                         "parameters": {"binary_data_output": True}}, separators=(",", ":")).encode()
    return header + images.tobytes(), len(header)


def json_body(images: npt.NDArray[np.float32]) -> bytes:
    """A V2 infer request with the tensor as JSON data (shortest float repr), answered as JSON."""
    return json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": list(images.shape),
                                   "data": [float(v) for v in images.ravel()]}]}, separators=(",", ":")).encode()


def grpc_body(images: npt.NDArray[np.float32], model: str) -> bytes:
    """A serialised `ModelInferRequest` with the tensor in raw_input_contents (as tritonclient.grpc)."""
    from service.inference_protocol.proto import open_inference_grpc_pb2 as pb

    request = pb.ModelInferRequest(model_name=model, raw_input_contents=[images.tobytes()])
    request.inputs.add(name="image", datatype="FP32", shape=list(images.shape))
    return bytes(request.SerializeToString())


# -- load ----------------------------------------------------------------------------------------------


def wrk_load(url: str, bodies: list[bytes], header_length: int | None, concurrency: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-v2-") as body_dir:
        for index, body in enumerate(bodies):
            (Path(body_dir) / f"body{index:04d}.bin").write_bytes(body)
        # A JSON-only body, or JSON then binary data with the binary extension's header.
        if header_length is None:
            body_args = ["application/json", body_dir, str(len(bodies))]
        else:
            body_args = ["application/octet-stream", body_dir, str(len(bodies)),
                         "Inference-Header-Content-Length", str(header_length)]
        argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout=30s", "-s", str(WRK_SCRIPT),
                url, "--", "POST", *body_args]
        result = parse_wrk(_run_tool(argv, seconds, 30.0), concurrency)
    return result.to_dict()


async def _closed_loop(send: Any, bodies: list[bytes], concurrency: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            ok = await send(bodies[i % len(bodies)])
            latencies.append(time.perf_counter() - start)
            errors += not ok
            i += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return {"tool": "python-asyncio", "concurrency": concurrency, "seconds": elapsed, "requests": len(latencies),
            "requests_per_s": len(latencies) / elapsed, "p50_ms": float(np.percentile(ms, 50)),
            "p95_ms": float(np.percentile(ms, 95)), "errors": errors}


async def rest_python_load(url: str, bodies: list[bytes], header_length: int, concurrency: int,
                           seconds: float) -> dict[str, Any]:
    import aiohttp

    headers = {"Inference-Header-Content-Length": str(header_length), "Content-Type": "application/octet-stream"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def send(body: bytes) -> bool:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                return response.status == 200

        return await _closed_loop(send, bodies, concurrency, seconds)


async def grpc_python_load(target: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict[str, Any]:
    import grpc

    async with grpc.aio.insecure_channel(target, options=[("grpc.max_receive_message_length", 64 << 20),
                                                          ("grpc.max_send_message_length", 64 << 20)]) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")  # raw bytes both ways

        async def send(body: bytes) -> bool:
            await call(body)
            return True

        return await _closed_loop(send, bodies, concurrency, seconds)


# -- servers ---------------------------------------------------------------------------------------------


def service_spec(store: Path, key: str, **settings: str) -> ServerSpec:
    env = {"DIGITS_MODEL_STORE": str(store.resolve()), "DIGITS_WORKERS": "1",
           **{f"DIGITS_{name.upper()}": value for name, value in settings.items()}}
    return ServerSpec(key, 1, [sys.executable, "-m", "service", "--host", "{host}", "--port", "{port}"],
                      "/v2/health/ready", env)


def ceiling_spec() -> ServerSpec:
    return ServerSpec("v2_ceiling", 1, [sys.executable, "-m", "uvicorn", "bench.peers.v2_ceiling:app", "--host",
                                        "{host}", "--port", "{port}", "--no-access-log"], "/v2/health/ready",
                      predicts=False)


def check_answers(url: str, body: bytes, header_length: int, labels: list[int]) -> float:
    """Share of right digits in one binary answer (a fast wrong server would otherwise look good)."""
    request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 (our loopback URL)
                                     headers={"Inference-Header-Content-Length": str(header_length)})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        raw = response.read()
        length = int(response.headers["Inference-Header-Content-Length"])
    probabilities = np.frombuffer(raw[length:], dtype="<f4").reshape(-1, 10)
    return float((probabilities.argmax(axis=1) == np.asarray(labels)).mean())


# -- the run -----------------------------------------------------------------------------------------------


def run(store: Path, out: Path, seconds: float, rounds: int) -> dict[str, Any]:
    """Every figure `rounds` times, the figures of one round back to back, all servers up throughout.

    The machine is shared (2 cores, other sessions' work): interleaving the rounds spreads any
    disturbance over every figure instead of one scenario, and each figure is the round with the
    median throughput.
    """
    digits = load_digits(500)
    log_dir = out / "logs"
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "seconds_per_run": seconds, "rounds": rounds,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_at_start": os.getloadavg()},
        "gpu": "not measured: no GPU on this machine",
    }
    binary = {b: [binary_body(model_input(digits.images, b, k * b)) for k in range(4)] for b in BATCHES}
    labels = {b: np.take(digits.labels, np.arange(b) % len(digits.labels)).tolist() for b in BATCHES}
    results["body_bytes"] = {b: {"binary": len(binary[b][0][0]), "json": len(json_body(model_input(digits.images, b, 0)))}
                             for b in BATCHES}
    grpc_port = free_port()
    specs = {
        "ceiling": ceiling_spec(),
        "service": service_spec(store, "service", grpc_port=str(grpc_port)),
        "on": service_spec(store, "service_batching_on", batching="true"),
        "on_wait_2ms": service_spec(store, "service_batching_wait", batching="true", batch_max_delay_ms="2"),
    }
    with contextlib.ExitStack() as stack:
        servers = {key: stack.enter_context(RunningServer(spec, log_dir)) for key, spec in specs.items()}

        def infer_url(key: str, model: str = MODEL) -> str:
            return f"{servers[key].base_url}/v2/models/{model}/infer"

        # (where the figure goes, what measures it); each is run once per round.
        figures: list[tuple[tuple[str, ...], Callable[[], dict[str, Any]]]] = []
        for batch in BATCHES:
            bodies, length = [b for b, _ in binary[batch]], binary[batch][0][1]
            figures.append((("ceiling", str(batch)), partial(wrk_load, infer_url("ceiling"), bodies, length,
                                                              CONCURRENCY[batch], seconds)))
            for model in MODELS:
                json_bodies = [json_body(model_input(digits.images, batch, k * batch)) for k in range(2)]
                figures.append((("service", model, str(batch)), partial(wrk_load, infer_url("service", model), bodies,
                                                                         length, CONCURRENCY[batch], seconds)))
                figures.append((("json", model, str(batch)), partial(wrk_load, infer_url("service", model),
                                                                      json_bodies, None, CONCURRENCY[batch], seconds)))
        for model in MODELS:
            for batch in (1, 64):
                grpc_bodies = [grpc_body(model_input(digits.images, batch, k * batch), model) for k in range(4)]
                figures.append((("grpc", model, str(batch)), partial(
                    _run_async, grpc_python_load, f"127.0.0.1:{grpc_port}", grpc_bodies, CONCURRENCY[batch], seconds)))
                figures.append((("rest_python", model, str(batch)), partial(
                    _run_async, rest_python_load, infer_url("service", model), [b for b, _ in binary[batch]],
                    binary[batch][0][1], CONCURRENCY[batch], seconds)))
        for key in ("off", "on", "on_wait_2ms"):
            server = "service" if key == "off" else key
            for concurrency in SINGLE_IMAGE_CONCURRENCY:
                figures.append((("batching", key, str(concurrency)), partial(
                    wrk_load, infer_url(server), [b for b, _ in binary[1]], binary[1][0][1], concurrency, seconds)))

        # A fast server answering wrong digits would look good: check each once.
        results["checked_accuracy"] = {key: check_answers(infer_url(key), *binary[64][0], labels[64])
                                       for key in servers if key != "ceiling"}
        samples: dict[tuple[str, ...], list[dict[str, Any]]] = {where: [] for where, _ in figures}
        for round_index in range(rounds):
            for where, measure in figures:
                samples[where].append(measure())
                print(f"round {round_index + 1}", *where, f"{samples[where][-1]['requests_per_s']:.1f} req/s", flush=True)
    for where, taken in samples.items():
        ordered = sorted(taken, key=lambda sample: sample["requests_per_s"])
        figure = {**ordered[len(ordered) // 2], "rounds_requests_per_s": [t["requests_per_s"] for t in taken]}
        target: dict[Any, Any] = results
        for part in where[:-1]:
            target = target.setdefault(part, {})
        target[int(where[-1])] = figure
    # Other work on the machine shares the cores: the report says how busy it was.
    results["machine"]["load_average_at_end"] = os.getloadavg()
    return results


def _run_async(load: Callable[..., Any], *args: Any) -> dict[str, Any]:
    result: dict[str, Any] = asyncio.run(load(*args))
    return result


# -- the report --------------------------------------------------------------------------------------------


def render(results: dict[str, Any]) -> str:
    lines = [
        "# Open Inference Protocol benchmark", "",
        f"Run {results['when']}, {results['seconds_per_run']:g} s per figure, one worker per server, on "
        f"{results['machine']['cpus']} CPUs ({results['machine']['platform']}). GPU: {results['gpu']}. "
        f"Load average (1 min) {results['machine']['load_average_at_start'][0]:.1f} at the start, "
        f"{results['machine']['load_average_at_end'][0]:.1f} at the end. Each figure: the median of "
        f"{results['rounds']} interleaved rounds. Right digits in a checked batch of 64: "
        + ", ".join(f"{k} {v:.1%}" for k, v in results["checked_accuracy"].items()) + ".", "",
        "## V2 binary infer against the ceiling (wrk)", "",
        "| model | batch | connections | ceiling images/s | service images/s | service / ceiling | service p50 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for model in MODELS:
        for batch in BATCHES:
            c, s = results["ceiling"][batch], results["service"][model][batch]
            lines.append(f"| {model} | {batch} | {CONCURRENCY[batch]} | {c['requests_per_s'] * batch:,.0f} | "
                         f"{s['requests_per_s'] * batch:,.0f} | {s['requests_per_s'] / c['requests_per_s']:.2f}x | "
                         f"{s['p50_ms']:.2f} |")
    lines += ["", "## V2 JSON against V2 binary (the service, wrk)", "",
              "| model | batch | binary images/s | JSON images/s | JSON / binary | JSON body | binary body |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for model in MODELS:
        for batch in BATCHES:
            j, s = results["json"][model][batch], results["service"][model][batch]
            lines.append(f"| {model} | {batch} | {s['requests_per_s'] * batch:,.0f} | {j['requests_per_s'] * batch:,.0f} | "
                         f"{j['requests_per_s'] / s['requests_per_s']:.2f}x | {results['body_bytes'][batch]['json']:,} B | "
                         f"{results['body_bytes'][batch]['binary']:,} B |")
    lines += ["", "## gRPC against REST binary (one Python asyncio client for both)", "",
              "| model | batch | connections | REST images/s | gRPC images/s | gRPC / REST | REST p50 ms | gRPC p50 ms |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for model in MODELS:
        for batch in (1, 64):
            g, r = results["grpc"][model][batch], results["rest_python"][model][batch]
            lines.append(f"| {model} | {batch} | {CONCURRENCY[batch]} | {r['requests_per_s'] * batch:,.0f} | "
                         f"{g['requests_per_s'] * batch:,.0f} | {g['requests_per_s'] / r['requests_per_s']:.2f}x | "
                         f"{r['p50_ms']:.2f} | {g['p50_ms']:.2f} |")
    lines += ["", f"## Adaptive batching: single-image V2 binary requests to {MODEL} (wrk)", "",
              "| batcher | connections | images/s | against off | p50 ms | p99 ms | errors |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key in ("off", "on", "on_wait_2ms"):
        for concurrency in SINGLE_IMAGE_CONCURRENCY:
            b = results["batching"][key][concurrency]
            off = results["batching"]["off"][concurrency]
            lines.append(f"| {key} | {concurrency} | {b['requests_per_s']:,.0f} | "
                         f"{b['requests_per_s'] / off['requests_per_s']:.2f}x | {b['p50_ms']:.2f} | "
                         f"{b['p99_ms']:.2f} | {b['non_2xx'] + b['socket_errors']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=REPO / "model_store")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "v2")
    parser.add_argument("--seconds", type=float, default=4.0, help="per figure and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = run(args.store, args.out, args.seconds, args.rounds)
    write_report(args.out, results, render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
