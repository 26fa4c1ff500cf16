"""One command for the whole benchmark: kernels, HTTP side by side with the peers, payload kinds, footprint, report.

    .venv/bin/python -m bench --store model_store            # full run, about 20 minutes
    .venv/bin/python -m bench --store model_store --quick    # every step, short runs (5-8 minutes)
    .venv/bin/python -m bench --store model_store --only-payloads --skip-kernels --skip-footprint
        # the realistic payloads alone: in-process prep vs decode, then service / decode ceiling / naive ORT

Writes under --out (bench/results, or bench/results/quick for --quick): report.md and report.json (everything, with the targets
and Triton beside the service when .venv-triton exists: `make .venv-triton`),
kernels.{md,json}, http.json, and logs/ (one log per server started). See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import footprint, triton
from bench.http_suite import add_arguments, build_uploads, plan_from_args, run_suite, service_limits
from bench.loadgen import pick_tool
from bench.payloads import load_digits, upload_payload
from bench.preparation import measure_preparation
from bench.report import baseline_from, evaluate_targets, render_markdown
from bench.servers import RunningServer, server_spec
from bench.toolkit import REPO, ServerFailed
from digit_contract.store import list_models

BUSY_CORES = 0.3
"""Other processes using more than this many cores make the figures unreliable: say so in the report."""


def run_kernels(store: Path, out: Path, *, quick: bool, keras: bool) -> tuple[dict[str, Any], str]:
    """bench.kernels in its own process (TensorFlow stays out of the harness); its JSON and markdown."""
    argv = [sys.executable, "-m", "bench.kernels", "--store", str(store), "--out", str(out)]
    if quick:
        argv += ["--seconds", "0.5", "--batch", "512", "--gemm-size", "1024"]
    if not keras:
        argv.append("--no-keras")
    print("== kernels: " + " ".join(argv[1:]), flush=True)
    completed = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=1800, check=False)  # noqa: S603
    if completed.returncode != 0:
        return {"skipped": f"bench.kernels exited {completed.returncode}: {completed.stderr.strip()[-600:]}"}, ""
    return json.loads((out / "kernels.json").read_text()), (out / "kernels.md").read_text()


def measure_service_starts(store: Path, log_dir: Path, runs: int) -> tuple[list[dict[str, Any]], str]:
    """Start the service with 1 worker `runs` times from the serving venv (what the image runs).

    Each start is timed from spawn to ready; the worker's memory is read after it answered a few
    predictions with every model loaded. Falls back to this interpreter without the serving venv.
    """
    serve_python = footprint.SERVE_VENV / "bin" / "python"
    python = str(serve_python) if footprint.SERVE_MARKER.exists() else sys.executable
    spec = server_spec("service", 1, store, python=python)
    payload = upload_payload(load_digits(16), "/predict", bodies=16)
    starts = []
    for _ in range(runs):
        record: dict[str, Any] = {"python": python}
        try:
            with RunningServer(spec, log_dir) as server:
                record["ready_s"] = server.ready_s
                footprint.wait_for_workers(server.pid, 1)
                record["check"] = server.check(payload, samples=16)
                record["workers_memory"] = [m.to_dict() for m in footprint.workers_memory(server.pid)]
        except (ServerFailed, OSError) as error:
            record["error"] = f"{type(error).__name__}: {error}"
        starts.append(record)
        print(f"   service start: ready {record.get('ready_s') or 0:.2f} s, "
              f"RSS {[round(m['rss_mb']) for m in record.get('workers_memory', [])]} MB {record.get('error', '')}",
              flush=True)
    return starts, python


def describe_machine(store: Path, tool: str) -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                     if line.startswith("MemTotal"))
    git = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],  # noqa: S603, S607
                         capture_output=True, text=True, check=False).stdout.strip() or "?"
    loadgen = tool
    if tool == "wrk":  # hey has no version flag; the Debian package's is 0.1.4
        said = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)  # noqa: S607
        loadgen = " ".join((said.stdout + said.stderr).split()[:2]) or tool
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1e6, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "git": git,
        "store": str(store),
        "loadgen": loadgen,
        "command": shlex.join(["python", "-m", "bench", *sys.argv[1:]]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="short runs of every step (checks the harness)")
    parser.add_argument("--skip-kernels", action="store_true")
    parser.add_argument("--no-keras", action="store_true", help="kernels without the Keras side")
    parser.add_argument("--skip-footprint", action="store_true")
    parser.add_argument("--skip-triton", action="store_true",
                        help="skip Triton (PyTriton, .venv-triton) against the service on the same ONNX file")
    parser.add_argument("--footprint-starts", type=int, default=3, help="service starts timed to ready")
    parser.add_argument("--skip-preparation", action="store_true",
                        help="skip the in-process decode vs prepare measurement of the payload kinds")
    parser.add_argument("--baseline", type=Path, default=Path("bench/results/report.json"),
                        help="the committed report the MNIST path is compared with (read before it is overwritten)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup = min(args.seconds, 2.0), min(args.warmup, 1.0)
        args.concurrency, args.batch_concurrency, args.footprint_starts = (1, 32), (32,), 1
    if not list_models(args.store):
        parser.error(f"no models in {args.store} (use --store DIR with <name>/<version>/model.onnx + card.json)")
    # A quick run checks the harness: it must not overwrite the report of a full run.
    out: Path = args.out or Path("bench/results/quick" if args.quick else "bench/results")
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # Read first: a full run writes its own report over this very file.
    baseline = (baseline_from(json.loads(args.baseline.read_text()), str(args.baseline))
                if args.baseline.is_file() else None)

    tool = pick_tool(args.loadgen)
    args.loadgen = tool
    report: dict[str, Any] = {"meta": describe_machine(args.store, tool), "warnings": [], "baseline": baseline}
    if tool == "python":
        report["warnings"].append("neither wrk nor hey is installed (apt-get install -y wrk): the pure-Python "
                                  "load loop saturates first, so the fast targets' figures are the client's limit")
    print("== machine state", flush=True)
    report["machine_before"] = footprint.machine_state()
    busy = [p for p in report["machine_before"]["busy_processes"] if p["cpu_cores"] >= BUSY_CORES]
    if busy:
        report["warnings"].append("other processes were busy when the run started, figures are not reliable: "
                                  + "; ".join(f"{p['command'][:80]} ({p['cpu_cores']} cores)" for p in busy))
        print(f"WARNING: {report['warnings'][-1]}", flush=True)

    if args.skip_kernels:
        report["kernels"] = {"skipped": "--skip-kernels"}
    else:
        report["kernels"], report["kernels_markdown"] = run_kernels(args.store, out, quick=args.quick,
                                                                    keras=not args.no_keras)

    plan = plan_from_args(args)
    print(f"== payloads: rendering {', '.join(plan.payloads) or 'none'}", flush=True)
    uploads = build_uploads(plan, load_digits())
    if uploads and not args.skip_preparation:
        # Before any server runs: the machine is as quiet as it will be.
        print("== preparation (in-process, one thread): reference decode vs the service's prepare_file", flush=True)
        report["preparation"] = measure_preparation(
            uploads, max_pixels=service_limits(uploads, {}).max_image_pixels,
            min_samples=5 if args.quick else 15, budget_s=0.05 if args.quick else 0.5)
    report["http"] = run_suite(args.store, out, plan, tool=tool, seconds=args.seconds, warmup_s=args.warmup,
                               uploads=uploads)
    report["warnings"] += report["http"]["service_limits"]["notes"]
    disturbed = [r for r in report["http"]["runs"] if (r.get("other_cpu_cores") or 0) >= BUSY_CORES]
    if disturbed:
        report["warnings"].append(f"{len(disturbed)} of {len(report['http']['runs'])} load runs shared the CPU "
                                  f"with other processes (>= {BUSY_CORES} cores, see the `other CPU` column)")

    if args.skip_triton:
        report["triton"] = {"skipped": "--skip-triton"}
    else:
        # Optional: without .venv-triton or a Triton that starts, the report says why and goes on.
        print("== triton: the same ONNX file, V2 binary, JSON and gRPC", flush=True)
        report["triton"] = triton.run(args.store, out, seconds=1.0 if args.quick else 3.0,
                                      rounds=1 if args.quick else 3)

    report["footprint"] = {}
    if not args.skip_footprint:
        print("== footprint", flush=True)
        problem = footprint.ensure_serve_venv()
        if problem is None:
            report["footprint"]["serving"] = footprint.serving_footprint(store=args.store)
        else:
            report["footprint"]["serving_error"] = problem
        starts, python = measure_service_starts(args.store, out / "logs", args.footprint_starts)
        report["footprint"]["service_starts"] = starts
        report["footprint"]["service_python"] = python

    report["machine_after"] = footprint.machine_state()
    report["meta"]["duration_s"] = round(time.monotonic() - started)
    report["targets"] = [t.to_dict() for t in evaluate_targets(report)]
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "report.md").write_text(render_markdown(report) + "\n" + triton.render(report["triton"]))
    print(f"\n{out / 'report.md'} written in {report['meta']['duration_s']} s", flush=True)
    for target in report["targets"]:
        print(f"  {target['status']:<5} {target['name']}: {target['measured']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
