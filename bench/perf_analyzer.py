"""perf_analyzer, Triton's load tester, unchanged against the service's Open Inference Protocol (REST and gRPC).

    .venv/bin/python -m bench.perf_analyzer --build-root   # once: the Debian 13 root and the wheel (24-75 s, as root)
    .venv/bin/python -m bench.perf_analyzer                # its default run, batch 1 and 64, REST and gRPC (1-6 min)
    .venv/bin/python -m bench.perf_analyzer --quick        # count windows of 50 requests each (~20 s): a check

perf_analyzer 2.60 comes as a PyPI wheel (perf-analyzer, manylinux_2_38): its binary needs glibc
2.38, and Debian 12 has 2.36. So it runs on a Debian 13 (trixie) root made with debootstrap
(minbase plus libssl3t64, 214 MB), with the wheel unpacked into it. Unpacking is what pip would do
(the wheel's `perf_analyzer` command only execs its bundled binary), and no Python is needed in the
root. The binary is started through the root's own dynamic loader with the root's libraries, so no
chroot and no privileges are needed to run it; only building the root needs root (debootstrap).

The service is started on loopback with its gRPC port, `cnn` is measured with perf_analyzer's
defaults (`-m cnn -b B [-i grpc]`: concurrency 1, 5 s windows until three are within 10%). On a
busy machine the default may not stabilise; the run is then repeated with `--stability-percentage
50` and the figure says so. Writes report.{md,json} and one log per run under --out (logs in bench/results/logs/perf_analyzer). Without the
root or the wheel, the report says why it was skipped, and the command still succeeds.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.toolkit import HOST, REPO, ServerFailed, free_port, service_process, write_report

VERSION = "2.60.0"
WHEEL_PLATFORM = "manylinux_2_38_x86_64"
SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
MODEL = "cnn"
BATCHES = (1, 64)
PROTOCOLS = ("http", "grpc")
RELAXED = ("--stability-percentage", "50")
"""What a run that did not stabilise is repeated with (perf_analyzer's default is 10%)."""
QUICK = ("--measurement-mode", "count_windows", "--measurement-request-count", "50", "--stability-percentage", "100")
"""A check, not a figure: three windows of 50 requests, any spread between them accepted."""
RUN_TIMEOUT_S = 180.0
"""The default run gives up after 10 windows of 5 s; a hang past that is an error."""
LIBRARY_DIR = "usr/lib/x86_64-linux-gnu"
LOADER = "usr/lib64/ld-linux-x86-64.so.2"
BINARY = "opt/perf_analyzer/perf_analyzer/bin/perf_analyzer"


def default_root() -> Path:
    """DIGITS_PERF_ANALYZER_ROOT, else a cache directory outside the checkout (a 214 MB tree)."""
    if root := os.environ.get("DIGITS_PERF_ANALYZER_ROOT"):
        return Path(root)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "digit-serving" / "perf-analyzer-trixie"


def root_problem(root: Path) -> str | None:
    """Why perf_analyzer cannot run from `root` (None when it can be tried)."""
    build = "python -m bench.perf_analyzer --build-root (debootstrap, as root)"
    if not (root / LOADER).exists():
        return f"no Debian {SUITE} root at {root}: {build}"
    if not (root / BINARY).is_file():
        return f"perf_analyzer {VERSION}'s wheel is not unpacked in {root}: {build}"
    return None


def command(root: Path) -> list[str]:
    """perf_analyzer through the root's loader and libraries (glibc 2.41), from any host."""
    return [str(root / LOADER), "--library-path", str(root / LIBRARY_DIR), str(root / BINARY)]


# -- the root --------------------------------------------------------------------------------------------


def build_root(root: Path, *, mirror: str = MIRROR) -> float:
    """Make `root` (debootstrap minbase, trixie) and unpack the wheel into it; the seconds it took.

    Built beside `root` and renamed into place, so a half-made root is never taken for a root.
    An existing root only gets the wheel when it lacks it.
    """
    started = time.monotonic()
    if not (root / LOADER).exists():
        if shutil.which("debootstrap") is None:
            raise RuntimeError("debootstrap is missing: apt-get install -y debootstrap")
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        # libssl3t64: the binary links libssl.so.3; libstdc++, libgcc and zlib are in minbase already.
        subprocess.run(["debootstrap", "--variant=minbase", "--include=libssl3t64", SUITE, str(partial), mirror],  # noqa: S603, S607
                       check=True, stdout=subprocess.DEVNULL)
        partial.rename(root)
    if not (root / BINARY).is_file():
        install_wheel(root, download_wheel())
    return time.monotonic() - started


def download_wheel() -> Path:
    """perf-analyzer's wheel for glibc 2.38 (pip would refuse it for this host: ask for its platform)."""
    target = Path(tempfile.mkdtemp(prefix="perf-analyzer-wheel-"))
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",  # noqa: S603
                    "--platform", WHEEL_PLATFORM, f"perf-analyzer=={VERSION}", "-d", str(target)], check=True)
    return next(target.glob("perf_analyzer-*.whl"))


def install_wheel(root: Path, wheel: Path) -> None:
    """Unpack the wheel under <root>/opt/perf_analyzer (its binary keeps its executable bit)."""
    destination = root / "opt" / "perf_analyzer"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(destination)
    (root / BINARY).chmod(0o755)


# -- one run ---------------------------------------------------------------------------------------------


def perf_args(protocol: str, url: str, batch: int, extra: Sequence[str] = ()) -> list[str]:
    """The arguments of one run: the default run, plus `-i grpc` for gRPC, plus `extra`."""
    transport = ["-i", "grpc"] if protocol == "grpc" else []
    return ["-m", MODEL, "-b", str(batch), *transport, "-u", url, *extra]


def parse_csv(text: str) -> dict[str, float]:
    """perf_analyzer's `-f` CSV (one row per concurrency): the first row, latencies in microseconds."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise ValueError("perf_analyzer's CSV has no rows")
    return {key: float(value) for key, value in rows[0].items() if value not in ("", None)}


def server_counts(output: str) -> dict[str, int]:
    """The server side perf_analyzer read from the statistics extension ("Server:" in its output)."""
    counts = {}
    for name in ("Inference count", "Execution count", "Successful request count"):
        line = next((x for x in output.splitlines() if x.strip().startswith(name + ":")), None)
        if line is not None:
            counts[name] = int(line.split(":")[1])
    return counts


def run_one(root: Path, args: Sequence[str], log: Path, *, timeout_s: float = RUN_TIMEOUT_S) -> dict[str, Any]:
    """Run perf_analyzer once; its exit status, CSV figures and server counts (or why none)."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "run.csv"
        argv = [*command(root), *args, "-f", str(report)]
        started = time.monotonic()
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)  # noqa: S603
            output, status = done.stdout + done.stderr, done.returncode
        except subprocess.TimeoutExpired as error:
            partial = b"".join(x if isinstance(x, bytes) else x.encode() for x in (error.stdout, error.stderr) if x)
            output, status = f"{partial.decode(errors='replace')}\ntimed out after {timeout_s:g} s", -1
        log.write_text(f"$ perf_analyzer {' '.join(args)}\n{output}")
        result: dict[str, Any] = {"args": list(args), "exit": status, "seconds": round(time.monotonic() - started, 1),
                                  "server": server_counts(output)}
        if "Failed to obtain stable measurement" in output:
            result["unstable"] = True
        if status == 0 and report.is_file() and report.stat().st_size:
            result["figures"] = parse_csv(report.read_text())
        else:
            result["error"] = output.strip().splitlines()[-1] if output.strip() else f"exit {status}"
        return result


def measure(root: Path, protocol: str, url: str, batch: int, log_dir: Path, *, quick: bool) -> dict[str, Any]:
    """The default run (or the quick one); repeated with RELAXED when it did not stabilise."""
    name = f"{protocol}-b{batch}"
    result = run_one(root, perf_args(protocol, url, batch, QUICK if quick else ()), log_dir / f"{name}.log")
    if result.get("unstable") and not quick:
        retry = run_one(root, perf_args(protocol, url, batch, RELAXED), log_dir / f"{name}-relaxed.log")
        result = {**retry, "default_run": result}
    return result


# -- the step --------------------------------------------------------------------------------------------


def run(store: Path, out: Path, *, root: Path, quick: bool = False) -> dict[str, Any]:
    """Start the service on loopback (REST and gRPC) and run perf_analyzer per protocol and batch."""
    results: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "version": VERSION,
                               "model": MODEL, "quick": quick, "root": str(root)}
    if (problem := root_problem(root)) is not None:
        return {**results, "skipped": problem}
    results["machine"] = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()}
    # Beside the results in git-ignored logs/ (bench/results/logs/perf_analyzer for the default --out).
    log_dir = out.parent / "logs" / out.name
    log_dir.mkdir(parents=True, exist_ok=True)
    grpc_port = free_port()
    try:
        with service_process(store, log_path=log_dir / "service.log", grpc_port=str(grpc_port)) as server:
            urls = {"http": f"{HOST}:{server.port}", "grpc": f"{HOST}:{grpc_port}"}
            for protocol in PROTOCOLS:
                for batch in BATCHES:
                    result = measure(root, protocol, urls[protocol], batch, log_dir, quick=quick)
                    results.setdefault(protocol, {})[str(batch)] = result
                    print(f"   {protocol} batch {batch}: {summary(result)}", flush=True)
    except (ServerFailed, OSError) as error:
        results["skipped"] = f"the service did not start: {error}"
    results["machine"]["load_average_at_end"] = os.getloadavg()
    return results


def summary(result: dict[str, Any]) -> str:
    if "figures" not in result:
        return f"failed: {result.get('error')}"
    figures = result["figures"]
    return f"{figures['Inferences/Second']:,.0f} inferences/s, p50 {figures['p50 latency'] / 1000:.2f} ms"


def render(results: dict[str, Any]) -> str:
    """The report: one row per protocol and batch, with the command that gave it."""
    lines = [f"# perf_analyzer {results['version']} against the service ({results['model']})", ""]
    if "skipped" in results:
        return "\n".join([*lines, f"Skipped: {results['skipped']}", ""])
    start, end = results["machine"]["load_average_at_start"][0], results["machine"]["load_average_at_end"][0]
    mode = "quick check (count windows of 50 requests)" if results["quick"] else "perf_analyzer's default run"
    lines += [f"Run {results['when']}, {mode}, concurrency 1, {results['machine']['cpus']} CPUs, load average "
              f"{start:.1f} at the start and {end:.1f} at the end.", "",
              "| Protocol | Batch | Inferences/s | p50 ms | p99 ms | Server: requests answered | Stable at | Command |",
              "|---|---:|---:|---:|---:|---:|---|---|"]
    for protocol in PROTOCOLS:
        for batch in BATCHES:
            result = results.get(protocol, {}).get(str(batch))
            if result is None:
                continue
            arguments = "perf_analyzer " + " ".join(result["args"])
            if "figures" not in result:
                lines.append(f"| {protocol} | {batch} | failed: {result.get('error')} | | | | | `{arguments}` |")
                continue
            figures = result["figures"]
            stable = "50% (the default 10% was not reached)" if "default_run" in result else (
                "any spread" if results["quick"] else "10% (default)")
            answered = result["server"].get("Successful request count", 0)
            lines.append(f"| {protocol} | {batch} | {figures['Inferences/Second']:,.0f} | "
                         f"{figures['p50 latency'] / 1000:.2f} | {figures['p99 latency'] / 1000:.2f} | {answered:,} | "
                         f"{stable} | `{arguments}` |")
    return "\n".join([*lines, ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=REPO / "model_store")
    parser.add_argument("--out", type=Path, default=None,
                        help="bench/results/perf_analyzer (bench/results/quick/perf_analyzer with --quick)")
    parser.add_argument("--root", type=Path, default=None, help="the trixie root (default: DIGITS_PERF_ANALYZER_ROOT "
                        "or ~/.cache/digit-serving/perf-analyzer-trixie)")
    parser.add_argument("--quick", action="store_true", help="count windows of 50 requests: checks, no figures")
    parser.add_argument("--build-root", action="store_true", help="make the root and unpack the wheel, then stop")
    parser.add_argument("--mirror", default=MIRROR, help=f"Debian mirror for --build-root (default {MIRROR})")
    args = parser.parse_args(argv)
    root = args.root or default_root()
    if args.build_root:
        seconds = build_root(root, mirror=args.mirror)
        print(f"perf_analyzer {VERSION} ready in {root} ({seconds:.0f} s)")
        return 0
    out = args.out or REPO / "bench" / "results" / ("quick" if args.quick else "") / "perf_analyzer"
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = run(args.store, out, root=root, quick=args.quick)
    results["duration_s"] = round(time.monotonic() - started)
    write_report(out, results, render(results))
    # Skipping is an answer (the reason is in the report), not a failure of the command.
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
