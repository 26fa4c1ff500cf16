"""What a worker's resident memory is made of, and what ONNX Runtime's settings change.

    .venv/bin/python -m bench.memory --store model_store             # ~1 minute
    .venv/bin/python -m bench.memory --skip-service                  # the in-process parts only

Four parts, each figure from a fresh process (so no part inherits another's heap):

1. **imports**: RSS after each layer the worker imports (numpy, Pillow, OpenCV, ONNX Runtime, the web
   stack, prometheus_client, the whole service), split into file-backed pages (shared libraries'
   code: the same pages in every worker of a machine) and anonymous ones (each worker's own);
2. **models**: every model of the store opened as the service opens it (service.models.sessions), one by
   one, with the RSS each adds once the heap is trimmed (as the worker trims it: what parsing the file
   freed is not the model's), then each run once at batch 1, 64 and 1,024 (the arenas grow on
   first use); the same for ONNX Runtime's settings that bear on memory: one arena per session
   instead of the shared one (service.models.sessions.SHARED_CPU_ARENA), the CPU arena off
   (`enable_cpu_mem_arena`), memory patterns off (`enable_mem_pattern`), weight prepacking off
   (`session.disable_prepacking`), and all three;
3. **segmenter**: the front end's ink segmenter opened as digit_frontend.segmenter opens it (an arena
   of its own), with the arena on, on and given back after the photos, and off: the RSS it keeps
   after photos from two threads, and its time per photo;
4. **service**: `python -m service`, one worker: RSS when ready, its peak during a wrk run of 12 MP
   photos (4 connections), and after the run once idle; what backs its resident pages (shared
   libraries by name, anonymous memory) when ready and after.

Writes bench/results/memory/report.md and report.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import footprint
from bench.loadgen import run_load
from bench.payloads import files_payload, load_digits, realistic_uploads
from bench.servers import RunningServer, server_spec
from bench.toolkit import REPO, write_report
from service.server.memory import TRIM_INTERVAL_SECONDS

MB = 1024 * 1024
ORT_SETTINGS = {
    "the service: one shared CPU arena": {},
    "one arena per session (as before)": {"shared": False},
    "per session, CPU arena off": {"shared": False, "arena": False},
    "per session, memory patterns off": {"shared": False, "patterns": False},
    "shared arena, prepacking off": {"prepacking": False},
    "per session, all three off": {"shared": False, "arena": False, "patterns": False, "prepacking": False},
}

# The child: runs in a fresh interpreter, prints one JSON line. Kept as source so that each part
# starts from an empty process (a function run in this process would measure the harness too).
CHILD = r'''
import json, sys
from pathlib import Path

def memory():
    rollup = Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]
    kb = {line.split(":")[0]: int(line.split()[1]) for line in rollup if line.endswith("kB")}
    return {"rss_mb": kb["Rss"] / 1024, "anon_mb": kb["Anonymous"] / 1024,
            "file_mb": (kb["Rss"] - kb["Anonymous"]) / 1024}

def trim():
    import ctypes
    ctypes.CDLL("libc.so.6").malloc_trim(0)

part, argument = sys.argv[1], json.loads(sys.argv[2])
out = {"python": memory()}
if part == "imports":
    steps = [("numpy", "import numpy"), ("Pillow", "import PIL.Image, PIL.PngImagePlugin, PIL.JpegImagePlugin"),
             ("OpenCV", "import cv2"), ("ONNX Runtime", "import onnxruntime"),
             ("FastAPI, Starlette, pydantic, uvicorn", "import fastapi, uvicorn, uvicorn.protocols.http.httptools_impl"),
             ("prometheus_client", "import prometheus_client"), ("the service (every module)", "import service.server.app")]
    for name, statement in steps:
        exec(statement)
        out[name] = memory()
    print(json.dumps(out))
elif part == "models":
    import numpy as np
    import onnxruntime as ort
    from digit_contract.store import latest_cards
    from service.models import sessions
    from service.models.sessions import create_onnx_session
    out["imports"] = memory()
    store, settings = Path(argument["store"]), argument["settings"]
    sessions.SHARED_CPU_ARENA = settings.get("shared", True)
    real = ort.SessionOptions
    class Options(real):
        def __init__(self):
            super().__init__()
            self.enable_cpu_mem_arena = settings.get("arena", True)
            self.enable_mem_pattern = settings.get("patterns", True)
            if not settings.get("prepacking", True):
                self.add_session_config_entry("session.disable_prepacking", "1")
    ort.SessionOptions = Options
    plan = type("Plan", (), {"requested": ("CPUExecutionProvider",)})()
    sessions, loaded = {}, {}
    for name, path in argument["models"].items():
        sessions[name] = create_onnx_session(Path(path).read_bytes(), plan, 1)
        trim()  # what the model keeps: parsing its file leaves freed heap, which the worker trims
        loaded[name] = memory()
    out["loaded"] = loaded
    for batch in (1, 64, 1024):
        for name, session in sessions.items():
            spec = session.get_inputs()[0]
            if not all(isinstance(d, int) for d in spec.shape[1:]):
                # The segmenter (any side, a multiple of 8): one 128 px coarse view per photo, as served.
                shape = [1] + [d if isinstance(d, int) else 128 for d in spec.shape[1:]]
            else:
                shape = [batch] + list(spec.shape[1:])
            session.run(None, {spec.name: np.zeros(shape, dtype=np.float32)})
        out[f"after batch {batch}"] = memory()
    print(json.dumps(out))
elif part == "segmenter":
    # The ink segmenter as digit_frontend.segmenter.InkSegmenter opens it (an arena of its own),
    # run on every photo at its coarse and fine sides by the worker's two work threads at once.
    import threading, time
    import numpy as np
    import onnxruntime as ort
    from service.server.memory import return_large_buffers_to_os
    return_large_buffers_to_os()  # as the worker: its mmap threshold decides what an arena-less run costs
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    views = [np.random.default_rng(side).random((1, side, side, 1), dtype=np.float32) for side in argument["sides"]]
    # A first session, run and dropped, so that ONNX Runtime's code pages are not counted as kept.
    warm = ort.InferenceSession(argument["path"], options, providers=["CPUExecutionProvider"])
    for view in views:
        warm.run(None, {"image": view})
    del warm
    options.enable_cpu_mem_arena = argument["arena"] != "off"
    trim()
    before = memory()
    session = ort.InferenceSession(argument["path"], options, providers=["CPUExecutionProvider"])
    def photos(count):
        for _ in range(count):
            for view in views:
                session.run(None, {"image": view})
    photos(3)
    workers = [threading.Thread(target=photos, args=(100,)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if argument["arena"] == "given back":
        # What the worker's periodic trim does for the classifiers (service.models.registry.give_arena_back).
        from service.models.sessions import shrink_after_run
        session.run(None, {"image": views[-1]}, shrink_after_run())
    trim()
    out["kept_mb"] = memory()["rss_mb"] - before["rss_mb"]
    times = []
    for _ in range(5):
        start = time.perf_counter()
        photos(30)
        times.append((time.perf_counter() - start) / 30 * 1000)
    out["ms_per_photo"] = sorted(times)[2]
    print(json.dumps(out))
'''


def child(part: str, argument: dict[str, Any]) -> dict[str, Any]:
    completed = subprocess.run([sys.executable, "-c", CHILD, part, json.dumps(argument)], cwd=REPO,  # noqa: S603
                               capture_output=True, text=True, timeout=600, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"bench.memory {part} child failed: {completed.stderr.strip()[-800:]}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def store_models(store: Path) -> dict[str, str]:
    """name -> model.onnx of each model the service loads: the latest version of every model, and the
    front end's ink segmenter when the store has one."""
    from digit_contract.store import latest_versions

    found = {name: str(store / name / str(version) / "model.onnx") for name, version in latest_versions(store).items()}
    segmenters = sorted((store / "frontend" / "ink_segmenter").glob("*/model.onnx"))
    if segmenters:
        found["frontend/ink_segmenter"] = str(segmenters[-1])
    return found


def segmenter_memory(path: str) -> dict[str, Any]:
    """The served segmenter with its arena on (as it is opened today), on but given back after the photos
    (as the worker's trim does for the classifiers' arena), and off: RSS kept, ms per photo."""
    card = json.loads((Path(path).parent / "card.json").read_text())
    sides = [card["coarse_side"], card["fine_side"]]
    return {label: child("segmenter", {"path": path, "sides": sides, "arena": arena})
            for label, arena in (("arena on (as served)", "on"), ("arena on, given back once idle", "given back"),
                                 ("arena off", "off"))}


def resident_by_mapping(pid: int, top: int = 8) -> dict[str, float]:
    """A process's resident MB by what backs it: the `top` shared libraries by name, the other files,
    and the anonymous memory (heaps, Python's object arenas, ONNX Runtime's arenas, large buffers)."""
    sizes: dict[str, float] = {}
    backing = "anonymous"
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:  # a mapping's header: address range, perms, ..., path
            name = fields[5] if len(fields) > 5 else ""
            backing = Path(name).name if name.startswith("/") else "anonymous"
        elif fields[0] == "Rss:":
            sizes[backing] = sizes.get(backing, 0.0) + int(fields[1]) / 1024
    files = sorted((name for name in sizes if name != "anonymous"), key=lambda name: -sizes[name])
    kept = {name: sizes[name] for name in files[:top]}
    kept["other files"] = sum(sizes[name] for name in files[top:])
    kept["anonymous"] = sizes.get("anonymous", 0.0)
    return kept


def service_memory(store: Path, out: Path, seconds: float) -> dict[str, Any]:
    spec = server_spec("service", 1, store)
    photos = files_payload(realistic_uploads("photo_12mp", load_digits(64), count=4), "/predict")
    with RunningServer(spec, out / "logs") as server:
        worker = footprint.worker_pids(server.pid)[0]
        footprint.wait_until_idle(server.pid)
        ready = footprint.memory_of(worker)
        ready_mappings = resident_by_mapping(worker)
        with footprint.RssSampler([worker]) as sampler:
            load = run_load("wrk", server.base_url, photos, 4, seconds, timeout_s=60.0)
        footprint.wait_until_idle(server.pid)
        time.sleep(2.0)
        after = footprint.memory_of(worker)
        # The worker hands freed heap pages back every TRIM_INTERVAL_SECONDS (service.server.memory):
        # what it holds once that has run is what it keeps.
        time.sleep(TRIM_INTERVAL_SECONDS)
        settled = footprint.memory_of(worker)
        settled_mappings = resident_by_mapping(worker)
    return {"ready": ready.to_dict() if ready else None, "peak_rss_mb_during": sampler.max_mb[worker],
            "mappings": {"ready": ready_mappings, "settled": settled_mappings},
            "after": after.to_dict() if after else None, "settled": settled.to_dict() if settled else None,
            "load": load.to_dict()}


def run(store: Path, out: Path, *, service: bool, seconds: float) -> dict[str, Any]:
    models = store_models(store)
    results: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "store": str(store),
                               "models": list(models), "load_average_at_start": os.getloadavg(),
                               "segmenter": "frontend/ink_segmenter" in models}
    print("== imports", flush=True)
    results["imports"] = child("imports", {})
    results["settings"] = {}
    for label, settings in ORT_SETTINGS.items():
        print(f"== models, {label}", flush=True)
        results["settings"][label] = child("models", {"store": str(store), "models": models, "settings": settings})
    if "frontend/ink_segmenter" in models:
        print("== the segmenter as served, arena on and off", flush=True)
        results["segmenter_arena"] = segmenter_memory(models["frontend/ink_segmenter"])
    if service:
        print("== service under 12 MP photos", flush=True)
        results["service"] = service_memory(store, out, seconds)
    return results


def render(results: dict[str, Any]) -> str:
    imports = results["imports"]
    lines = ["# Resident memory of a worker", "",
             f"Run {results['when']}, store `{results['store']}`: {len(results['models'])} models"
             + ("" if results["segmenter"] else " (no ink segmenter in the store's frontend/ yet)") + ".", "",
             "## What each import adds (fresh process, cumulative)", "",
             "| after importing | RSS MB | adds MB | of which anonymous | of which file-backed (shared code) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    previous = None
    for step, m in imports.items():
        adds = m["rss_mb"] - previous["rss_mb"] if previous else m["rss_mb"]
        anon = m["anon_mb"] - previous["anon_mb"] if previous else m["anon_mb"]
        file = m["file_mb"] - previous["file_mb"] if previous else m["file_mb"]
        lines.append(f"| {step} | {m['rss_mb']:.1f} | {adds:+.1f} | {anon:+.1f} | {file:+.1f} |")
        previous = m
    service_settings = next(iter(results["settings"].values()))
    lines += ["", "## What each model adds (as the service opens them, in order)", "",
              "| model | adds MB (RSS) |", "| --- | ---: |"]
    before = service_settings["imports"]["rss_mb"]
    for name, m in service_settings["loaded"].items():
        lines.append(f"| {name} | {m['rss_mb'] - before:+.1f} |")
        before = m["rss_mb"]
    lines += ["", "## ONNX Runtime's settings: every model loaded, then run once at each batch size", "",
              "| settings | after imports | models loaded | after batch 1 | after batch 64 | after batch 1,024 |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, m in results["settings"].items():
        loaded = list(m["loaded"].values())[-1]["rss_mb"]
        lines.append(f"| {label} | {m['imports']['rss_mb']:.1f} | {loaded:.1f} | {m['after batch 1']['rss_mb']:.1f} | "
                     f"{m['after batch 64']['rss_mb']:.1f} | {m['after batch 1024']['rss_mb']:.1f} |")
    if "segmenter_arena" in results:
        lines += ["", "## The ink segmenter as served (its own arena): 200 photos from two threads, then 150 from one", "",
                  "| segmenter session | RSS kept MB (heap trimmed) | ms per photo (coarse + fine view) |",
                  "| --- | ---: | ---: |"]
        for label, m in results["segmenter_arena"].items():
            lines.append(f"| {label} | {m['kept_mb']:+.1f} | {m['ms_per_photo']:.2f} |")
    if "service" in results:
        s = results["service"]
        lines += ["", "## The service, one worker, 12 MP photos (wrk, 4 connections)", "",
                  f"RSS when ready {s['ready']['rss_mb']:.1f} MB (USS {s['ready']['uss_mb']:.1f}), peak during the run "
                  f"{s['peak_rss_mb_during']:.1f} MB ({s['load']['requests']} photos, {s['load']['errors']} errors), "
                  f"2 s after it {s['after']['rss_mb']:.1f} MB (USS {s['after']['uss_mb']:.1f}), "
                  f"{TRIM_INTERVAL_SECONDS:.0f} s later, once the worker's periodic trim has run, "
                  f"{s['settled']['rss_mb']:.1f} MB (USS {s['settled']['uss_mb']:.1f})."]
        if "mappings" in s:
            ready, settled = s["mappings"]["ready"], s["mappings"]["settled"]
            lines += ["", "What the worker's resident pages are (MB): shared libraries' pages (file-backed: the same pages "
                      "in every worker), and anonymous memory (each worker's own).", "",
                      "| backed by | when ready | after the run, trimmed |", "| --- | ---: | ---: |"]
            for name in ready:
                lines.append(f"| {name} | {ready[name]:.1f} | {settled.get(name, 0.0):.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=REPO / "model_store")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "memory")
    parser.add_argument("--seconds", type=float, default=15.0, help="the 12 MP photo run")
    parser.add_argument("--skip-service", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = run(args.store, args.out, service=not args.skip_service, seconds=args.seconds)
    write_report(args.out, results, render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
