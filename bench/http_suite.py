"""HTTP load runs: every target on the same machine, the same worker count, the same digits.

A run is a list of sessions. A session starts one target (bench/servers.py), times it to ready,
waits for all its workers to load, checks its answers, then drives each of its scenarios at each
concurrency for a fixed duration after a warm-up, records per run the server's and the load
generator's CPU use, reads the workers' memory, and stops the target.

Default plan (N = --workers):
- ceiling (N): single upload, bodiless GET, batch upload;
- naive_ort, naive_keras, bentoml (N): single upload;
- service (N): single upload, batch upload, JSON pixels (1 image and a batch);
- service (1) and ceiling (1): single upload, for the scaling ratios;
- per payload kind (bench/payloads.py PAYLOAD_KINDS, --payloads), at 1 and N workers, c=32: the
  service, the decode ceiling and the naive ORT peer, on the same bodies (`--only-payloads`: these
  runs alone). The `mnist_png` kind is the single upload above, so those runs are shared.

    python -m bench.http_suite --store model_store --seconds 10      # writes bench/results/http.json
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import footprint
from bench.loadgen import LoadGeneratorFailed, pick_tool, run_load
from bench.payloads import (
    PAYLOAD_KINDS,
    Digits,
    Payload,
    UploadFile,
    files_payload,
    get_payload,
    json_payload,
    load_digits,
    realistic_uploads,
    upload_payload,
)
from bench.servers import RunningServer, ServerSpec, ensure_bento_venv, server_spec
from bench.toolkit import ServerFailed, process_cpu_seconds, tree_cpu_seconds

ALL_TARGETS = ("ceiling", "decode_ceiling", "naive_ort", "naive_keras", "bentoml", "service")
PAYLOAD_TARGETS = ("service", "decode_ceiling", "naive_ort")
"""The targets every payload kind runs against: ours and its two references."""
SERVICE_MAX_FILES = 16
"""The service's default DIGITS_MAX_FILES_PER_REQUEST: a larger --batch-size raises it for the run."""
PAYLOAD_TIMEOUT_S = 30.0
"""Load generator timeout for the payload kinds: a naive peer decoding 12 MP photos whole on its
event loop answers 32 queued connections in seconds; that is slow, not an error."""


def kind_scenario(kind: str) -> str:
    """The scenario name of a payload kind: `mnist_png` is round 1's `upload`, so old reports still match."""
    return "upload" if kind == "mnist_png" else f"upload_{kind}"


@dataclass(frozen=True)
class Scenario:
    name: str
    """upload, get, upload_batch, json, json_batch, upload_<payload kind>."""
    payload: Payload
    concurrency: tuple[int, ...]
    kind: str | None = None
    """The payload kind (PAYLOAD_KINDS) of an upload scenario."""
    timeout_s: float | None = None
    """Per-request timeout of the load generator, when not the run's default."""


@dataclass(frozen=True)
class Session:
    spec: ServerSpec
    role: str
    """`compare` (the side-by-side at N workers) or `scaling` (the 1-worker runs)."""
    scenarios: tuple[Scenario, ...]


@dataclass(frozen=True)
class Plan:
    workers: int = 2
    concurrency: tuple[int, ...] = (1, 8, 32, 64)
    batch_concurrency: tuple[int, ...] = (1, 32)
    batch_size: int = 16
    scaling_concurrency: tuple[int, ...] = (1, 8, 32, 64)
    model: str = "cnn_dropout"
    targets: tuple[str, ...] = ALL_TARGETS
    scaling: bool = True
    payloads: tuple[str, ...] = tuple(PAYLOAD_KINDS)
    payload_concurrency: tuple[int, ...] = (32,)
    only_payloads: bool = False
    """Only the payload-kind runs (service, decode ceiling, naive ORT), none of round 1's other runs."""
    quick: bool = False
    """Fewer distinct bodies per payload kind (PayloadKind.quick_bodies)."""


def build_uploads(plan: Plan, digits: Digits) -> dict[str, list[UploadFile]]:
    """The files of every payload kind of the plan: built once, sent over HTTP and timed in-process."""
    uploads = {}
    for kind in plan.payloads:
        spec = PAYLOAD_KINDS[kind]
        uploads[kind] = realistic_uploads(kind, digits, count=spec.quick_bodies if plan.quick else spec.bodies)
    return uploads


@dataclass(frozen=True)
class ServiceLimits:
    """The request limits the service and the decode ceiling run with, and why they differ from the defaults."""

    max_image_pixels: int
    max_upload_bytes: int
    env: dict[str, str]
    """DIGITS_* overrides of the service's defaults (empty when the defaults admit every body)."""
    notes: list[str]


def service_limits(uploads: dict[str, list[UploadFile]], payloads: dict[str, Payload]) -> ServiceLimits:
    """Raise the service's pixel and body limits where its defaults would refuse a payload's bodies.

    A refused body (413) would make the run measure refusals. The report says which limits were
    raised: a default that refuses what users send is a finding in itself.
    """
    from service.settings import Settings  # the service's own defaults, whatever they are today

    settings = Settings()
    pixels, size = settings.max_image_pixels, settings.max_upload_bytes
    env: dict[str, str] = {}
    notes = []
    largest = max((f.width * f.height for files in uploads.values() for f in files), default=0)
    if largest > pixels:
        env["DIGITS_MAX_IMAGE_PIXELS"] = str(largest)
        notes.append(f"the service's DIGITS_MAX_IMAGE_PIXELS ({pixels:,}) refuses the largest body ({largest:,} "
                     f"pixels) with 413: raised to {largest:,} for this run")
        pixels = largest
    biggest = max((len(b) for payload in payloads.values() for b in payload.bodies), default=0)
    if biggest > size:
        env["DIGITS_MAX_UPLOAD_BYTES"] = str(biggest)
        notes.append(f"the service's DIGITS_MAX_UPLOAD_BYTES ({size:,}) refuses the largest body ({biggest:,} "
                     f"bytes) with 413: raised to {biggest:,} for this run")
        size = biggest
    return ServiceLimits(pixels, size, env, notes)


def _merged(scenarios: list[Scenario], extra: list[Scenario]) -> tuple[Scenario, ...]:
    """`scenarios` then `extra`, one scenario per name (concurrency levels united, the kind kept)."""
    by_name = {s.name: s for s in scenarios}
    for scenario in extra:
        if scenario.name in by_name:
            known = by_name[scenario.name]
            by_name[scenario.name] = replace(known, concurrency=tuple(sorted({*known.concurrency,
                                                                               *scenario.concurrency})),
                                             kind=scenario.kind, timeout_s=scenario.timeout_s)
        else:
            by_name[scenario.name] = scenario
    return tuple(by_name.values())


def build_sessions(plan: Plan, store: Path, digits: Digits, kinds: dict[str, Payload] | None = None,
                   limits: ServiceLimits | None = None) -> list[Session]:
    """The sessions of one run, in the order they run.

    `kinds` are the payload-kind uploads (path included); `limits` the service's limits for them.
    """
    predict = f"/predict?model={plan.model}"
    upload = upload_payload(digits, predict)
    batch = upload_payload(digits, predict, per_request=plan.batch_size, bodies=8)
    kinds = kinds or {}

    def kind_scenarios(key: str) -> list[Scenario]:
        if key not in PAYLOAD_TARGETS:
            return []
        return [Scenario(kind_scenario(kind), payload, plan.payload_concurrency, kind, PAYLOAD_TIMEOUT_S)
                for kind, payload in kinds.items()]

    def with_limits(spec: ServerSpec) -> ServerSpec:
        if limits is None or spec.key not in PAYLOAD_TARGETS:
            return spec
        # The decode ceiling checks the header against the same pixel limit as the service.
        env = limits.env if spec.key == "service" else {"BENCH_MAX_IMAGE_PIXELS": str(limits.max_image_pixels)}
        return replace(spec, env={**spec.env, **env})

    sessions = []
    for key in plan.targets:
        spec = with_limits(server_spec(key, plan.workers, store))
        scenarios = []
        if not plan.only_payloads and key != "decode_ceiling":
            scenarios = [Scenario("upload", upload, plan.concurrency, "mnist_png")]
            if key == "ceiling":
                scenarios += [Scenario("get", get_payload("/constant"), plan.concurrency),
                              Scenario("upload_batch", batch, plan.batch_concurrency)]
            if key == "service":
                if plan.batch_size > SERVICE_MAX_FILES:
                    spec = replace(spec, env={**spec.env, "DIGITS_MAX_FILES_PER_REQUEST": str(plan.batch_size)})
                scenarios += [
                    Scenario("upload_batch", batch, plan.batch_concurrency),
                    Scenario("json", json_payload(digits, predict), plan.batch_concurrency),
                    Scenario("json_batch", json_payload(digits, predict, per_request=plan.batch_size, bodies=8),
                             plan.batch_concurrency),
                ]
        merged = _merged(scenarios, kind_scenarios(key))
        if merged:
            sessions.append(Session(spec, "compare", merged))
    if plan.scaling and plan.workers != 1:
        for key in ("service", "ceiling", "decode_ceiling", "naive_ort"):
            if key not in plan.targets:
                continue
            scenarios = []
            if not plan.only_payloads and key in ("service", "ceiling"):
                scenarios = [Scenario("upload", upload, plan.scaling_concurrency, "mnist_png")]
            merged = _merged(scenarios, kind_scenarios(key))
            if merged:
                sessions.append(Session(with_limits(server_spec(key, 1, store)), "scaling", merged))
    return sessions


def run_session(session: Session, *, tool: str, seconds: float, warmup_s: float, log_dir: Path,
                timeout_s: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Start the target, run its scenarios, stop it. Returns the server's record and the runs."""
    spec = session.spec
    record: dict[str, Any] = {"key": spec.key, "label": spec.label, "workers": spec.workers, "role": session.role,
                              "ready_s": None, "error": None, "checks": {}, "workers_memory": []}
    runs: list[dict[str, Any]] = []
    print(f"== {spec.key} ({spec.workers} worker{'s' if spec.workers > 1 else ''}, {session.role})", flush=True)
    try:
        with RunningServer(spec, log_dir) as server:
            record["ready_s"] = server.ready_s
            record["log"] = str(server.log_path)
            # Ready answers as soon as one worker is up: wait for all of them to finish loading.
            pids = footprint.wait_for_workers(server.pid, spec.workers)
            record["worker_pids"] = pids
            for scenario in session.scenarios:
                # A scenario that fails (a path the target does not serve) leaves the others to run.
                try:
                    # Every body of a payload kind is checked: how many each target reads right is
                    # part of the report, and a hard photo answered 422 must not fail the session.
                    record["checks"][scenario.name] = (
                        server.check(scenario.payload, samples=len(scenario.payload.bodies), allow_refusals=True)
                        if scenario.kind not in (None, "mnist_png") else server.check(scenario.payload))
                    run_timeout = scenario.timeout_s or timeout_s
                    run_load(tool, server.base_url, scenario.payload, max(scenario.concurrency), warmup_s,
                             timeout_s=run_timeout)
                    for concurrency in scenario.concurrency:
                        runs.append(_measure(server, session, scenario, tool, concurrency, seconds, run_timeout,
                                             pids))
                except (ServerFailed, LoadGeneratorFailed) as error:
                    record.setdefault("scenario_errors", {})[scenario.name] = f"{type(error).__name__}: {error}"
                    print(f"   {scenario.name} FAILED: {str(error)[:400]}", flush=True)
            record["workers_memory"] = [m.to_dict() for m in footprint.workers_memory(server.pid)]
    except (ServerFailed, LoadGeneratorFailed, OSError) as error:
        record["error"] = f"{type(error).__name__}: {error}"
        print(f"   FAILED: {record['error'][:400]}", flush=True)
    return record, runs


LOPSIDED = 0.25
"""A run where a worker used less than this share of the busiest worker's CPU was lopsided."""
MAX_ATTEMPTS = 3


def worker_balance(row: dict[str, Any]) -> float:
    """Least busy worker's CPU over the busiest's: 1.0 is even, 0.0 is one worker doing everything."""
    cores = row["worker_cpu_cores"]
    return min(cores) / max(cores) if len(cores) > 1 and max(cores) > 0 else 1.0


def is_lopsided(row: dict[str, Any]) -> bool:
    # With fewer connections than twice the workers an uneven split is the arithmetic, not the kernel.
    return len(row["worker_cpu_cores"]) > 1 and row["concurrency"] >= 2 * len(row["worker_cpu_cores"]) \
        and worker_balance(row) < LOPSIDED


def _measure(server: RunningServer, session: Session, scenario: Scenario, tool: str, concurrency: int,
             seconds: float, timeout_s: float, worker_pids: list[int]) -> dict[str, Any]:
    """One measured point. A lopsided run is repeated (up to MAX_ATTEMPTS) and the most even one kept.

    Uvicorn's workers (and BentoML's) share one listening socket, and the worker that wakes first
    may accept every connection the load generator opens at once; with keep-alive those stay on it
    for the whole run and the other worker idles. That measures the kernel's luck, not the app's
    capacity, so such runs are retried, and how many were lopsided is kept in the row.
    """
    attempts = []
    for _ in range(MAX_ATTEMPTS):
        attempts.append(_measure_once(server, session, scenario, tool, concurrency, seconds, timeout_s, worker_pids))
        if not is_lopsided(attempts[-1]):
            break
    row = max(attempts, key=worker_balance)
    row["attempts_requests_per_s"] = [a["requests_per_s"] for a in attempts]
    row["lopsided_attempts"] = sum(is_lopsided(a) for a in attempts)
    return row


def _measure_once(server: RunningServer, session: Session, scenario: Scenario, tool: str, concurrency: int,
                  seconds: float, timeout_s: float, worker_pids: list[int]) -> dict[str, Any]:
    drained_s = footprint.wait_until_idle(server.pid)  # the warm-up's or the previous run's last requests
    # The load generator is this process's only child that exits during the run, so the children's
    # rusage delta is its CPU time; the server's comes from /proc.
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = tree_cpu_seconds(server.pid)
    workers_before = [process_cpu_seconds(pid) for pid in worker_pids]
    machine_before = footprint.machine_busy_seconds()
    started = time.monotonic()
    with footprint.RssSampler(worker_pids) as rss:
        result = run_load(tool, server.base_url, scenario.payload, concurrency, seconds, timeout_s=timeout_s)
    wall = time.monotonic() - started
    after = [footprint.memory_of(pid) for pid in worker_pids]
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = tree_cpu_seconds(server.pid) - server_before
    workers_cpu = [process_cpu_seconds(pid) - before for pid, before in zip(worker_pids, workers_before,
                                                                                       strict=True)]
    machine_cpu = footprint.machine_busy_seconds() - machine_before
    loadgen_cpu = (children_after.ru_utime + children_after.ru_stime) - (children_before.ru_utime
                                                                         + children_before.ru_stime)
    row = {
        "server": session.spec.key,
        "workers": session.spec.workers,
        "role": session.role,
        "scenario": scenario.name,
        "payload": scenario.kind,
        "images_per_request": scenario.payload.images_per_request,
        **result.to_dict(),
        "images_per_s": result.requests_per_s * scenario.payload.images_per_request,
        "drained_s": round(drained_s, 2),
        "server_cpu_cores": server_cpu / wall,
        "worker_cpu_cores": [cpu / wall for cpu in workers_cpu],
        "loadgen_cpu_cores": loadgen_cpu / wall if tool != "python" else None,
        # Everything else that ran meanwhile (this harness included, which sleeps): should be ~0.
        "other_cpu_cores": max(0.0, machine_cpu - server_cpu - loadgen_cpu) / wall if tool != "python" else None,
        # Per worker: the largest RSS sampled during the run, RSS right after it, and the lifetime peak.
        "workers_rss_max_mb": [round(rss.max_mb[pid], 1) for pid in worker_pids],
        "workers_rss_after_mb": [round(m.rss_mb, 1) if m else None for m in after],
        "workers_hwm_mb": [round(m.hwm_mb, 1) if m else None for m in after],
    }
    p50 = f"{row['p50_ms']:.1f}" if row["p50_ms"] is not None else "-"
    p99 = f"{row['p99_ms']:.1f}" if row["p99_ms"] is not None else "-"
    split = "/".join(f"{c:.2f}" for c in row["worker_cpu_cores"])
    print(f"   {scenario.name:<13} c={concurrency:<3} {row['requests_per_s']:9.1f} req/s  p50 {p50:>7} ms  "
          f"p99 {p99:>7} ms  errors {row['errors']}  cores: server {row['server_cpu_cores']:.2f} ({split}) "
          f"loadgen {row['loadgen_cpu_cores'] or 0:.2f} other {row['other_cpu_cores'] or 0:.2f}"
          + ("  LOPSIDED" if is_lopsided(row) else ""), flush=True)
    return row


def describe_uploads(uploads: dict[str, list[UploadFile]]) -> dict[str, dict[str, Any]]:
    """What each payload kind sent: for the report."""
    return {kind: {"description": PAYLOAD_KINDS[kind].description, "bodies": len(files),
                   "formats": sorted({f.format for f in files}),
                   "sizes": sorted({f"{f.width}x{f.height}" for f in files}),
                   "mean_bytes": round(sum(len(f.data) for f in files) / len(files)) if files else 0,
                   "labels": [f.label for f in files]}
            for kind, files in uploads.items()}


def run_suite(store: Path, out: Path, plan: Plan, *, tool: str = "auto", seconds: float = 10.0,
              warmup_s: float = 2.0, timeout_s: float = 10.0,
              uploads: dict[str, list[UploadFile]] | None = None) -> dict[str, Any]:
    """Run every session of the plan; the result is what http.json holds.

    `uploads` are the payload kinds' files (build_uploads), when the caller already made them.
    """
    tool = pick_tool(tool)
    digits = load_digits()
    uploads = build_uploads(plan, digits) if uploads is None else uploads
    predict = f"/predict?model={plan.model}"
    # mnist_png's payload is round 1's single upload itself (the same 32 bodies), not a copy.
    kinds = {kind: upload_payload(digits, predict) if kind == "mnist_png" else files_payload(files, predict)
             for kind, files in uploads.items()}
    limits = service_limits(uploads, kinds)
    for note in limits.notes:
        print(f"NOTE: {note}", flush=True)
    suite: dict[str, Any] = {"tool": tool, "seconds": seconds, "warmup_s": warmup_s, "plan": {
        "workers": plan.workers, "concurrency": plan.concurrency, "batch_concurrency": plan.batch_concurrency,
        "batch_size": plan.batch_size, "model": plan.model, "targets": plan.targets, "payloads": plan.payloads,
        "payload_concurrency": plan.payload_concurrency, "only_payloads": plan.only_payloads},
        "payloads": describe_uploads(uploads), "service_limits": {
            "max_image_pixels": limits.max_image_pixels, "max_upload_bytes": limits.max_upload_bytes,
            "env": limits.env, "notes": limits.notes},
        "servers": [], "runs": []}
    # The other targets have nothing to run then: do not build BentoML's venv for nothing.
    targets = tuple(t for t in plan.targets if t in PAYLOAD_TARGETS) if plan.only_payloads else plan.targets
    if "bentoml" in targets and (problem := ensure_bento_venv()) is not None:
        print(f"BentoML peer skipped: {problem}", flush=True)
        suite["servers"].append({"key": "bentoml", "label": "BentoML", "workers": plan.workers, "role": "compare",
                                 "error": problem})
        targets = tuple(t for t in targets if t != "bentoml")
    sessions = build_sessions(Plan(**{**plan.__dict__, "targets": targets}), store, digits, kinds, limits)
    for session in sessions:
        record, runs = run_session(session, tool=tool, seconds=seconds, warmup_s=warmup_s,
                                   log_dir=out / "logs", timeout_s=timeout_s)
        suite["servers"].append(record)
        suite["runs"] += runs
    return suite


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k for k in text.split(",") if k and k != "none")
    unknown = sorted(set(kinds) - set(PAYLOAD_KINDS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown payload kinds {unknown}; choose from {','.join(PAYLOAD_KINDS)}")
    return kinds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", type=Path, default=Path("model_store"), help="model store every target serves")
    parser.add_argument("--out", type=Path, default=None, help="results directory (default bench/results)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of every target")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each measured run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured load before each scenario, seconds")
    parser.add_argument("--concurrency", type=_ints, default=(1, 8, 32, 64))
    parser.add_argument("--batch-concurrency", type=_ints, default=(1, 32))
    parser.add_argument("--batch-size", type=int, default=16, help="images per batch request (service cap: 16)")
    parser.add_argument("--targets", default=",".join(ALL_TARGETS), help=f"subset of {','.join(ALL_TARGETS)}")
    parser.add_argument("--no-scaling", action="store_true", help="skip the 1-worker runs")
    parser.add_argument("--loadgen", default="auto", choices=["auto", "wrk", "hey", "python"])
    parser.add_argument("--model", default="cnn_dropout",
                        help="model every target answers with (default: the service's default model)")
    parser.add_argument("--payloads", type=_kinds, default=tuple(PAYLOAD_KINDS),
                        help=f"payload kinds, comma-separated, or none (default: all of {','.join(PAYLOAD_KINDS)})")
    parser.add_argument("--only-payloads", action="store_true",
                        help="only the payload-kind runs: service, decode ceiling and naive ORT at 1 and N workers")


def plan_from_args(args: argparse.Namespace) -> Plan:
    targets = tuple(t for t in args.targets.split(",") if t)
    unknown = set(targets) - set(ALL_TARGETS)
    if unknown:
        raise SystemExit(f"unknown targets {sorted(unknown)}; choose from {ALL_TARGETS}")
    return Plan(workers=args.workers, concurrency=args.concurrency, batch_concurrency=args.batch_concurrency,
                batch_size=args.batch_size, scaling_concurrency=args.concurrency, model=args.model, targets=targets,
                scaling=not args.no_scaling, payloads=args.payloads, only_payloads=args.only_payloads,
                quick=getattr(args, "quick", False))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    out: Path = args.out or Path("bench/results")
    suite = run_suite(args.store, out, plan_from_args(args), tool=args.loadgen, seconds=args.seconds,
                      warmup_s=args.warmup)
    out.mkdir(parents=True, exist_ok=True)
    (out / "http.json").write_text(json.dumps(suite, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
