"""The numbers reader's candidate verifier, fitted on MNIST training digits: `python -m
training.numbers_verifier --data-dir DIR` (about 15 minutes on 2 shared cores; prints the weights).

Numbers laid out by `bench.numbers.compose` from the first 54,000 MNIST images (the training split;
never the validation or test digits), rendered as canvases and scans as `bench.numbers` renders them,
go through `digit_frontend.numbers` up to the candidates, which cnn_augmented reads. A structured
perceptron then learns weights for `candidate_features` such that the choice (`choose_digits`, with
each candidate's log-probability plus the weighted features) reads each number's true digits: where
it reads one wrong, the weights move towards the features of the best division of the line into the
true digits and away from those of the division chosen. The weights (45 numbers, no store entry) are
`digit_frontend.numbers.VERIFIER`; epochs and rate were picked on the validation split.
"""

from __future__ import annotations

import argparse
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.numbers.__main__ import CONDITIONS, MAX_PIXELS, numbers
from bench.numbers.reading import onnx_reader
from digit_contract.errors import NoInk
from digit_frontend.decode import decode_image
from digit_frontend.numbers import (
    DIGIT_COST,
    DROP_COST,
    DROP_HEIGHT,
    Slot,
    Strip,
    candidate_features,
    candidate_scores,
    choose_digits,
    number_candidates,
    read_candidates,
)
from training.data import load_mnist


def truth_path(example: Example, score: npt.NDArray[np.float64], classes: npt.NDArray[np.intp]) -> list[int]:
    """The best-scoring division of the line into the truth's digits, each a candidate the model
    reads as that digit (short primitives may be left out, as `choose_digits` may); [] when none."""
    strip, digits = example.strip, [int(c) for c in example.truth]
    n, k = len(strip.primitives), len(digits)
    best = np.full((n + 1, k + 1), -np.inf)
    best[0, 0] = 0.0
    back: dict[tuple[int, int], int] = {}  # (end, digits) -> candidate, or -1 for a dropped primitive
    ending: dict[int, list[int]] = {}
    for index, (_, end, _, _) in enumerate(strip.candidates):
        ending.setdefault(end, []).append(index)
    for end in range(1, n + 1):
        if strip.primitives[end - 1].box[3] < DROP_HEIGHT * strip.height:
            best[end] = best[end - 1] - DROP_COST
            for j in range(k + 1):
                back[end, j] = -1
        for index in ending.get(end, []):
            first, _, _, prior = strip.candidates[index]
            value = score[index] + prior - DIGIT_COST - strip.primitives[first].cut
            for j in range(1, k + 1):
                if classes[index] == digits[j - 1] and best[first, j - 1] + value > best[end, j]:
                    best[end, j] = best[first, j - 1] + value
                    back[end, j] = index
    if not np.isfinite(best[n, k]):
        return []
    chosen, end, j = [], n, k
    while end > 0:
        index = back[end, j]
        if index < 0:
            end -= 1
            continue
        chosen.append(index)
        end, j = strip.candidates[index][0], j - 1
    return chosen[::-1]


@dataclass(frozen=True)
class Example:
    """One training number as the choice sees it: its strip without pixels, every candidate's score
    before the verifier, features and reading, and the truth."""

    strip: Strip
    base: npt.NDArray[np.float64]
    probabilities: npt.NDArray[np.float32]
    truth: str

    @property
    def classes(self) -> npt.NDArray[np.intp]:
        return np.asarray(self.probabilities.argmax(axis=1))

    @property
    def features(self) -> npt.NDArray[np.float64]:
        return candidate_features(self.strip, self.probabilities)


def _light(slot: Slot) -> Slot:
    # The line's pixel selection is all that is left out: the features need the candidate's mask.
    return Slot(np.zeros(0, bool), slot.mask, slot.box, slot.left, slot.right, slot.cut, slot.joined)


def collect(per_length: int, seed: int, data_dir: Path | None) -> list[Example]:
    """The training numbers (canvases and scans), each read by the model up to the choice."""
    split = load_mnist(data_dir, download=False).train
    read = onnx_reader()
    examples = []
    for number in numbers(split, per_length, seed, CONDITIONS[:4]):
        try:
            candidates = number_candidates(decode_image(number.data, max_pixels=MAX_PIXELS))
        except NoInk:
            continue
        strip, framed = candidates.strip, candidates.framed
        if strip is None or not framed.any():
            continue
        probabilities = read_candidates(candidates, read)
        base = candidate_scores(candidates, probabilities)
        light = Strip([_light(p) for p in strip.primitives],
                      [(a, b, _light(slot), prior) for a, b, slot, prior in strip.candidates], strip.shear, strip.height)
        examples.append(Example(light, base, probabilities, number.truth))
    return examples


def fit(examples: list[Example], epochs: int, rate: float) -> npt.NDArray[np.float64]:
    """Averaged structured perceptron: where the choice, with the verifier's current weights added to
    each candidate's score, reads a number wrong, the weights move towards the truth path's features
    and away from the chosen path's. Starting at 0: the choice as it was."""
    features = [example.features for example in examples]
    classes = [example.classes for example in examples]
    weights = np.zeros(features[0].shape[1])
    total, steps = np.zeros_like(weights), 0
    rng = np.random.default_rng(0)
    for epoch in range(epochs):
        wrong = 0
        for index in rng.permutation(len(examples)):
            example, feature, klass = examples[index], features[index], classes[index]
            score = example.base + feature @ weights
            chosen = [index for index, _ in choose_digits(example.strip, score)]
            if "".join(str(klass[i]) for i in chosen) != example.truth:
                wrong += 1
                truth = truth_path(example, score, klass)
                if truth:
                    weights += rate * (feature[truth].sum(axis=0) - feature[chosen].sum(axis=0))
            total += weights
            steps += 1
        print(f"epoch {epoch}: {len(examples) - wrong}/{len(examples)} read exactly")
    return total / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-length", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=0.05)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=None, help="keep the read numbers here (pickle)")
    parser.add_argument("--out", type=Path, default=Path("numbers_verifier.npy"))
    args = parser.parse_args(argv)
    if args.cache is not None and args.cache.exists():
        examples = pickle.loads(args.cache.read_bytes())  # noqa: S301 - a file this command wrote
    else:
        examples = [e for seed in args.seeds for e in collect(args.per_length, seed, args.data_dir)]
        if args.cache is not None:
            args.cache.write_bytes(pickle.dumps(examples))
    weights = fit(examples, args.epochs, args.rate)
    np.save(args.out, weights)
    print("VERIFIER = np.array([" + ", ".join(f"{w:.4f}" for w in weights) + "])")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
