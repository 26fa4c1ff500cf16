"""Ray Serve, one replica against two, and `python -m service` at one and two workers, in one run.

    .venv-ray/bin/python -m bench.ray_scale --store model_store      # ~3 min; writes bench/results/ray.md

Runs in the Ray environment (`make test-ray` builds `.venv-ray` from requirements/ray.lock). A
local Ray cluster (`--num-cpus`, default 2) serves `service.server.ray_serve`'s deployment with 1, then 2
replicas; `python -m service` (uvicorn, the same app) with 1 and 2 workers is measured in the same
run as the reference. Each configuration gets the same closed-loop load (wrk by default): single
PNG uploads and single JSON-pixel requests to `/predict?model=cnn`, after a warm-up, in rounds that
alternate the configurations so that drift on a shared machine falls on all of them. Reported:
median requests/s over the rounds, p50/p99 latency, and the ratios (2 vs 1, Ray vs uvicorn).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.loadgen import LoadResult, pick_tool, run_load
from bench.payloads import Payload, json_payload, load_digits, upload_payload

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent
MODEL = "cnn"
READING = "\n## What the figures say"


def wait_ready(base: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/health/ready", timeout=5) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{base} did not become ready in {timeout:.0f} s")


@contextmanager
def uvicorn_service(store: Path, workers: int, port: int) -> Iterator[str]:
    """`python -m service --workers N` on this interpreter, logs to a temporary file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITS_")}
    env.update({"DIGITS_LOG_LEVEL": "warning"})
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and fixed arguments)
            [sys.executable, "-m", "service", "--port", str(port), "--workers", str(workers),
             "--model-store", str(store), "--device", "cpu"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_ready(base)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=60)


def ray_deployment(store: Path, replicas: int, port: int, max_ongoing: int | None) -> str:
    """Deploy (or redeploy) `service.server.ray_serve` with `replicas`, wait until each is running."""
    from ray import serve

    from service.server import ray_serve
    from service.settings import Settings

    settings = Settings(model_store=store, port=port, device="cpu")
    # No access log: the uvicorn reference runs at log level warning, which logs no request either.
    base = ray_serve.start(settings, replicas, access_log=False, max_ongoing_requests=max_ongoing)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        states = serve.status().applications[ray_serve.APP_NAME].deployments[ray_serve.DEPLOYMENT_NAME].replica_states
        if states.get("RUNNING") == replicas and len(states) == 1:
            break
        time.sleep(0.5)
    wait_ready(base)
    return base


def measure(tool: str, base: str, payloads: dict[str, Payload], concurrency: int, seconds: float,
            warmup: float) -> dict[str, LoadResult]:
    out = {}
    for name, payload in payloads.items():
        run_load(tool, base, payload, concurrency, warmup)
        out[name] = run_load(tool, base, payload, concurrency, seconds)
    return out


def summarise(runs: list[LoadResult]) -> dict[str, Any]:
    return {
        "requests_per_s": statistics.median(r.requests_per_s for r in runs),
        "rounds": [round(r.requests_per_s, 1) for r in runs],
        "p50_ms": statistics.median(r.p50_ms or 0.0 for r in runs),
        "p99_ms": statistics.median(r.p99_ms or 0.0 for r in runs),
        "errors": sum(r.errors for r in runs),
    }


def write_report(results: dict[str, dict[str, dict[str, Any]]], meta: dict[str, Any], out: Path) -> None:
    payload_names = list(next(iter(results.values())))
    lines = [
        "# Ray Serve: one replica against two (and uvicorn workers as the reference)",
        "",
        f"Measured {meta['date']} by `{meta['command']}` on {meta['machine']}: {meta['cores']} cores, shared with "
        "other work (absolute figures drift; the ratios come from the same run, in rounds that alternate the "
        f"configurations). Local Ray cluster of {meta['num_cpus']} CPUs, one CPU reserved per replica, "
        "no access log; `N ongoing`: the deployment's `max_ongoing_requests` (Ray's default is 5); "
        f"load: {meta['tool']}, {meta['concurrency']} connections, {meta['seconds']:g} s per round after "
        f"{meta['warmup']:g} s of warm-up, {meta['rounds']} rounds; `POST /predict?model={MODEL}`, one image per "
        "request, each replica or worker with every model of the store loaded.",
        "",
        "| configuration | payload | requests/s (median) | per round | p50 ms | p99 ms | errors |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for config, per_payload in results.items():
        for name, s in per_payload.items():
            lines.append(f"| {config} | {name} | {s['requests_per_s']:.0f} | {', '.join(map(str, s['rounds']))} | "
                         f"{s['p50_ms']:.1f} | {s['p99_ms']:.1f} | {s['errors']} |")
    lines += ["", "| ratio (requests/s, same run) | " + " | ".join(payload_names) + " |",
              "| --- | " + " | ".join("---:" for _ in payload_names) + " |"]

    def ratio(a: str, b: str) -> str:
        if a not in results or b not in results:
            return ""
        cells = [f"{results[a][n]['requests_per_s'] / results[b][n]['requests_per_s']:.2f}" for n in payload_names]
        return f"| {a} / {b} | " + " | ".join(cells) + " |"

    pairs = [("uvicorn 2 workers", "uvicorn 1 worker")]
    for value in meta["max_ongoing"]:
        pairs += [(f"ray 2 replicas, {value} ongoing", f"ray 1 replica, {value} ongoing"),
                  (f"ray 1 replica, {value} ongoing", "uvicorn 1 worker"),
                  (f"ray 2 replicas, {value} ongoing", "uvicorn 2 workers")]
    for a, b in pairs:
        row = ratio(a, b)
        if row:
            lines.append(row)
    # The hand-written reading of the figures (from its heading on) survives a re-run: check it still holds.
    previous = out.read_text() if out.exists() else ""
    kept = previous[previous.index(READING) + 1:] if READING in previous else ""
    out.write_text("\n".join(lines).rstrip() + "\n" + ("\n" + kept if kept else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ray_scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=REPO / "model_store")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray cluster (default 2)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="per round and payload")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tool", default="auto", help="wrk, hey or python (default: the first installed)")
    parser.add_argument("--max-ongoing-requests", default="5,32",
                        help="requests a replica takes at once, comma-separated: each is measured (default 5,32; "
                        "5 is Ray's default)")
    parser.add_argument("--skip-uvicorn", action="store_true", help="measure Ray only")
    parser.add_argument("--out", type=Path, default=RESULTS / "ray.md")
    args = parser.parse_args(argv)

    import ray
    from ray import serve

    tool = pick_tool(args.tool)
    max_ongoing_values = [int(v) for v in args.max_ongoing_requests.split(",") if v.strip()]
    digits = load_digits(32)
    payloads = {"PNG upload": upload_payload(digits, f"/predict?model={MODEL}"),
                "JSON pixels": json_payload(digits, f"/predict?model={MODEL}")}
    ray_port, uvicorn_port = 18801, 18802
    started = time.monotonic()
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    runs: dict[str, dict[str, list[LoadResult]]] = {}
    try:
        for _ in range(args.rounds):
            for max_ongoing, replicas in itertools.product(max_ongoing_values, (1, 2)):
                name = f"ray {replicas} replica{'s' if replicas > 1 else ''}, {max_ongoing} ongoing"
                base = ray_deployment(args.store, replicas, ray_port, max_ongoing)
                for payload, result in measure(tool, base, payloads, args.concurrency, args.seconds,
                                               args.warmup).items():
                    runs.setdefault(name, {}).setdefault(payload, []).append(result)
                print(name, {k: round(v[-1].requests_per_s) for k, v in runs[name].items()}, flush=True)
            if not args.skip_uvicorn:
                serve.delete("digits")  # free the cores the replicas hold while uvicorn runs
                for workers in (1, 2):
                    name = f"uvicorn {workers} worker{'s' if workers > 1 else ''}"
                    with uvicorn_service(args.store, workers, uvicorn_port) as base:
                        for payload, result in measure(tool, base, payloads, args.concurrency, args.seconds,
                                                       args.warmup).items():
                            runs.setdefault(name, {}).setdefault(payload, []).append(result)
                    print(name, {k: round(v[-1].requests_per_s) for k, v in runs[name].items()}, flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()
    results = {config: {p: summarise(r) for p, r in per.items()} for config, per in runs.items()}
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": ".venv-ray/bin/python -m bench.ray_scale " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": platform.platform(), "cores": os.cpu_count(), "num_cpus": args.num_cpus, "tool": tool,
        "max_ongoing": max_ongoing_values, "concurrency": args.concurrency, "seconds": args.seconds, "warmup": args.warmup, "rounds": args.rounds,
        "wall_s": round(time.monotonic() - started),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_report(results, meta, args.out)
    raw = {"meta": meta, "results": results,
           "runs": {c: {p: [asdict(r) for r in rs] for p, rs in per.items()} for c, per in runs.items()}}
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=2) + "\n")
    print(f"wrote {args.out} ({meta['wall_s']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
