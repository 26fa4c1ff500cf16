"""The report of one run: ratios against the baselines measured in the same run, and the targets.

Absolute figures drift from machine to machine and from hour to hour on a shared one; ratios taken
within one run on one machine do not (much), so every comparison below is a ratio of two numbers
from the same run. `evaluate_targets` turns the spec's targets into PASS / MISS / n/a rows.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.servers import LABELS

PEERS = ("ceiling", "naive_ort", "naive_keras", "bentoml")
TARGET_CONCURRENCY = 32


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    measured: str
    status: str
    """PASS, MISS or n/a (not measured in this run)."""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "goal": self.goal, "measured": self.measured, "status": self.status}


def find_run(report: dict[str, Any], server: str, scenario: str, concurrency: int, *,
             role: str = "compare") -> dict[str, Any] | None:
    runs: list[dict[str, Any]] = report.get("http", {}).get("runs", [])
    for run in runs:
        if (run["server"], run["scenario"], run["concurrency"], run["role"]) == (server, scenario, concurrency, role):
            return run
    return None


def rps(report: dict[str, Any], server: str, scenario: str, concurrency: int, *, role: str = "compare") -> float | None:
    run = find_run(report, server, scenario, concurrency, role=role)
    return run["requests_per_s"] if run else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _status(value: float | None, ok: Callable[[float], bool]) -> str:
    if value is None:
        return "n/a"
    return "PASS" if ok(value) else "MISS"


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def service_worker_rss(report: dict[str, Any]) -> float | None:
    """Largest RSS of a service worker seen in the run (load sessions and footprint starts)."""
    values = [m["rss_mb"] for server in report.get("http", {}).get("servers", []) if server["key"] == "service"
              for m in server.get("workers_memory", [])]
    for start in report.get("footprint", {}).get("service_starts", []):
        values += [m["rss_mb"] for m in start.get("workers_memory", [])]
    return max(values) if values else None


def service_ready_s(report: dict[str, Any]) -> float | None:
    """Median time from spawn to ready of the footprint starts (1 worker, serving venv)."""
    times = [s["ready_s"] for s in report.get("footprint", {}).get("service_starts", []) if s.get("ready_s")]
    return statistics.median(times) if times else None


def cnn_limit_share(report: dict[str, Any]) -> tuple[float | None, str]:
    """Lowest share of the compute limit reached by a CNN in ONNX Runtime at large batch, and which."""
    kernels = report.get("kernels") or {}
    peak = kernels.get("peak_gflops")
    rows = [r for r in kernels.get("models", []) if r["model"].startswith("cnn")]
    if not peak or not rows:
        return None, "-"
    shares = {r["model"]: r["ort_images_per_s"] / (peak * 1e9 / r["flops_per_image"]) for r in rows}
    worst = min(shares, key=lambda name: shares[name])
    return shares[worst], worst


def evaluate_targets(report: dict[str, Any]) -> list[Target]:
    """The spec's targets, each measured in this run."""
    c = TARGET_CONCURRENCY
    ours = rps(report, "service", "upload", c)
    targets = []

    def upload_ratio(name: str, goal: str, peer: str, ok: Callable[[float], bool], as_share: bool = False) -> None:
        value = ratio(ours, rps(report, peer, "upload", c))
        shown = _fmt(value, ".0%") if as_share else _fmt(value, ".2f", "x")
        measured = f"{shown} ({_fmt(ours, ',.0f')} vs {_fmt(rps(report, peer, 'upload', c), ',.0f')} req/s)"
        targets.append(Target(name, goal, measured, _status(value, ok)))

    upload_ratio(f"/predict c={c} vs upload ceiling", ">= 60% of the ceiling", "ceiling", lambda v: v >= 0.6, True)
    upload_ratio(f"/predict c={c} vs naive ORT", ">= 1.0x", "naive_ort", lambda v: v >= 1.0)
    upload_ratio(f"/predict c={c} vs naive Keras", ">= 10x", "naive_keras", lambda v: v >= 10.0)
    upload_ratio(f"/predict c={c} vs BentoML", "> 1.0x", "bentoml", lambda v: v > 1.0)

    share, model = cnn_limit_share(report)
    targets.append(Target("CNN large-batch inference vs compute limit", ">= 50% of the limit (worst CNN)",
                           f"{_fmt(share, '.0%')} ({model})", _status(share, lambda v: v >= 0.5)))
    rss = service_worker_rss(report)
    targets.append(Target("Resident memory per worker, six models", "<= 150 MB", _fmt(rss, ".0f", " MB"),
                          _status(rss, lambda v: v <= 150)))
    ready = service_ready_s(report)
    targets.append(Target("Start to ready (1 worker)", "< 2 s", _fmt(ready, ".2f", " s"),
                          _status(ready, lambda v: v < 2.0)))

    workers = report.get("http", {}).get("plan", {}).get("workers", 2)
    scaled = ratio(ours, rps(report, "service", "upload", c, role="scaling"))
    ceiling_scaled = ratio(rps(report, "ceiling", "upload", c), rps(report, "ceiling", "upload", c, role="scaling"))
    targets.append(Target(f"Scaling, {workers} workers / 1 worker (c={c})", ">= 1.6x",
                          f"{_fmt(scaled, '.2f', 'x')} (the ceiling app: {_fmt(ceiling_scaled, '.2f', 'x')})",
                          _status(scaled, lambda v: v >= 1.6)))

    serving = report.get("footprint", {}).get("serving") or {}
    if "forbidden_distributions" in serving:
        clean = not serving["forbidden_distributions"] and not serving["tensorflow_importable"]
        found = ", ".join(serving["forbidden_distributions"]) or "none"
        targets.append(Target("TensorFlow absent from the serving image", "absent",
                              f"training-only distributions found: {found}", "PASS" if clean else "MISS"))
    else:
        targets.append(Target("TensorFlow absent from the serving image", "absent", "not measured", "n/a"))

    service_runs = [r for r in report.get("http", {}).get("runs", []) if r["server"] == "service"]
    errors = sum(r["errors"] for r in service_runs)
    targets.append(Target("No errors under load (every service run)", "0 errors",
                          f"{errors} errors in {len(service_runs)} runs" if service_runs else "-",
                          _status(errors if service_runs else None, lambda v: v == 0)))
    return targets


# -- markdown ----------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---" if a == "l" else "---:" for a in align]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |",
            *("| " + " | ".join(row) + " |" for row in rows), ""]


def _server_records(report: dict[str, Any]) -> list[dict[str, Any]]:
    servers: list[dict[str, Any]] = report.get("http", {}).get("servers", [])
    return servers


def render_markdown(report: dict[str, Any]) -> str:
    http = report.get("http", {})
    plan = http.get("plan", {})
    workers = plan.get("workers", "?")
    levels = list(plan.get("concurrency", []))
    meta = report.get("meta", {})
    lines = [f"# Benchmark report ({meta.get('date', '?')})", ""]
    lines += [f"Command: `{meta.get('command', '?')}`", ""]
    lines += _machine_section(report)

    lines += ["## Targets", ""]
    lines += _table(["target", "goal", "measured", "status"],
                    [[t["name"], t["goal"], t["measured"], f"**{t['status']}**"] for t in report.get("targets", [])],
                    "llll")

    lines += [f"## Single-image PNG upload, {workers} workers everywhere: requests/s", ""]
    keys = ["service", *PEERS]
    rows = []
    for key in keys:
        rows.append([LABELS[key], *(_fmt(rps(report, key, "upload", c), ",.0f") for c in levels)])
    rows.append([LABELS["get_constant"], *(_fmt(rps(report, "ceiling", "get", c), ",.0f") for c in levels)])
    lines += _table(["target", *(f"c={c}" for c in levels)], rows)

    lines += ["Ratios, ours against each peer at the same concurrency (same run):", ""]
    ours = {c: rps(report, "service", "upload", c) for c in levels}
    ratio_rows = [
        ["share of the upload ceiling", *(_fmt(ratio(ours[c], rps(report, "ceiling", "upload", c)), ".0%")
                                          for c in levels)],
        ["x naive Keras", *(_fmt(ratio(ours[c], rps(report, "naive_keras", "upload", c)), ".1f", "x") for c in levels)],
        ["vs naive ONNX Runtime", *(_fmt(ratio(ours[c], rps(report, "naive_ort", "upload", c)), ".2f", "x")
                                    for c in levels)],
        ["vs BentoML", *(_fmt(ratio(ours[c], rps(report, "bentoml", "upload", c)), ".2f", "x") for c in levels)],
        ["naive ORT's share of the ceiling", *(_fmt(ratio(rps(report, "naive_ort", "upload", c),
                                                          rps(report, "ceiling", "upload", c)), ".0%")
                                               for c in levels)],
        ["upload ceiling / bodiless GET", *(_fmt(ratio(rps(report, "ceiling", "upload", c),
                                                       rps(report, "ceiling", "get", c)), ".0%") for c in levels)],
    ]
    lines += _table(["ratio", *(f"c={c}" for c in levels)], ratio_rows)

    lines += ["Every run: latency in ms, errors (non-2xx + socket), and where the CPU went, in cores averaged "
              "over the run: the server's processes (and each worker's share), the load generator, and everything "
              "else on the machine (near 0 on a quiet machine; more means the figures are disturbed). Workers share "
              "one listening socket, and sometimes one of them accepts every keep-alive connection of a run while "
              "the other idles: such a lopsided run is repeated (3 attempts at most, the most even kept); the last "
              "column counts them, with the requests/s of every attempt.", ""]
    detail = []
    for run in http.get("runs", []):
        detail.append([
            LABELS.get(run["server"], run["server"]) if run["scenario"] != "get" else LABELS["get_constant"],
            str(run["workers"]), run["scenario"], str(run["concurrency"]), _fmt(run["requests_per_s"], ",.0f"),
            _fmt(run["images_per_s"], ",.0f"), _fmt(run["p50_ms"], ".2f"), _fmt(run["p95_ms"], ".2f"),
            _fmt(run["p99_ms"], ".2f"), str(run["errors"]), _server_cpu(run),
            _fmt(run.get("loadgen_cpu_cores"), ".2f"), _fmt(run.get("other_cpu_cores"), ".2f"),
            _lopsided(run),
        ])
    lines += _table(["target", "workers", "scenario", "c", "req/s", "images/s", "p50", "p95", "p99", "errors",
                     "server CPU (per worker)", "loadgen CPU", "other CPU", "lopsided retries"], detail,
                    "lrlrrrrrrrrrrr")

    lines += _batch_section(report)
    lines += _scaling_section(report)
    lines += _footprint_section(report)
    lines += ["## Inference kernels (ONNX Runtime vs Keras, same weights)", ""]
    kernels_md = report.get("kernels_markdown")
    lines += [kernels_md if kernels_md else f"Not run: {report.get('kernels', {}).get('skipped', '?')}", ""]
    failures = [f"- {s['key']} ({s.get('workers')} workers): {s['error'][:600]}"
                for s in _server_records(report) if s.get("error")]
    failures += [f"- {s['key']} ({s.get('workers')} workers), {name}: {error[:600]}"
                 for s in _server_records(report) for name, error in (s.get("scenario_errors") or {}).items()]
    if failures:
        lines += ["## What could not be measured", "", *failures, ""]
    return "\n".join(lines)


def _server_cpu(run: dict[str, Any]) -> str:
    split = run.get("worker_cpu_cores") or []
    shown = _fmt(run["server_cpu_cores"], ".2f")
    return f"{shown} ({'/'.join(f'{c:.2f}' for c in split)})" if len(split) > 1 else shown


def _lopsided(run: dict[str, Any]) -> str:
    count = run.get("lopsided_attempts") or 0
    if not count:
        return "0"
    return f"{count} ({', '.join(f'{r:,.0f}' for r in run.get('attempts_requests_per_s', []))} req/s)"


def _machine_section(report: dict[str, Any]) -> list[str]:
    meta = report.get("meta", {})
    lines = ["## Machine and conditions", ""]
    lines += [f"- {meta.get('cpu', '?')}, {meta.get('cores', '?')} cores, {meta.get('memory_gb', '?')} GB, "
              f"{meta.get('os', '?')}, Python {meta.get('python', '?')}",
              f"- code: {meta.get('git', '?')}; store: `{meta.get('store', '?')}`; "
              f"load generator: {meta.get('loadgen', '?')}; {report.get('http', {}).get('seconds', '?')} s per "
              f"run after a {report.get('http', {}).get('warmup_s', '?')} s warm-up per scenario; the load "
              "generator runs on the same cores as the server (see the CPU columns)"]
    for when in ("before", "after"):
        state = report.get(f"machine_{when}") or {}
        if state:
            busy = ", ".join(f"{p['command'][:60]} ({p['cpu_cores']} cores)" for p in state["busy_processes"]) or "none"
            lines.append(f"- {when} the run: load average {state['loadavg'][0]:.2f}; other busy processes: {busy}")
    if report.get("warnings"):
        lines += [f"- **warning**: {w}" for w in report["warnings"]]
    return [*lines, ""]


def _batch_section(report: dict[str, Any]) -> list[str]:
    http = report.get("http", {})
    batch = http.get("plan", {}).get("batch_size", "?")
    runs = [r for r in http.get("runs", []) if r["scenario"] in ("upload_batch", "json", "json_batch")]
    if not runs:
        return []
    lines = [f"## Batches over HTTP ({batch} images per request) and the JSON pixel path", ""]
    rows = []
    for run in runs:
        single = rps(report, run["server"], "upload", run["concurrency"])
        rows.append([LABELS.get(run["server"], run["server"]), run["scenario"], str(run["concurrency"]),
                     _fmt(run["requests_per_s"], ",.0f"), _fmt(run["images_per_s"], ",.0f"),
                     _fmt(run["p50_ms"], ".2f"), _fmt(run["p99_ms"], ".2f"), str(run["errors"]),
                     _fmt(ratio(run["images_per_s"], single), ".2f", "x")])
    lines += _table(["target", "scenario", "c", "req/s", "images/s", "p50 ms", "p99 ms", "errors",
                     "images/s vs single-image upload"], rows, "llrrrrrrr")
    return lines


def _scaling_section(report: dict[str, Any]) -> list[str]:
    http = report.get("http", {})
    workers = http.get("plan", {}).get("workers", 2)
    levels = sorted({r["concurrency"] for r in http.get("runs", []) if r["role"] == "scaling"})
    if not levels:
        return []
    lines = [f"## Scaling: {workers} workers against 1, single-image upload", ""]
    rows = []
    for c in levels:
        cells = [str(c)]
        for key in ("service", "ceiling"):
            one, many = rps(report, key, "upload", c, role="scaling"), rps(report, key, "upload", c)
            cells += [_fmt(one, ",.0f"), _fmt(many, ",.0f"), _fmt(ratio(many, one), ".2f", "x")]
        rows.append(cells)
    lines += _table(["c", "ours, 1 worker", f"ours, {workers}", "ratio", "ceiling, 1 worker", f"ceiling, {workers}",
                     "ratio"], rows)
    lines += ["The ceiling's ratio is the most any app can scale here: the load generator shares the two cores.", ""]
    return lines


def _footprint_section(report: dict[str, Any]) -> list[str]:
    lines = ["## Footprint", ""]
    rows = []
    for server in _server_records(report):
        memory = server.get("workers_memory") or []
        if server.get("error") and not memory:
            continue
        rows.append([f"{LABELS.get(server['key'], server['key'])}", str(server["workers"]), server["role"],
                     _fmt(server.get("ready_s"), ".2f"),
                     _fmt(max((m["rss_mb"] for m in memory), default=None), ".0f"),
                     _fmt(max((m["hwm_mb"] for m in memory), default=None), ".0f"),
                     _fmt(max((m["uss_mb"] or 0 for m in memory), default=None), ".0f")])
    footprint = report.get("footprint", {})
    for index, start in enumerate(footprint.get("service_starts", []), 1):
        memory = start.get("workers_memory") or []
        rows.append([f"our service, serving venv, start {index}", "1", "footprint", _fmt(start.get("ready_s"), ".2f"),
                     _fmt(max((m["rss_mb"] for m in memory), default=None), ".0f"),
                     _fmt(max((m["hwm_mb"] for m in memory), default=None), ".0f"),
                     _fmt(max((m["uss_mb"] or 0 for m in memory), default=None), ".0f")])
    lines += ["Every server holds all the models of the store. Memory per worker process after its load runs, "
              "in MB: RSS, peak RSS (VmHWM), USS (private pages). Ready: from spawn to the first 200 of the "
              "readiness endpoint.", ""]
    lines += _table(["target", "workers", "session", "ready s", "RSS", "peak RSS", "USS"], rows, "lrlrrrr")
    serving = footprint.get("serving") or {}
    if "venv_bytes" in serving:
        parts = ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in serving["image_parts_bytes"].items())
        largest = ", ".join(f"{name} {size / 1e6:.1f}" for name, size in serving["largest_distributions"].items())
        lines += [f"- serving venv (`make .venv-serve/.installed`: requirements/serve.lock + the project, no deps): "
                  f"{serving['venv_bytes'] / 1e6:.0f} MB, {serving['distribution_count']} distributions; largest (MB): "
                  f"{largest}",
                  f"- what the image would add to its base: {serving['image_bytes'] / 1e6:.0f} MB ({parts})",
                  f"- training-only distributions in it: {', '.join(serving['forbidden_distributions']) or 'none'}; "
                  f"`import tensorflow` possible: {serving['tensorflow_importable']}", ""]
    elif footprint.get("serving_error"):
        lines += [f"- serving venv not measured: {footprint['serving_error']}", ""]
    return lines
