"""Where the misses are lost, choice or candidates: `python -m bench.numbers.oracle --data-dir DIR`.

Reads the evaluation's numbers of the validation split (canvases and scans by default) as
`bench.numbers` does, and beside each reading finds the best way to divide the line into the TRUE
digits among the candidates the reader offered: the product of the model's probabilities for the true
digits, maximised by the dynamic programme `choose_digits` runs, held to the truth. A miss whose truth
path reads with probability over one half was lost by the choice (the priors and costs that compare
divisions); any other by the candidates (no cut gives the digits, or their framing or rendering loses
them). Validation only: it reads the truth, and what it says is for tuning.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.numbers.__main__ import CONDITIONS, MAX_PIXELS, numbers
from bench.numbers.reading import onnx_reader
from digit_contract.errors import NoInk
from digit_frontend.decode import decode_image
from digit_frontend.numbers import (
    DROP_HEIGHT,
    VERIFIER,
    NumberCandidates,
    Reader,
    choose_number,
    number_candidates,
    read_candidates,
)
from digit_frontend.pipeline import PreparedImage, use_front_end
from digit_frontend.segmenter import InkSegmenter
from training.data import load_mnist

CHOICE = np.log(0.5)
"""A truth path at least this likely (log) was there to be chosen."""


def truth_path(candidates: NumberCandidates, probabilities: npt.NDArray[np.float32], truth: str) -> float:
    """Log-probability of the best division of the line into `truth`'s digits, each a framed candidate
    read as its true digit (short primitives may be left out, as `choose_digits` may); -inf: none."""
    digits = [int(c) for c in truth]
    strip = candidates.strip
    if strip is None:  # already one digit
        return float(np.log(max(float(probabilities[0, digits[0]]), 1e-9))) if len(digits) == 1 else -np.inf
    n, k = len(strip.primitives), len(digits)
    best = np.full((n + 1, k + 1), -np.inf)
    best[0, 0] = 0.0
    ending: dict[int, list[int]] = {}
    for index, (_, end, _, _) in enumerate(strip.candidates):
        ending.setdefault(end, []).append(index)
    for end in range(1, n + 1):
        if strip.primitives[end - 1].box[3] < DROP_HEIGHT * strip.height:
            best[end] = best[end - 1]
        for index in ending.get(end, []):
            if candidates.framed[index]:
                first = strip.candidates[index][0]
                read = np.log(np.maximum(probabilities[index, digits].astype(np.float64), 1e-9))
                best[end, 1:] = np.maximum(best[end, 1:], best[first, :-1] + read)
    return float(best[n, k])


def already_read(probabilities: npt.NDArray[np.float32]) -> Reader:
    """A reader that answers what was read already (the framed candidates, in order)."""

    def read(_: Sequence[PreparedImage]) -> npt.NDArray[np.float32]:
        return probabilities

    return read


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-length", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS[:4]))
    parser.add_argument("--data-dir", type=Path, default=None, help="MNIST directory (else MNIST_DIR, then the cache)")
    args = parser.parse_args(argv)
    use_front_end(InkSegmenter.from_store(Path("model_store")))
    split = load_mnist(args.data_dir, download=False).validation
    read = onnx_reader()
    counts: Counter[tuple[str, str]] = Counter()
    for number in numbers(split, args.per_length, args.seed, args.conditions):
        kind = "touching" if number.touching else "apart"
        try:
            candidates = number_candidates(decode_image(number.data, max_pixels=MAX_PIXELS))
            probabilities = read_candidates(candidates, read)
            found = choose_number(candidates, already_read(probabilities[candidates.framed]), verifier=VERIFIER)
            assert found.probabilities is not None
            got = "".join(str(int(d)) for d in found.probabilities.argmax(axis=1))
            path = truth_path(candidates, probabilities, number.truth)
        except NoInk:
            got, path = "", -np.inf
        counts[kind, "read" if got == number.truth else "choice" if path >= CHOICE else "candidates"] += 1
    print("| numbers | read exactly | lost by the choice | lost by the candidates |\n|---|---|---|---|")
    for kind in ("apart", "touching"):
        total = sum(v for (k, _), v in counts.items() if k == kind)
        print(f"| {kind} ({total}) | {counts[kind, 'read']} | {counts[kind, 'choice']} | {counts[kind, 'candidates']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
