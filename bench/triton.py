"""Triton as a peer: the service and Triton Inference Server (PyTriton) on the same ONNX file, same run.

    .venv/bin/python -m bench.triton --store model_store              # ~3 minutes on 2 cores
    .venv/bin/python -m bench.triton --seconds 1 --rounds 1           # a quick look
    (`python -m bench` runs it too, unless --skip-triton)

Both servers serve `<store>/cnn/<latest>/model.onnx` through ONNX Runtime with one intra-op thread
per session and two sessions run side by side (Triton: two model instances; the service: its two
work threads), Triton behind its dynamic batcher (0.5 ms queue delay, as the store's config.pbtxt says), the service
as it starts by default (no batcher), plus the service with its batcher on at batch 1 (where a
batcher is what could decide the figure). Per batch size (1, 64 and 1,024 images a request):

- REST, V2 binary tensors (the binary data extension, as tritonclient sends them) and V2 JSON
  tensors (`data` arrays), with wrk, the connections of bench.v2 (16, 8 and 4);
- gRPC `ModelInfer` with raw_input_contents, one Python asyncio client for both servers (wrk has no
  gRPC), at most 6 calls in flight, 2 per connection (see GRPC_MAX_IN_FLIGHT and CALLS_PER_CHANNEL).

Every figure is taken `--rounds` times, the rounds interleaved so that a disturbance of the shared
machine spreads over both servers; each figure is the round with the median throughput and every
ratio compares two figures of one run. Triton is optional: without `.venv-triton` (`make
.venv-triton`), Python 3.12's shared library or a Triton that starts, the section says why it was
skipped and nothing else is lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench import v2
from bench.payloads import load_digits
from bench.servers import RunningServer, ServerSpec
from bench.toolkit import REPO, ServerFailed, free_port, write_report

TRITON_VENV = REPO / ".venv-triton"
TRITON_REQUIREMENTS = Path(__file__).resolve().parent / "requirements-triton.txt"
TRITON_SCRIPT = Path(__file__).resolve().parent / "peers" / "triton_peer.py"
MODEL = "cnn"
BATCHES = (1, 64, 1024)
CONCURRENCY = v2.CONCURRENCY
GRPC_MAX_IN_FLIGHT = 6
"""Under the service's default grpc_max_concurrent_rpcs (8): with 8 calls in flight a few are refused
(RESOURCE_EXHAUSTED, 3-5 in 2 s at batch 64), as a call the client saw end is still counted by the server."""
SERVERS = ("triton", "service")
CALLS_PER_CHANNEL = 2
"""The service allows 4 streams per HTTP/2 connection; with 4 calls in flight on one channel a few of
them are refused (RST_STREAM REFUSED_STREAM, seen as UNAVAILABLE: 67 in 2 s at batch 1), as a stream
the client saw end is still counted open by the server. Two per channel keep the figure about speed."""


def triton_python() -> Path:
    return TRITON_VENV / "bin" / "python"


def libpython_dir(python: Path) -> str | None:
    """The directory of the interpreter's libpython3.X.so.1.0 (Triton's backend stub links it), or None."""
    # A venv's python is a link to the base interpreter: its prefix's lib/ holds the shared library.
    base = python.resolve().parent.parent / "lib"
    return str(base) if any(base.glob("libpython3.*.so.1.0")) else None


def triton_problem() -> str | None:
    """Why Triton cannot run here (None when it can be tried)."""
    python = triton_python()
    if not python.exists() or not (TRITON_VENV / ".installed").exists():
        return f"{TRITON_VENV.name} is missing: `make .venv-triton` (Python 3.12, {TRITON_REQUIREMENTS.name})"
    if libpython_dir(python) is None:
        return f"no libpython3.*.so.1.0 beside {python.resolve()} (Triton's Python backend stub links it)"
    return None


def model_file(store: Path, name: str = MODEL) -> Path:
    versions = sorted(int(p.name) for p in (store / name).iterdir() if p.name.isdigit() and (p / "model.onnx").is_file())
    if not versions:
        raise FileNotFoundError(f"no {name}/<version>/model.onnx in {store}")
    return store / name / str(versions[-1]) / "model.onnx"


def triton_spec(store: Path, grpc_port: int) -> ServerSpec:
    python = triton_python()
    library = libpython_dir(python) or ""
    env = {"LD_LIBRARY_PATH": ":".join(p for p in (library, os.environ.get("LD_LIBRARY_PATH", "")) if p)}
    argv = [str(python), str(TRITON_SCRIPT), "--model", str(model_file(store).resolve()), "--name", MODEL,
            "--http-port", "{port}", "--grpc-port", str(grpc_port)]
    return ServerSpec("triton", 1, argv, f"/v2/models/{MODEL}/ready", env)


# -- load ------------------------------------------------------------------------------------------------


async def grpc_load(target: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict[str, Any]:
    """bench.v2's asyncio gRPC loop over one channel per CALLS_PER_CHANNEL calls in flight; an error
    status is counted by its code instead of ending the run, and only answered calls make the rate."""
    import grpc

    # A local subchannel pool: channels of one process to one target otherwise share one connection.
    options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20),
               ("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(target, options=options)
                for _ in range(-(-concurrency // CALLS_PER_CHANNEL))]
    calls = [channel.unary_unary("/inference.GRPCInferenceService/ModelInfer") for channel in channels]
    codes: dict[str, int] = {}
    turn = 0

    async def send(body: bytes) -> bool:
        nonlocal turn
        turn += 1
        try:
            await calls[turn % len(calls)](body)
        except grpc.aio.AioRpcError as error:
            codes[error.code().name] = codes.get(error.code().name, 0) + 1
            return False
        return True

    try:
        result = await v2._closed_loop(send, bodies, concurrency, seconds)
    finally:
        for channel in channels:
            await channel.close()
    answered = result["requests"] - result["errors"]
    return {**result, "requests_per_s": answered / result["seconds"], "error_codes": codes}


def run_grpc(target: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict[str, Any]:
    result: dict[str, Any] = asyncio.run(grpc_load(target, bodies, concurrency, seconds))
    return result


# -- the run ---------------------------------------------------------------------------------------------


def run(store: Path, out: Path, *, seconds: float, rounds: int) -> dict[str, Any]:
    """Start Triton and the service (twice: batcher off and on), measure every figure `rounds` times."""
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "seconds_per_run": seconds, "rounds": rounds,
        "model": str(model_file(store)), "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                                    "load_average_at_start": os.getloadavg()},
    }
    if (problem := triton_problem()) is not None:
        return {**results, "skipped": problem}
    digits = load_digits(2048)
    inputs = {b: [v2.model_input(digits.images, b, k * b) for k in range(2)] for b in BATCHES}
    labels = np.take(digits.labels, np.arange(64)).tolist()
    grpc_ports = {"triton": free_port(), "service": free_port()}
    specs = {
        "triton": triton_spec(store, grpc_ports["triton"]),
        "service": v2.service_spec(store, "service", grpc_port=str(grpc_ports["service"])),
        "service_batching": v2.service_spec(store, "service_batching", batching="true"),
    }
    # Both servers get the same bodies (a 1,024-image JSON body is ~4 MB: under the service's limits).
    binary = {b: [v2.binary_body(x) for x in inputs[b]] for b in BATCHES}
    json_bodies = {b: [v2.json_body(x) for x in inputs[b]] for b in BATCHES}
    results["body_bytes"] = {b: {"binary": len(binary[b][0][0]), "json": len(json_bodies[b][0])} for b in BATCHES}
    figures: list[tuple[tuple[str, ...], Callable[[], dict[str, Any]]]] = []
    try:
        with contextlib.ExitStack() as stack:
            servers = {key: stack.enter_context(RunningServer(spec, out / "logs", ready_timeout_s=120.0))
                       for key, spec in specs.items()}

            def url(key: str) -> str:
                return f"{servers[key].base_url}/v2/models/{MODEL}/infer"

            results["checked_accuracy"] = {key: v2.check_answers(url(key), *binary[64][0], labels) for key in servers}
            for batch in BATCHES:
                length = binary[batch][0][1]
                for key in SERVERS:
                    figures.append((("binary", key, str(batch)), partial(
                        v2.wrk_load, url(key), [b for b, _ in binary[batch]], length, CONCURRENCY[batch], seconds)))
                    figures.append((("json", key, str(batch)), partial(
                        v2.wrk_load, url(key), json_bodies[batch], None, CONCURRENCY[batch], seconds)))
                    grpc_bodies = [v2.grpc_body(x, MODEL) for x in inputs[batch]]
                    figures.append((("grpc", key, str(batch)), partial(
                        run_grpc, f"127.0.0.1:{grpc_ports[key]}", grpc_bodies,
                        min(CONCURRENCY[batch], GRPC_MAX_IN_FLIGHT), seconds)))
            figures.append((("binary", "service_batching", "1"), partial(
                v2.wrk_load, url("service_batching"), [b for b, _ in binary[1]], binary[1][0][1], CONCURRENCY[1],
                seconds)))
            samples: dict[tuple[str, ...], list[dict[str, Any]]] = {where: [] for where, _ in figures}
            for round_index in range(rounds):
                for where, measure in figures:
                    samples[where].append(measure())
                    print(f"   triton round {round_index + 1}", *where,
                          f"{samples[where][-1]['requests_per_s']:.1f} req/s", flush=True)
    except (ServerFailed, OSError) as error:
        return {**results, "skipped": f"{type(error).__name__}: {str(error)[-800:]}"}
    for where, taken in samples.items():
        ordered = sorted(taken, key=lambda sample: sample["requests_per_s"])
        figure = {**ordered[len(ordered) // 2], "rounds_requests_per_s": [t["requests_per_s"] for t in taken]}
        results.setdefault(where[0], {}).setdefault(where[1], {})[int(where[2])] = figure
    results["machine"]["load_average_at_end"] = os.getloadavg()
    return results


# -- the report ------------------------------------------------------------------------------------------


def _errors(figure: dict[str, Any]) -> int:
    return int(figure.get("errors", figure.get("non_2xx", 0) + figure.get("socket_errors", 0)))


def render(results: dict[str, Any]) -> str:
    lines = ["## Triton (PyTriton) and the service on the same ONNX file", ""]
    if "skipped" in results:
        return "\n".join([*lines, f"Skipped: {results['skipped']}", ""])
    start, end = results["machine"]["load_average_at_start"][0], results["machine"]["load_average_at_end"][0]
    lines += [
        f"Run {results['when']}, `{results['model']}`, {results['seconds_per_run']:g} s per figure, median of "
        f"{results['rounds']} interleaved rounds, {results['machine']['cpus']} CPUs, load average {start:.1f} at "
        f"the start and {end:.1f} at the end (the load generator shares the cores). Right digits in a checked "
        f"batch of 64: " + ", ".join(f"{k} {v:.0%}" for k, v in results["checked_accuracy"].items()) + ".", "",
        "| transport | batch | connections | Triton images/s | service images/s | service / Triton "
        "| Triton p50 ms | service p50 ms | errors (T/s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = {"binary": "REST V2 binary (wrk)", "json": "REST V2 JSON (wrk)", "grpc": "gRPC (Python client)"}
    for transport, name in names.items():
        for batch in BATCHES:
            t, s = results[transport]["triton"][batch], results[transport]["service"][batch]
            connections = min(CONCURRENCY[batch], GRPC_MAX_IN_FLIGHT) if transport == "grpc" else CONCURRENCY[batch]
            ratio = s["requests_per_s"] / t["requests_per_s"] if t["requests_per_s"] else float("nan")
            lines.append(f"| {name} | {batch:,} | {connections} | {t['requests_per_s'] * batch:,.0f} | "
                         f"{s['requests_per_s'] * batch:,.0f} | {ratio:.2f}x | {t['p50_ms']:.2f} | "
                         f"{s['p50_ms']:.2f} | {_errors(t)}/{_errors(s)} |")
    on, t1 = results["binary"]["service_batching"][1], results["binary"]["triton"][1]
    lines += ["", f"Batch 1 with the service's batcher on (DIGITS_BATCHING=true): {on['requests_per_s']:,.0f} images/s, "
              f"{on['requests_per_s'] / t1['requests_per_s']:.2f}x Triton, p50 {on['p50_ms']:.2f} ms.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=REPO / "model_store")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "triton")
    parser.add_argument("--seconds", type=float, default=3.0, help="per figure and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = run(args.store, args.out, seconds=args.seconds, rounds=args.rounds)
    results["duration_s"] = round(time.monotonic() - started)
    write_report(args.out, results, render(results))
    # Skipping is an answer (the reason is in the report), not a failure of the command.
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
