"""Footprint: memory of server processes (from /proc), the serving venv's size, what the image holds.

Memory is read per process from `/proc/<pid>/status` (VmRSS, VmHWM) and `/proc/<pid>/smaps_rollup`
(PSS, and USS = private pages). RSS is what the spec's target speaks of; USS and PSS say how much of
it the worker really owns (spawned workers share little, forked ones share their parent's pages).

The serving environment is the venv that `make .venv-serve/.installed` builds: requirements/serve.lock
plus the project with --no-deps, i.e. what the Docker image installs. TensorFlow must not be in it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from bench.toolkit import REPO, children_map, command_of, process_tree, stat_fields, tree_cpu_seconds

SERVE_VENV = REPO / ".venv-serve"
SERVE_MARKER = SERVE_VENV / ".installed"
FORBIDDEN_IN_IMAGE = ("tensorflow", "tf_keras", "keras", "tf2onnx", "jax", "torch")
"""Distributions that must not be in the serving image (training only)."""

_HELPERS = ("resource_tracker", "semaphore_tracker", "multiprocessing.forkserver")
"""Helper processes of multiprocessing: in the process tree, never a worker."""

MB = 1e6


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    command: str
    rss_mb: float
    hwm_mb: float
    """Peak RSS over the process's life (VmHWM)."""
    pss_mb: float | None
    uss_mb: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- processes (the tree, commands and CPU times: bench.toolkit) ----------------------------------


def worker_pids(root: int) -> list[int]:
    """The serving processes of a server: the leaves of its tree, multiprocessing helpers aside.

    uvicorn with one worker serves in the process itself (a tree of one); with N it has a
    supervisor and N spawned workers; BentoML has an arbiter and its workers. In each case the
    workers are the leaves.
    """
    children = children_map()
    tree = process_tree(root, children)
    leaves = [pid for pid in tree if not children.get(pid)]
    return [pid for pid in leaves if not any(helper in command_of(pid) for helper in _HELPERS)]


def memory_of(pid: int) -> ProcessMemory | None:
    """Memory of one process, or None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {line.split(":")[0]: line.split()[1] for line in status.splitlines() if line.startswith("Vm")}
    pss = uss = None
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        kb = {line.split(":")[0]: int(line.split()[1]) for line in rollup.splitlines()[1:] if line.endswith("kB")}
        pss = kb["Pss"] * 1024 / MB
        uss = (kb["Private_Clean"] + kb["Private_Dirty"]) * 1024 / MB
    except (OSError, KeyError, ValueError):
        pass
    return ProcessMemory(
        pid=pid,
        command=command_of(pid)[:160],
        rss_mb=int(values.get("VmRSS", 0)) * 1024 / MB,
        hwm_mb=int(values.get("VmHWM", 0)) * 1024 / MB,
        pss_mb=pss,
        uss_mb=uss,
    )


def workers_memory(root: int) -> list[ProcessMemory]:
    return [m for m in (memory_of(pid) for pid in worker_pids(root)) if m is not None]


def wait_for_workers(root: int, count: int, *, timeout_s: float = 60.0, settle_s: float = 1.0) -> list[int]:
    """Wait until `count` workers exist and their RSS has stopped growing for `settle_s` (models loaded)."""
    deadline = time.monotonic() + timeout_s
    last: dict[int, float] = {}
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        memory = {m.pid: m.rss_mb for m in workers_memory(root)}
        if len(memory) < count or any(abs(memory.get(pid, 0) - last.get(pid, -1)) > 1.0 for pid in memory):
            stable_since = time.monotonic()
        elif time.monotonic() - stable_since >= settle_s:
            return sorted(memory)
        last = memory
        time.sleep(0.1)
    return sorted(last)


class RssSampler:
    """The largest RSS of each given process while a load runs: `with RssSampler(pids) as sampler:`.

    VmHWM alone cannot say "during this run": it is the peak over the process's whole life, earlier
    scenarios included. Reading a few known pids' /proc status and smaps_rollup every `interval_s`
    costs ~1 ms per pid (measured), 1% of a core at 0.2 s for 2 workers: nothing beside the load.
    """

    def __init__(self, pids: list[int], *, interval_s: float = 0.2) -> None:
        self.pids = pids
        self.interval_s = interval_s
        self.max_mb = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        for pid in self.pids:
            memory = memory_of(pid)
            if memory is not None:
                self.max_mb[pid] = max(self.max_mb[pid], memory.rss_mb)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def wait_until_idle(root: int, *, below_cores: float = 0.1, window_s: float = 0.25, timeout_s: float = 60.0) -> float:
    """Wait until `root`'s process tree uses less than `below_cores` over `window_s`; seconds waited.

    A load generator that stops leaves its last requests in the server: up to one per connection,
    which a peer decoding 12 MP photos whole takes seconds to finish. The next run would queue
    behind them and measure the previous one's backlog.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        before = tree_cpu_seconds(root)
        time.sleep(window_s)
        if (tree_cpu_seconds(root) - before) / window_s < below_cores:
            break
    return time.monotonic() - started


def machine_busy_seconds() -> float:
    """CPU time spent on all cores so far, busy states only (/proc/stat), in seconds."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cpu_hogs(*, interval_s: float = 1.0, threshold: float = 0.1, exclude: set[int] | None = None) -> list[dict[str, Any]]:
    """Processes that used more than `threshold` of a core over `interval_s`: what else runs here."""
    tick = os.sysconf("SC_CLK_TCK")

    def cpu_times() -> dict[int, int]:
        times = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and (fields := stat_fields(int(entry.name))) is not None:
                times[int(entry.name)] = int(fields[11]) + int(fields[12])  # utime + stime, in ticks
        return times

    before = cpu_times()
    time.sleep(interval_s)
    after = cpu_times()
    skip = (exclude or set()) | {os.getpid()}
    hogs = []
    for pid, ticks in after.items():
        share = (ticks - before.get(pid, ticks)) / tick / interval_s
        if share >= threshold and pid not in skip:
            hogs.append({"pid": pid, "cpu_cores": round(share, 2), "command": command_of(pid)[:120]})
    return sorted(hogs, key=lambda h: -h["cpu_cores"])


def machine_state() -> dict[str, Any]:
    """Load average and the processes busy on the CPU right now (other than this one)."""
    load1, load5, load15 = os.getloadavg()
    return {"loadavg": [load1, load5, load15], "busy_processes": cpu_hogs()}


# -- sizes -------------------------------------------------------------------------------------


def tree_size(path: Path, *, skip: tuple[str, ...] = ("__pycache__",)) -> int:
    """Bytes of the regular files under `path` (hard links counted once, symlinks not followed)."""
    if path.is_file():
        return path.stat().st_size
    total, seen = 0, set()
    for directory, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for name in filenames:
            stat = os.lstat(os.path.join(directory, name))
            if (stat.st_dev, stat.st_ino) not in seen and not os.path.islink(os.path.join(directory, name)):
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
    return total


def ensure_serve_venv(*, python: str = "python3") -> str | None:
    """Build .venv-serve with the Makefile's recipe if missing; None when ready, else why not."""
    if SERVE_MARKER.exists():
        return None
    completed = subprocess.run(  # noqa: S603 (fixed command line)
        ["make", "-C", str(REPO), ".venv-serve/.installed", f"PYTHON={python}"],  # noqa: S607 (make from PATH)
        capture_output=True, text=True, timeout=1800, check=False,
    )
    if completed.returncode != 0 or not SERVE_MARKER.exists():
        return f"make .venv-serve/.installed failed: {(completed.stderr or completed.stdout).strip()[-400:]}"
    return None


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise FileNotFoundError(f"no site-packages in {venv}")
    return found[0]


def installed_distributions(venv: Path) -> dict[str, int]:
    """Installed distributions of a venv and the bytes of the files each one's RECORD lists."""
    packages = site_packages(venv)
    sizes = {}
    for dist_info in packages.glob("*.dist-info"):
        name = dist_info.name.split("-")[0].lower().replace("_", "-")
        record = dist_info / "RECORD"
        total = 0
        if record.is_file():
            for line in record.read_text().splitlines():
                file = packages / line.split(",")[0]
                if file.is_file() and "__pycache__" not in file.parts:
                    total += file.stat().st_size
        sizes[name] = total
    return dict(sorted(sizes.items(), key=lambda item: -item[1]))


def serving_footprint(repo: Path = REPO, venv: Path = SERVE_VENV, store: Path | None = None) -> dict[str, Any]:
    """Installed size of the serving venv, what the image would hold, and proof TensorFlow is absent."""
    distributions = installed_distributions(venv)
    forbidden = sorted(name for name in distributions if name.split("-")[0] in FORBIDDEN_IN_IMAGE)
    probe = subprocess.run(  # noqa: S603 (the venv's own interpreter, fixed code)
        [str(venv / "bin" / "python"), "-c", "import importlib.util as u; print(u.find_spec('tensorflow') is not None)"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    store = store or repo / "model_store"
    parts = {
        "venv": tree_size(venv),
        "service/": tree_size(repo / "service"),
        "model_store/": tree_size(store),
    }
    return {
        "venv": str(venv),
        "venv_bytes": parts["venv"],
        "largest_distributions": dict(list(distributions.items())[:10]),
        "distribution_count": len(distributions),
        "forbidden_distributions": forbidden,
        "tensorflow_importable": probe.stdout.strip() == "True",
        "image_parts_bytes": parts,
        "image_bytes": sum(parts.values()),
        "store": str(store),
        "note": "image = serving venv + service/ + model store, on top of the python:3.11-slim base (not counted)",
    }


if __name__ == "__main__":  # a quick look: python -m bench.footprint [pid]
    if len(sys.argv) > 1:
        for memory in workers_memory(int(sys.argv[1])):
            print(memory)
    else:
        print(machine_state())
