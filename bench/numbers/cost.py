"""What `POST /read` costs against four `POST /predict` calls: `python -m bench.numbers.cost`.

One 4-digit canvas number (the first MNIST test-sample digit of 2, 0, 4, 7, as the web page's test
uploads) sent to `/read`, and its four digits, each as its own canvas, sent to `/predict`; in-process
(FastAPI's TestClient over the committed store), `--rounds` times each after one warm-up, median
milliseconds per round. Run it on a quiet machine: the figures share its cores with whatever runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from bench.numbers.compose import Layout, compose_number
from evaluation.render import render_upload
from service.server.app import create_app
from service.settings import Settings
from training.data import load_mnist


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--data-dir", type=Path, default=None, help="MNIST directory (else MNIST_DIR, then the cache)")
    args = parser.parse_args(argv)
    mnist = load_mnist(args.data_dir, download=False).test
    digits = [mnist.images[int(np.flatnonzero(mnist.labels == d)[0])] for d in (2, 0, 4, 7)]
    rng = np.random.default_rng(0)
    number = render_upload(compose_number(digits, Layout(), rng), "canvas_black", rng).data
    singles = [render_upload(d, "canvas_black", rng).data for d in digits]
    with TestClient(create_app(Settings())) as client:

        def read() -> None:
            assert client.post("/read", files={"file": ("n.png", number, "image/png")}).status_code == 200

        def predict() -> None:
            for data in singles:
                assert client.post("/predict", files={"file": ("d.png", data, "image/png")}).status_code == 200

        for name, call in (("read", read), ("4 x predict", predict)):
            call()
            times = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                call()
                times.append((time.perf_counter() - start) * 1000)
            print(f"{name}: median {statistics.median(times):.1f} ms over {args.rounds} rounds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
