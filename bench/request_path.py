"""CPU time of one upload's per-request path (`service.inference.preparation`), on the shipped user-style
uploads (tests/data/uploads: 3 files per condition of evaluation), one image per request.

    .venv/bin/python -m bench.request_path [--runs 15]

Thread CPU time, the minimum of `--runs` runs per file: on a shared machine wall time measures the
neighbours. Four paths, all in this process, model inference left out:

- `before`: what the data plane did until the path had one module: the inline decision opened the
  header (framing check, Pillow's header parse), then `prepare_image` opened it again;
- `mnist`, `uci-8x8`: the path now (header opened once) for a model of each encoding;
- `both`: one digit framed for both encodings, as POST /models/compare does for a mixed zoo.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from digit_contract.inputs import MNIST_INPUT, UCI_INPUT, InputSpec
from digit_frontend import decode, model_input, pipeline
from digit_frontend.structure import check_structure
from service.inference import preparation

UPLOADS = Path(__file__).resolve().parents[1] / "tests" / "data" / "uploads"
MAX_PIXELS = 16_777_216
INLINE_PIXELS = 128 * 128


def header(data: bytes) -> None:
    check_structure(data)
    with Image.open(io.BytesIO(data), formats=decode.SUPPORTED_FORMATS) as image:
        _ = image.size


def before(data: bytes) -> None:
    header(data)
    model_input.model_input([pipeline.prepare_image(data, max_pixels=MAX_PIXELS).pixels], MNIST_INPUT)


def now(*specs: InputSpec) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        uploads = preparation.open_uploads([preparation.ImageFile(data)], max_pixels=MAX_PIXELS)
        preparation.runs_inline(uploads, INLINE_PIXELS)
        prepared = [preparation.prepare_upload(uploads[0], {spec.encoding for spec in specs})]
        for spec in specs:
            preparation.model_batch(prepared, spec)

    return run


def cpu_ms(path: Callable[[bytes], None], data: bytes, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.thread_time()
        path(data)
        best = min(best, time.thread_time() - start)
    return best * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    files = [p.read_bytes() for p in sorted(UPLOADS.iterdir()) if p.suffix != ".json"]
    paths = {"header": header, "before": before, "mnist": now(MNIST_INPUT), "uci-8x8": now(UCI_INPUT),
             "both": now(MNIST_INPUT, UCI_INPUT)}
    print(f"{len(files)} uploads from {UPLOADS.name}/, thread CPU ms per upload (min of {runs} runs)")
    for name, path in paths.items():
        times = [cpu_ms(path, data, runs) for data in files]
        print(f"{name:>8}: median {statistics.median(times):.3f}  mean {statistics.mean(times):.3f}  "
              f"max {max(times):.3f}")


if __name__ == "__main__":
    main()
