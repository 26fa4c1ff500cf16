"""In-process cost of reading an upload: the fastest correct decode against the service's preparation.

A kernel-style measurement, one thread, no HTTP: for every body of every payload kind, the CPU
time of

- `reference decode`: `bench.peers.decode_ceiling.decode_upload`, what the decode ceiling does
  (header check, reduced JPEG decode to ~512 px, EXIF orientation);
- `service decode`: `digit_frontend.decode.decode_image`, the service's own decode step, when the
  module has one (it is being rewritten: whatever is there at the time is measured);
- `service prepare`: `service.inference.preparation.prepare_file`, the service's own path from
  bytes to the 28x28 frame (header check, decode budget, decode, find, frame).

The target speaks of the preparation's cost beyond decoding: `prep = prepare - reference decode`,
which must be no more than the reference decode itself. Subtracting the reference decode, not the
service's own, charges a slower-than-necessary decode to the preparation, where it belongs.

Each function is called on the bodies in turn (the three interleaved, so drift on a shared machine
hits them alike) until each has at least `min_samples` samples and `budget_s` of CPU; medians.
CPU time is the process's (time.process_time), so a library that spreads work over threads is
charged for all of them; OpenCV, when the service uses it, is held to one thread.

    python -m bench.preparation --payloads canvas,photo_2mp
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.payloads import PAYLOAD_KINDS, UploadFile, load_digits, realistic_uploads
from bench.peers.decode_ceiling import decode_upload
from bench.toolkit import REPO

MAX_SAMPLES = 5000
"""Per function and kind: a 28x28 PNG takes ~0.1 ms, so the budget alone would mean tens of thousands."""


def _timed(function: Callable[[bytes], object], data: bytes) -> tuple[float, str | None]:
    """CPU seconds of one call, and the exception's type name if it raised (its time still counts)."""
    start = time.process_time()
    try:
        function(data)
        failure = None
    except Exception as error:  # a "no ink" answer costs CPU like any other: time it, name it
        failure = type(error).__name__
    return time.process_time() - start, failure


def _single_threaded() -> None:
    """Hold the libraries that spread over cores to one thread: this is a per-image, per-core figure."""
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        cv2.setNumThreads(1)


def measure_kind(files: list[UploadFile], *, max_pixels: int, min_samples: int = 15,
                 budget_s: float = 0.5) -> dict[str, Any]:
    """Medians (ms of CPU) of the reference decode, the service's decode and its prepare over `files`."""
    preparation = importlib.import_module("service.inference.preparation")
    decode = importlib.import_module("digit_frontend.decode")
    _single_threaded()
    functions: dict[str, Callable[[bytes], object]] = {
        "reference_decode": lambda data: decode_upload(data, max_pixels=max_pixels),
        "service_prepare": lambda data: preparation.prepare_file(data, {"mnist"}, max_pixels=max_pixels),
        "service_decode": lambda data: decode.decode_image(data, max_pixels=max_pixels),
    }
    samples: dict[str, list[float]] = {name: [] for name in functions}
    failures: dict[str, dict[str, int]] = {name: {} for name in functions}
    for function in functions.values():  # one unmeasured call each: imports, caches, first allocations
        _timed(function, files[0].data)
    while True:
        for file in files:
            for name, function in functions.items():
                seconds, failure = _timed(function, file.data)
                samples[name].append(seconds)
                if failure is not None:
                    failures[name][failure] = failures[name].get(failure, 0) + 1
        counts = [len(s) for s in samples.values()]
        if min(counts) >= MAX_SAMPLES or (min(counts) >= min_samples
                                          and min(sum(s) for s in samples.values()) >= budget_s):
            break
    medians = {name: statistics.median(values) * 1e3 for name, values in samples.items()}
    prep = medians["service_prepare"] - medians["reference_decode"]
    rounds = len(samples["service_prepare"]) // len(files)
    return {
        "bodies": len(files),
        "sizes": sorted({f"{f.width}x{f.height}" for f in files}),
        "mean_bytes": round(statistics.fmean(len(f.data) for f in files)),
        "samples_per_function": len(samples["service_prepare"]),
        "rounds": rounds,
        "median_ms": {name: round(value, 4) for name, value in medians.items()},
        "p90_ms": {name: round(statistics.quantiles(values, n=10)[-1] * 1e3, 4) for name, values in samples.items()},
        "prep_ms": round(prep, 4),
        "prep_over_decode": round(prep / medians["reference_decode"], 3) if medians["reference_decode"] else None,
        # Per body (failures repeat each round): e.g. NoInk on a photo the pipeline cannot read.
        "failures_per_round": {name: {kind: n // max(1, rounds) for kind, n in found.items()}
                               for name, found in failures.items() if found},
    }


def measure_preparation(uploads: dict[str, list[UploadFile]], *, max_pixels: int, min_samples: int = 15,
                        budget_s: float = 0.5, front_end: str = "learned") -> dict[str, Any]:
    """`measure_kind` for every payload kind; the result is what report.json keeps under `preparation`.

    `front_end`: "learned" prepares as the service does by default (the store's ink segmenter for
    photos), "classical" with the hand-written rules alone.
    """
    from digit_frontend.pipeline import use_front_end
    from digit_frontend.segmenter import InkSegmenter

    use_front_end(InkSegmenter.from_store(REPO / "model_store") if front_end == "learned" else None)
    kinds = {}
    for kind, files in uploads.items():
        kinds[kind] = measure_kind(files, max_pixels=max_pixels, min_samples=min_samples, budget_s=budget_s)
        m = kinds[kind]["median_ms"]
        print(f"   {kind:<11} reference decode {m['reference_decode']:8.3f} ms  service decode "
              f"{m.get('service_decode', float('nan')):8.3f} ms  prepare {m['service_prepare']:8.3f} ms  "
              f"prep/decode {kinds[kind]['prep_over_decode']}", flush=True)
    return {"max_pixels": max_pixels, "min_samples": min_samples, "budget_s": budget_s, "front_end": front_end,
            "kinds": kinds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.preparation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payloads", default=",".join(PAYLOAD_KINDS), help="payload kinds, comma-separated")
    parser.add_argument("--bodies", type=int, default=None, help="bodies per kind (default: the kind's own)")
    parser.add_argument("--budget", type=float, default=0.5, help="CPU seconds per function and kind, at least")
    parser.add_argument("--max-pixels", type=int, default=50_000_000)
    parser.add_argument("--front-end", choices=("learned", "classical"), default="learned")
    args = parser.parse_args(argv)
    digits = load_digits()
    uploads = {kind: realistic_uploads(kind, digits, count=args.bodies) for kind in args.payloads.split(",") if kind}
    print(json.dumps(measure_preparation(uploads, max_pixels=args.max_pixels, budget_s=args.budget,
                                         front_end=args.front_end), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
