"""Before and after a cut: the service of two commits, side by side under the same load, in one run.

    .venv/bin/python -m bench.cuts --before f0167b9 --after HEAD          # ~2 minutes
    .venv/bin/python -m bench.cuts --before HEAD~3 --kinds mnist_png,v2_binary_1 --seconds 3 --rounds 3

Each revision's packages are exported with `git archive` into bench/results/tmp/ (no worktree,
nothing in .git changes) and started as `python -P -m service` from there, one worker, on the same store, with this
project's interpreter (the module path of the export comes first, ahead of the editable install).
Both servers stay up throughout; each figure is taken `--rounds` times, the two servers alternating
within a round, and the round with the median throughput is kept. Per kind: requests/s (wrk) and the
worker's CPU milliseconds per request (/proc): the second holds on a busy machine where the first
moves with the neighbours. Writes bench/results/cuts/report.md and report.json (or --out).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import tarfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import footprint
from bench.loadgen import LoadResult
from bench.profile_path import KINDS, loads
from bench.servers import RunningServer, ServerSpec
from bench.toolkit import REPO, process_cpu_seconds, service_env, write_report

EXPORTS = REPO / "bench" / "results" / "tmp"
PACKAGES = ("service", "digit_contract", "digit_frontend", "training")
"""What `python -m service` imports from the repository (the store is passed by path)."""


def export(revision: str) -> tuple[str, Path]:
    """The revision's full commit id and a directory holding its files (reused when already there)."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{revision}^{{commit}}"],  # noqa: S603, S607
                            capture_output=True, text=True, check=True).stdout.strip()
    target = EXPORTS / f"rev-{commit[:12]}"
    if not (target / "service").is_dir():
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit, *PACKAGES],  # noqa: S603, S607
                                 capture_output=True, check=True).stdout
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
    return commit, target


def revision_spec(key: str, source: Path, store: Path) -> ServerSpec:
    python = str(REPO / ".venv" / "bin" / "python")
    env = {**service_env({"model_store": str(store.resolve()), "workers": "1"}),
           "PYTHONPATH": str(source)}
    # cwd is the repository for every server (ServerProcess): -P keeps it off sys.path, so the export
    # on PYTHONPATH comes first (ahead of the editable install's finder too).
    return ServerSpec(key, 1, [python, "-P", "-m", "service", "--host", "{host}", "--port", "{port}"], "/health/ready",
                      env)


def measure(worker: int, load: Callable[[], LoadResult | dict[str, Any]]) -> dict[str, Any]:
    before = process_cpu_seconds(worker)
    result = load()
    figures = result.to_dict() if isinstance(result, LoadResult) else result
    spent = process_cpu_seconds(worker) - before
    return {**figures, "worker_cpu_ms_per_request": spent * 1000 / max(1, int(figures["requests"]))}


def run(store: Path, out: Path, revisions: dict[str, str], *, kinds: tuple[str, ...], seconds: float,
        rounds: int) -> dict[str, Any]:
    exported = {key: export(revision) for key, revision in revisions.items()}
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"), "seconds": seconds, "rounds": rounds,
        "revisions": {key: {"asked": revisions[key], "commit": commit} for key, (commit, _) in exported.items()},
        "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(), "kinds": {},
    }
    with contextlib.ExitStack() as stack:
        servers = {key: stack.enter_context(RunningServer(revision_spec(key, source, store), out / "logs"))
                   for key, (_, source) in exported.items()}
        workers = {key: footprint.worker_pids(server.pid)[0] for key, server in servers.items()}
        plans = {key: loads(server.base_url, seconds, kinds) for key, server in servers.items()}
        samples: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for round_index in range(rounds):
            for kind in kinds:
                for key in servers:
                    # The other server's backlog (a 12 MP photo each) must not share the cores.
                    for server in servers.values():
                        footprint.wait_until_idle(server.pid)
                    if round_index == 0:
                        plans[key][kind]()  # warm-up
                    taken = measure(workers[key], plans[key][kind])
                    samples.setdefault((kind, key), []).append(taken)
                    print(f"   round {round_index + 1} {kind} {key}: {taken['requests_per_s']:.0f} req/s, "
                          f"{taken['worker_cpu_ms_per_request']:.2f} ms CPU/request", flush=True)
    for (kind, key), series in samples.items():
        ordered = sorted(series, key=lambda sample: sample["requests_per_s"])
        results["kinds"].setdefault(kind, {})[key] = {
            **ordered[len(ordered) // 2], "rounds_requests_per_s": [t["requests_per_s"] for t in series],
            "rounds_cpu_ms_per_request": [t["worker_cpu_ms_per_request"] for t in series]}
    results["load_average_at_end"] = os.getloadavg()
    return results


def render(results: dict[str, Any]) -> str:
    before, after = (results["revisions"][k]["commit"][:8] for k in ("before", "after"))
    lines = [
        f"# Before ({before}) and after ({after}) in one run", "",
        f"Run {results['when']}, {results['seconds']:g} s per figure, median of {results['rounds']} rounds "
        f"(servers alternating), one worker each, {results['cpus']} CPUs, load average "
        f"{results['load_average_at_start'][0]:.1f} at the start and {results['load_average_at_end'][0]:.1f} at the end.",
        "",
        "| kind | before req/s | after req/s | after / before | before CPU ms/request | after CPU ms/request "
        "| CPU after / before |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind, pair in results["kinds"].items():
        b, a = pair["before"], pair["after"]
        # The CPU figure: the median of the rounds' own, not the median-throughput round's.
        cpu_b = sorted(b["rounds_cpu_ms_per_request"])[len(b["rounds_cpu_ms_per_request"]) // 2]
        cpu_a = sorted(a["rounds_cpu_ms_per_request"])[len(a["rounds_cpu_ms_per_request"]) // 2]
        lines.append(f"| {kind} | {b['requests_per_s']:,.0f} | {a['requests_per_s']:,.0f} | "
                     f"{a['requests_per_s'] / b['requests_per_s']:.2f}x | {cpu_b:.3f} | {cpu_a:.3f} | {cpu_a / cpu_b:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="a git revision")
    parser.add_argument("--after", default="HEAD", help="a git revision (HEAD: the last commit, not the working tree)")
    parser.add_argument("--store", type=Path, default=REPO / "model_store")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cuts")
    parser.add_argument("--kinds", default="mnist_png,canvas,scan,v2_binary_1,v2_json_1")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    if unknown := set(kinds) - set(KINDS):
        parser.error(f"unknown kinds {sorted(unknown)}; expected some of {KINDS}")
    args.out.mkdir(parents=True, exist_ok=True)
    results = run(args.store, args.out, {"before": args.before, "after": args.after}, kinds=kinds,
                  seconds=args.seconds, rounds=args.rounds)
    write_report(args.out, results, render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
