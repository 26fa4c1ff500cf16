"""Where a request's time goes: the service's worker sampled by py-spy under load, one request kind at a time.

    .venv/bin/python -m bench.profile_path --store model_store            # ~2 minutes
    .venv/bin/python -m bench.profile_path --kinds mnist_png,v2_binary_1 --seconds 4

Needs py-spy (`make .venv-profile`, or any py-spy on PATH) and wrk. One service worker (`python -m
service`, its defaults: access log and metrics on, as deployed); for each kind, wrk keeps the
connections busy while py-spy samples the worker's on-CPU stacks (`--nonblocking`: the worker is
never paused, so the profile costs it next to nothing). Each sample is put in one bucket by the
rules of `BUCKETS` (the first bucket whose rule matches, in order: inference before decode before
multipart ... before the event loop), and a bucket's share times the worker's CPU time per request
gives its milliseconds per request. The worker's CPU time comes from /proc, so the figures hold
whatever the sampler missed.

Writes bench/results/profile/report.md and report.json (or --out), with each kind's heaviest leaf
functions beside the buckets, so that a bucket's contents can be checked.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench import footprint, v2
from bench.loadgen import LoadResult, run_load
from bench.payloads import files_payload, load_digits, realistic_uploads, upload_payload
from bench.servers import RunningServer, server_spec
from bench.toolkit import REPO, process_cpu_seconds, write_report

PROFILE_VENV = REPO / ".venv-profile"
UPLOAD_CONCURRENCY = 32
"""The issue's figures: one worker, 32 connections, wrk on the same 2 cores."""


@dataclass(frozen=True)
class Bucket:
    name: str
    pattern: str
    """A regular expression searched in the sample's frames (`function (file:line)`)."""
    leaf_only: bool = False
    """Match the innermost frame only: for layers that wrap everything (middleware, event loop),
    whose own work is what the bucket means, not the work they call."""


BUCKETS = (
    Bucket("model inference (ONNX Runtime)", r"onnxruntime/|run \(service/models/sessions\.py"),
    Bucket("image decode (Pillow, OpenCV imdecode)", r"digit_frontend/decode\.py|\bPIL/"),
    Bucket("image preparation (digit_frontend)", r"digit_frontend/|service/inference/preparation\.py"),
    Bucket("multipart parsing", r"multipart/|starlette/formparsers\.py|_get_form|form \(starlette"),
    Bucket("logging (access log, log records)", r"\blogging/|uvicorn/logging\.py"),
    # The metrics middleware wraps every request: only prometheus_client's work, and the service's
    # recording code as the innermost frame, are the metrics' own cost.
    Bucket("metrics (prometheus_client)", r"prometheus_client/"),
    Bucket("metrics (the service's recording code)", r"service/observability/(metrics|latency)\.py", leaf_only=True),
    Bucket("V2 request decoding (JSON header, tensors)",
           r"inference_protocol/(rest_codec|tensors)\.py|orjson|json/decoder\.py|loads \(json"),
    Bucket("answer encoding (JSON, pydantic, V2 binary)",
           r"(render|init_headers|__init__) \(starlette/responses|fastapi/encoders\.py|serialize_response|pydantic|"
           r"json/encoder\.py|dumps \(json|service/schemas\.py"),
    Bucket("model lookup (registry, ranking)", r"service/models/registry\.py|digit_contract/ranking\.py"),
    Bucket("batcher and data plane", r"service/inference/dataplane\.py|inference_protocol/(plane|serving|batching)\.py"),
    Bucket("thread hop (thread pool, futures)", r"concurrent/futures|anyio/|run_in_executor|threading\.py|to_thread"),
    Bucket("middleware (limits, headers, CORS)", r"service/server/(limits|headers)\.py|starlette/middleware|fastapi/middleware",
           leaf_only=True),
    Bucket("routing and FastAPI (dependencies, validation)", r"fastapi/|starlette/(routing|requests|datastructures)\.py",
           leaf_only=True),
    Bucket("HTTP server (uvicorn, httptools)", r"uvicorn/|httptools|h11", leaf_only=True),
    Bucket("event loop (asyncio, uvloop)", r"\basyncio/|uvloop", leaf_only=True),
    Bucket("the service's own code (other)", r"service/|digit_contract/", leaf_only=True),
)
OTHER = "other (interpreter, libraries)"
WAITS = re.compile(r"^(Condition\.wait \(threading|_worker \(concurrent/futures/thread|Event\.wait|"
                   r"Runner\.run \(asyncio/runners|run_forever|select \(selectors)")
"""Innermost frames of a thread that waits (an idle pool thread, the event loop polling): py-spy's
--nonblocking sampling does not always see a waiting thread as idle. Such samples are counted apart
(`wait_share`) and left out of the buckets; uvloop's own C work is left out with them (it runs under
`Runner.run` and cannot be told apart from its polling), so the event-loop bucket is a lower bound."""
# py-spy names a frame `function (path:line)`, the path relative to site-packages or the repository.
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    """The py-spy to use: .venv-profile's, else one on PATH."""
    local = PROFILE_VENV / "bin" / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def bucket_of(frames: list[str]) -> str:
    """The first bucket whose rule matches the stack (root first, leaf last)."""
    whole = ";".join(frames)
    for bucket in BUCKETS:
        if re.search(bucket.pattern, frames[-1] if bucket.leaf_only else whole):
            return bucket.name
    return OTHER


def read_raw(text: str) -> Counter[tuple[str, ...]]:
    """py-spy's raw (collapsed) output: `frame;frame;... count` per line, root first."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def short_frame(frame: str) -> str:
    """`function (file.py)` with site-packages and the repository cut from the path, no line."""
    match = FRAME.match(frame)
    if match is None:
        return frame
    path = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", match["file"]).replace(str(REPO) + "/", "")
    return f"{match['function']} ({path})"


def summarise(stacks: Counter[tuple[str, ...]], cpu_ms_per_request: float) -> dict[str, Any]:
    waits = sum(count for stack, count in stacks.items() if WAITS.match(short_frame(stack[-1])))
    total = sum(stacks.values()) - waits
    buckets: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for stack, count in stacks.items():
        if WAITS.match(short_frame(stack[-1])):
            continue
        buckets[bucket_of(list(stack))] += count
        leaves[short_frame(stack[-1])] += count
    return {
        "samples": total,
        "wait_share": waits / max(1, total + waits),
        "buckets": [{"bucket": name, "share": count / total, "ms_per_request": cpu_ms_per_request * count / total}
                    for name, count in buckets.most_common()] if total else [],
        "top_leaves": [{"frame": frame, "share": count / total} for frame, count in leaves.most_common(12)]
        if total else [],
    }


# -- the run ---------------------------------------------------------------------------------------


def profile_kind(worker: int, load: Callable[[], LoadResult | dict[str, Any]], seconds: float, sampler: str,
                 rate: int, raw_path: Path) -> dict[str, Any]:
    """Load the worker for `seconds` while py-spy samples it; the figures and the stacks' summary."""
    load()  # warm-up at the same concurrency: caches, pools and the first requests' costs out of the way
    argv = [sampler, "record", "--pid", str(worker), "--rate", str(rate), "--duration", str(max(1, round(seconds))),
            "--nonblocking", "--format", "raw", "--output", str(raw_path)]
    recorder = threading.Thread(target=subprocess.run, args=(argv,),
                                kwargs={"capture_output": True, "check": False, "timeout": seconds + 60})
    cpu_before, threads_before = process_cpu_seconds(worker), thread_cpu_seconds(worker)
    recorder.start()
    result = load()
    cpu_s = process_cpu_seconds(worker) - cpu_before
    threads = {tid: spent - threads_before.get(tid, 0.0) for tid, spent in thread_cpu_seconds(worker).items()}
    recorder.join()
    figures = result.to_dict() if isinstance(result, LoadResult) else result
    requests = max(1, int(figures["requests"]))
    stacks = read_raw(raw_path.read_text()) if raw_path.exists() else Counter()
    # The main thread runs the event loop (HTTP, routing, middleware); the others are the pools' threads.
    loop_s = threads.get(worker, 0.0)
    return {"load": figures, "worker_cpu_s": cpu_s, "worker_cores": cpu_s / figures["seconds"],
            "event_loop_thread_share": loop_s / cpu_s if cpu_s else 0.0,
            "cpu_ms_per_request": cpu_s * 1000 / requests, **summarise(stacks, cpu_s * 1000 / requests)}


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU time (user + system) of each thread of a process so far, by thread id (/proc/<pid>/task)."""
    spent = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "stat").read_text()
        except OSError:
            continue  # a thread that ended meanwhile
        fields = text[text.rindex(")") + 2:].split()
        spent[int(task.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return spent


def loads(base_url: str, seconds: float, kinds: tuple[str, ...]) -> dict[str, Callable[[], LoadResult | dict[str, Any]]]:
    """One closed-loop load per request kind (built only for the kinds asked for)."""
    digits = load_digits(64)
    chosen: dict[str, Callable[[], LoadResult | dict[str, Any]]] = {}
    for kind in kinds:
        if kind == "mnist_png":
            payload = upload_payload(digits, "/predict", bodies=32)
        elif kind.startswith("v2_"):
            _, encoding, batch_text = kind.split("_")
            batch = int(batch_text)
            inputs = [v2.model_input(digits.images, batch, k * batch) for k in range(2)]
            url = f"{base_url}/v2/models/cnn/infer"
            if encoding == "binary":
                bodies = [v2.binary_body(x) for x in inputs]
                chosen[kind] = partial(v2.wrk_load, url, [b for b, _ in bodies], bodies[0][1],
                                       v2.CONCURRENCY[batch], seconds)
            else:
                chosen[kind] = partial(v2.wrk_load, url, [v2.json_body(x) for x in inputs], None,
                                       v2.CONCURRENCY[batch], seconds)
            continue
        else:
            payload = files_payload(realistic_uploads(kind, digits, count=8 if kind != "photo_12mp" else 4), "/predict")
        chosen[kind] = partial(run_load, "wrk", base_url, payload, UPLOAD_CONCURRENCY, seconds, timeout_s=30.0)
    return chosen


KINDS = ("mnist_png", "canvas", "scan", "photo_2mp", "photo_12mp", "v2_binary_1", "v2_binary_64", "v2_json_1")


def run(store: Path, out: Path, *, seconds: float, rate: int, kinds: tuple[str, ...],
        settings: dict[str, str] | None = None) -> dict[str, Any]:
    sampler = py_spy()
    if sampler is None:
        raise SystemExit("py-spy not found: `make .venv-profile` (or pip install py-spy)")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")
    spec = server_spec("service", 1, store)
    spec.env.update({f"DIGITS_{k.upper()}": v for k, v in (settings or {}).items()})
    results: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "seconds": seconds,
                               "rate_hz": rate, "settings": settings or {}, "cpus": os.cpu_count(),
                               "load_average_at_start": os.getloadavg(), "kinds": {}}
    with RunningServer(spec, out / "logs") as server:
        worker = footprint.worker_pids(server.pid)[0]
        for kind, load in loads(server.base_url, seconds, kinds).items():
            # The previous kind's queued requests (a 12 MP photo takes ~0.1 s each) must not be sampled.
            footprint.wait_until_idle(server.pid)
            results["kinds"][kind] = profile_kind(worker, load, seconds, sampler, rate, out / f"{kind}.raw.txt")
            got = results["kinds"][kind]
            print(f"   {kind}: {got['load']['requests_per_s']:.0f} req/s, {got['cpu_ms_per_request']:.2f} ms CPU/request, "
                  f"{got['samples']} samples", flush=True)
    results["load_average_at_end"] = os.getloadavg()
    return results


def render(results: dict[str, Any]) -> str:
    lines = ["# Where a request's time goes (py-spy, one worker under load)", "",
             f"Run {results['when']}, {results['seconds']:g} s per kind, py-spy at {results['rate_hz']} Hz "
             f"(--nonblocking), {results['cpus']} CPUs, load average {results['load_average_at_start'][0]:.1f} at the "
             f"start and {results['load_average_at_end'][0]:.1f} at the end; settings {results['settings'] or 'defaults'}. "
             "Per kind: the worker's CPU milliseconds per request (/proc), split by the samples' buckets.", ""]
    kinds = list(results["kinds"])
    names = [bucket.name for bucket in BUCKETS] + [OTHER]
    lines += ["| bucket (ms CPU per request) | " + " | ".join(kinds) + " |",
              "| --- |" + " ---: |" * len(kinds)]
    # Without --nonblocking py-spy pauses the worker at every sample: 35 req/s instead of 229 (MNIST PNG).
    rows: dict[str, Callable[[str], str]] = {
        "req/s (wrk)": lambda k: f"{results['kinds'][k]['load']['requests_per_s']:,.0f}",
        "worker CPU ms per request": lambda k: f"{results['kinds'][k]['cpu_ms_per_request']:.2f}",
        "worker cores busy": lambda k: f"{results['kinds'][k]['worker_cores']:.2f}",
        "event-loop thread's share of the CPU": lambda k: f"{results['kinds'][k]['event_loop_thread_share']:.0%}",
        "samples left out as waits": lambda k: f"{results['kinds'][k]['wait_share']:.0%}",
    }
    for label, cell in rows.items():
        lines.append(f"| **{label}** | " + " | ".join(cell(k) for k in kinds) + " |")
    for name in names:
        cells = []
        for kind in kinds:
            found = next((b for b in results["kinds"][kind]["buckets"] if b["bucket"] == name), None)
            cells.append(f"{found['ms_per_request']:.3f} ({found['share']:.0%})" if found else "-")
        if any(cell != "-" for cell in cells):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Heaviest leaf functions per kind (share of the worker's samples)", ""]
    for kind in kinds:
        leaves = ", ".join(f"`{leaf['frame']}` {leaf['share']:.0%}" for leaf in results["kinds"][kind]["top_leaves"][:8])
        lines.append(f"- **{kind}**: {leaves}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=REPO / "model_store")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "profile")
    parser.add_argument("--seconds", type=float, default=6.0, help="per kind (after as long a warm-up)")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a service setting (DIGITS_NAME), e.g. --set access_log=false")
    args = parser.parse_args(argv)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"unknown kinds {sorted(unknown)}; expected some of {KINDS}")
    settings = dict(item.split("=", 1) for item in args.set)
    args.out.mkdir(parents=True, exist_ok=True)
    results = run(args.store, args.out, seconds=args.seconds, rate=args.rate, kinds=kinds, settings=settings)
    write_report(args.out, results, render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
