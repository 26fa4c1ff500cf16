"""Evaluate number reading: `python -m bench.numbers --split test --per-length 10`.

Numbers of 2-6 digits from one MNIST split (validation for tuning, test for the report), laid out
by `compose.compose_number` (size, baseline and slant jitter; a touching pair in about a third),
rendered as canvases and scans (`evaluation.render`) and as photos by renderer A
(`training.ink_scenes`), read in-process by `digit_frontend.numbers` with the upload default model
(cnn_augmented), the path `POST /read` takes. Writes bench/numbers/results-<split>.json and prints
a markdown table: exact string per length and condition, digits right, split and merge errors,
touching pairs split right.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from bench.numbers.compose import Layout, compose_number
from bench.numbers.reading import onnx_reader
from digit_contract.errors import NoInk
from digit_frontend.numbers import read_number_image
from digit_frontend.pairs import PairReader
from digit_frontend.pipeline import use_front_end
from digit_frontend.segmenter import InkSegmenter
from evaluation.render import render_upload
from training.data import RawSplit, load_mnist
from training.ink_scenes import render_scene

CONDITIONS = ("canvas_black", "canvas_opaque", "scan_grey", "scan_colour", "photo_a")
LENGTHS = (2, 3, 4, 5, 6)



MAX_PIXELS = 50_000_000


@dataclass(frozen=True)
class Number:
    """One number of the evaluation: how it was drawn, what it says, and the uploaded file."""

    condition: str
    truth: str
    touching: frozenset[int]
    data: bytes


def numbers(split: RawSplit, per_length: int, seed: int,
            conditions: Sequence[str] = CONDITIONS) -> Iterator[Number]:
    """The evaluation's numbers, `per_length` of each length per condition, in a fixed order from
    `seed` (a condition left out of `conditions` is drawn and skipped: the others stay the same)."""
    rng = np.random.default_rng(seed)
    for position, condition in enumerate(CONDITIONS):
        if not set(CONDITIONS[position:]) & set(conditions):
            return  # nothing asked for is drawn after this: the rest need not be rendered
        for length in LENGTHS:
            for _ in range(per_length):
                index = rng.integers(0, len(split.labels), length)
                truth = "".join(str(int(split.labels[i])) for i in index)
                touching = frozenset({int(rng.integers(0, length - 1))}) if rng.random() < 0.35 else frozenset()
                layout = Layout(touching=touching, slant=float(rng.uniform(-0.3, 0.3)),
                                angle=float(rng.uniform(-6, 6)))
                data = render(compose_number([split.images[i] for i in index], layout, rng), condition, rng)
                if condition in conditions:
                    yield Number(condition, truth, touching, data)


def render(number: npt.NDArray[np.uint8], condition: str, rng: np.random.Generator) -> bytes:
    if condition == "photo_a":
        _, data = cv2.imencode(".jpg", render_scene(number, 0, rng).image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        return data.tobytes()
    return render_upload(number, condition, rng).data


def digits_right(truth: str, got: str) -> int:
    """Truth digits matched by an edit-distance alignment (a split or merge costs only its digits)."""
    n, m = len(truth), len(got)
    cost = np.zeros((n + 1, m + 1), np.int64)
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1, cost[i - 1, j - 1] + (truth[i - 1] != got[j - 1]))
    # Matches = aligned pairs that agree: n minus substitutions and deletions on the best path.
    i, j, right = n, m, 0
    while i and j:
        if cost[i, j] == cost[i - 1, j - 1] + (truth[i - 1] != got[j - 1]):
            right += truth[i - 1] == got[j - 1]
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return right


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", choices=("validation", "test"), default="validation")
    parser.add_argument("--per-length", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--segmenter", action="store_true", help="find ink with the store's segmenter")
    parser.add_argument("--no-pairs", action="store_true", help="only cut touching digits (no pair reader)")
    parser.add_argument("--data-dir", type=Path, default=None, help="MNIST directory (else MNIST_DIR, then the cache)")
    args = parser.parse_args(argv)
    use_front_end(InkSegmenter.from_store(Path("model_store")) if args.segmenter else None,
                  None if args.no_pairs else PairReader.from_store(Path("model_store")))
    mnist = load_mnist(args.data_dir, download=False)
    split = mnist.validation if args.split == "validation" else mnist.test
    read = onnx_reader()
    records = []
    start = time.perf_counter()
    for number in numbers(split, args.per_length, args.seed):
        try:
            found = read_number_image(number.data, max_pixels=MAX_PIXELS, read=read)
            assert found.probabilities is not None
            got = "".join(str(int(d)) for d in found.probabilities.argmax(axis=1))
        except NoInk:
            got = ""
        records.append({"condition": number.condition, "length": len(number.truth), "truth": number.truth,
                        "got": got, "touching": sorted(number.touching), "right": digits_right(number.truth, got)})
    seconds = time.perf_counter() - start
    out = Path(__file__).parent / f"results-{args.split}.json"
    out.write_text(json.dumps({"split": args.split, "segmenter": args.segmenter, "pairs": not args.no_pairs,
                               "seconds": seconds,
                               "records": records}, indent=1))
    print(markdown(records, args.split, args.segmenter, not args.no_pairs))
    return 0


def markdown(records: list[dict[str, Any]], split: str, segmenter: bool, pairs: bool = False) -> str:
    lines = [f"MNIST {split} digits, front end: {'segmenter' if segmenter else 'classical'}"
             f"{', pair reader' if pairs else ''}, model cnn_augmented\n",
             "| condition | " + " | ".join(f"{n} digits" for n in LENGTHS) + " | digits right | split | merged |",
             "|---" * (len(LENGTHS) + 4) + "|"]
    for condition in CONDITIONS:
        rows = [r for r in records if r["condition"] == condition]
        cells = []
        for n in LENGTHS:
            sub = [r for r in rows if r["length"] == n]
            cells.append(f"{sum(r['got'] == r['truth'] for r in sub)}/{len(sub)}")
        digits = sum(r["right"] for r in rows) / max(1, sum(r["length"] for r in rows))
        split_ = sum(len(r["got"]) > r["length"] for r in rows)
        merged = sum(0 < len(r["got"]) < r["length"] for r in rows)
        lines.append(f"| {condition} | " + " | ".join(cells) + f" | {digits:.1%} | {split_} | {merged} |")
    touching = [r for r in records if r["touching"]]
    ok = sum(len(r["got"]) == r["length"] for r in touching)
    lines.append(f"\nNumbers with a touching pair read with the right digit count: {ok}/{len(touching)}; "
                 f"exactly right: {sum(r['got'] == r['truth'] for r in touching)}/{len(touching)}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
