"""Pick the pair reader's settings on validation numbers: `python -m bench.numbers.tune_pairs --data-dir DIR`.

`digit_frontend.numbers` reads a candidate as two digits at once where it is at least
`PAIR_MIN_WIDTH` digit heights wide, at a cost of `PAIR_COST` (log-probability) against cutting it.
Each validation number's candidates are found and read once (the pair reader at the narrowest width
tried), then chosen under every setting. Prints numbers read exactly per setting, canvases and scans
(the photos' row apart). Validation split only: the test split is for the report.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np

import digit_frontend.numbers as numbers_module
from bench.numbers.__main__ import CONDITIONS, MAX_PIXELS, numbers
from bench.numbers.oracle import already_read
from bench.numbers.reading import onnx_reader
from digit_contract.errors import NoInk
from digit_frontend.decode import decode_image
from digit_frontend.numbers import VERIFIER, NumberCandidates, choose_number, number_candidates, read_candidates
from digit_frontend.pairs import PairReader, PairReading
from digit_frontend.pipeline import use_front_end
from digit_frontend.segmenter import InkSegmenter
from training.data import load_mnist

COSTS = (0.0, 0.5, 1.0, 1.5, 2.0, 100.0)
WIDTHS = (0.5, 0.7)
GATES = (0.5, 0.9, 0.98)


def narrowed(candidates: NumberCandidates, width: float) -> NumberCandidates:
    """`candidates` as if the pair reader had read only those at least `width` digit heights wide."""
    if candidates.strip is None or candidates.pairs is None:
        return candidates
    strip = candidates.strip
    keep = np.array([(strip.candidates[i][2].right - strip.candidates[i][2].left) / strip.height >= width
                     for i in candidates.paired], bool)
    pairs = candidates.pairs
    return replace(candidates, paired=candidates.paired[keep], halves=[h for h, k in zip(candidates.halves, keep, strict=True) if k],
                   pairs=PairReading(pairs.left[keep], pairs.right[keep], pairs.pair[keep]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--per-length", type=int, default=20)
    args = parser.parse_args(argv)
    store = Path("model_store")
    use_front_end(InkSegmenter.from_store(store), PairReader.from_store(store))
    numbers_module.PAIR_MIN_WIDTH = min(WIDTHS)
    split = load_mnist(args.data_dir, download=False).validation
    read = onnx_reader()
    cases = []
    for seed in args.seeds:
        for number in numbers(split, args.per_length, seed):
            try:
                candidates = number_candidates(decode_image(number.data, max_pixels=MAX_PIXELS))
            except NoInk:
                continue
            cases.append((number, candidates, read_candidates(candidates, read)[candidates.framed]))
    print(f"{len(cases)} numbers (seeds {args.seeds}); cells: canvas+scan exact / photo_a exact")
    settings = list(itertools.product(WIDTHS, GATES))
    print("| PAIR_COST \\ PAIR_MIN_WIDTH, PAIR_MIN_PROBABILITY | " + " | ".join(f"{w}, {g}" for w, g in settings) + " |")
    print("|---" * (len(settings) + 1) + "|")
    for cost in COSTS:
        numbers_module.PAIR_COST = cost
        cells = []
        for width, gate in settings:
            numbers_module.PAIR_MIN_PROBABILITY = gate
            right = {"flat": 0, "photo": 0}
            for number, candidates, probabilities in cases:
                try:
                    found = choose_number(narrowed(candidates, width), already_read(probabilities), verifier=VERIFIER)
                except NoInk:
                    continue
                assert found.probabilities is not None
                got = "".join(str(int(d)) for d in found.probabilities.argmax(axis=1))
                right["photo" if number.condition == "photo_a" else "flat"] += got == number.truth
            cells.append(f"{right['flat']} / {right['photo']}")
        print(f"| {cost} | " + " | ".join(cells) + " |")
    flat = sum(n.condition != "photo_a" for n, _, _ in cases)
    print(f"\nof {flat} canvas+scan and {len(cases) - flat} photo_a numbers; "
          f"conditions {', '.join(CONDITIONS)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
