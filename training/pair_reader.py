"""The pair reader: two touching digits read at once (`digit_frontend.pairs`).

`python -m training.pair_reader render --out DIR --data-dir MNIST` then `... train --data DIR`.

**Data.** Numbers of one and two digits laid out by `bench.numbers.compose` from the first 54,000
MNIST images (the training split; the validation split's digits make the held-out set, the test
digits are never used), the pairs touching in 60% (strokes meet, as pens join "00"), with the
slant, size, baseline and line angle of the numbers evaluation, rendered as canvases and scans as
`bench.numbers` renders them. Each goes through `digit_frontend.numbers` up to its candidates, as
`POST /read` does; the candidate that spans the whole line (when the numbers reader offers one:
no wide gap, not over 1.6 digit heights) is framed by `frame_pair` and labelled: two digits and
which, or one digit (the "not a pair" examples, whose sides are not trained). So the reader sees
exactly the masks the numbers reader will ask it about, cut, cleaned and binarised by the front end.
`mine` adds candidates of longer numbers (2-6 digits) labelled by the division the numbers reader
found without the pair reader, where it read the number right: pieces of digits and a digit with a
neighbour's tail are what the reader must learn to call "not a pair".

**Model.** Three 3x3 convolution blocks (24-48-64 channels, each pooled), a dense layer of 128,
and three heads: left digit (10), right digit (10), two digits or not (1); exported to ONNX as one
output (N, 21) = (left, right, pair).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench.numbers.__main__ import CONDITIONS, MAX_PIXELS, numbers, render
from bench.numbers.compose import Layout, compose_number
from bench.numbers.reading import onnx_reader
from digit_contract.errors import NoInk
from digit_frontend.decode import decode_image
from digit_frontend.numbers import VERIFIER, candidate_scores, choose_digits, number_candidates, read_candidates
from digit_frontend.pairs import FRAME, frame_pair
from training.data import load_mnist

PAIR_SHARE = 0.8
"""Share of two-digit numbers (the rest are one digit: what a pair is not)."""

TOUCHING_SHARE = 0.6
"""Share of the pairs whose strokes meet."""

CANVAS_AND_SCAN = CONDITIONS[:4]

MINE_WIDTH = 0.5
"""Mined candidates are at least this many digit heights wide (the narrowest the numbers reader asks about)."""


def sample(images: NDArray[np.uint8], labels: NDArray[np.uint8],
           rng: np.random.Generator) -> tuple[NDArray[np.float32], tuple[int, int, int]] | None:
    """One framed whole-line candidate and its label (left, right, is a pair), or None when the
    numbers reader offers no candidate spanning the line."""
    length = 2 if rng.random() < PAIR_SHARE else 1
    index = rng.integers(0, len(labels), length)
    touching = frozenset({0}) if length == 2 and rng.random() < TOUCHING_SHARE else frozenset()
    layout = Layout(touching=touching, slant=float(rng.uniform(-0.3, 0.3)), angle=float(rng.uniform(-6, 6)))
    number = compose_number([images[i] for i in index], layout, rng)
    data = render(number, str(rng.choice(CANVAS_AND_SCAN)), rng)
    try:
        strip = number_candidates(decode_image(data, max_pixels=MAX_PIXELS)).strip
    except NoInk:
        return None
    if strip is None:
        return None
    whole = [slot for first, end, slot, _ in strip.candidates if first == 0 and end == len(strip.primitives)]
    if not whole:
        return None
    digits = [int(labels[i]) for i in index]
    label = (digits[0], digits[1], 1) if length == 2 else (digits[0], digits[0], 0)
    return frame_pair(whole[0].mask), label


def _render_chunk(task: tuple[str, int, int, str | None]) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    split_name, count, seed, data_dir = task
    mnist = load_mnist(Path(data_dir) if data_dir else None, download=False)
    split = mnist.train if split_name == "train" else mnist.validation
    rng = np.random.default_rng(seed)
    frames: list[NDArray[np.uint8]] = []
    labels: list[tuple[int, int, int]] = []
    while len(frames) < count:
        got = sample(split.images, split.labels, rng)
        if got is not None:
            frames.append(np.round(got[0] * 255).astype(np.uint8))
            labels.append(got[1])
    return np.stack(frames), np.array(labels, np.uint8)


def render_dataset(out: Path, data_dir: Path | None, train: int, validation: int, seed: int, workers: int) -> None:
    """Render the training and held-out sets to `out/{train,validation}.npz` (frames as uint8)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, count, base in (("validation", validation, seed + 1000), ("train", train, seed)):
        chunks = max(workers, count // 2000)
        tasks = [(name, count // chunks + (1 if k < count % chunks else 0), base * 100 + k,
                  str(data_dir) if data_dir else None) for k in range(chunks)]
        start = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_render_chunk, tasks)
        frames = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        np.savez_compressed(out / f"{name}.npz", frames=frames, labels=labels)
        print(f"{name}: {len(frames)} in {time.perf_counter() - start:.0f} s, pairs {labels[:, 2].mean():.2f}")


def mine(task: tuple[int, int, str | None]) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Candidates of longer training numbers, labelled by the division the numbers reader found
    without the pair reader where that division read the number right: a candidate at least
    `MINE_WIDTH` digit heights wide that spans exactly two of its digits is the pair of those
    digits; any other (one digit, a digit with a piece of its neighbour, pieces of two: what the
    whole-line set lacks) is not a pair. Canvases and scans of MNIST training digits."""
    per_length, seed, data_dir = task
    split = load_mnist(Path(data_dir) if data_dir else None, download=False).train
    read = onnx_reader()
    frames, labels = [], []
    for number in numbers(split, per_length, seed, CANVAS_AND_SCAN):
        try:
            candidates = number_candidates(decode_image(number.data, max_pixels=MAX_PIXELS))
        except NoInk:
            continue
        strip, framed = candidates.strip, candidates.framed
        if strip is None or not framed.any():
            continue
        probabilities = read_candidates(candidates, read)
        chosen = [i for i, _ in choose_digits(strip, candidate_scores(candidates, probabilities, VERIFIER))]
        if "".join(str(int(probabilities[i].argmax())) for i in chosen) != number.truth:
            continue  # the division is not known to be right
        starts = {strip.candidates[i][0]: k for k, i in enumerate(chosen)}
        ends = {strip.candidates[i][1]: k for k, i in enumerate(chosen)}
        for first, end, slot, _ in strip.candidates:
            if (slot.right - slot.left) / strip.height < MINE_WIDTH:
                continue
            k, last = starts.get(first), ends.get(end)
            # Two whole digits; else one digit, or a piece of one with or without its neighbour.
            label = (int(number.truth[k]), int(number.truth[k + 1]), 1) if k is not None and last == k + 1 else (0, 0, 0)
            frames.append(np.round(frame_pair(slot.mask) * 255).astype(np.uint8))
            labels.append(label)
    return np.stack(frames), np.array(labels, np.uint8)


def mine_dataset(out: Path, data_dir: Path | None, per_length: int, seeds: Sequence[int], workers: int) -> None:
    """Mine candidates (`mine`) of numbers drawn from `seeds` into `out/mined.npz`."""
    tasks = [(per_length, seed, str(data_dir) if data_dir else None) for seed in seeds]
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        parts = pool.map(mine, tasks)
    frames = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    np.savez_compressed(out / "mined.npz", frames=frames, labels=labels)
    print(f"mined: {len(frames)} in {time.perf_counter() - start:.0f} s, pairs {labels[:, 2].mean():.2f}")


def build_reader():  # type: ignore[no-untyped-def]  # keras is imported lazily
    import keras
    from keras import layers

    image = keras.Input((*FRAME, 1), name="image")
    x = image
    for filters in (24, 48, 64):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)  # position matters: which digit is on the left
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    left = layers.Dense(10, activation="softmax", name="left")(x)
    right = layers.Dense(10, activation="softmax", name="right")(x)
    pair = layers.Dense(1, activation="sigmoid", name="pair")(x)
    return keras.Model(image, [left, right, pair], name="pair_reader")


def _arrays(path: Path) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    data = np.load(path)
    return (data["frames"].astype(np.float32) / 255.0)[..., None], data["labels"]


def _targets(labels: NDArray[np.uint8]) -> tuple[list[Any], list[Any]]:
    """(left, right, pair) targets and their sample weights, in the model's output order."""
    # A lone digit trains only the pair head: its "left" and "right" are not defined.
    is_pair = labels[:, 2].astype(np.float32)
    return [labels[:, 0], labels[:, 1], is_pair], [is_pair, is_pair, np.ones_like(is_pair)]


def evaluate(out: NDArray[np.float32], labels: NDArray[np.uint8]) -> dict[str, float]:
    """Both digits right (of true pairs), and pair-or-not right (all), from the (N, 21) output."""
    is_pair = labels[:, 2] == 1
    both = (out[:, :10].argmax(1) == labels[:, 0]) & (out[:, 10:20].argmax(1) == labels[:, 1])
    return {"pairs_read": float(both[is_pair].mean()), "pair_or_not": float(((out[:, 20] > 0.5) == is_pair).mean())}


def train(data: Path, store: Path, epochs: int, batch: int, seed: int) -> Path:
    import keras

    keras.utils.set_random_seed(seed)
    x, labels = _arrays(data / "train.npz")
    if (data / "mined.npz").exists():
        mined_x, mined_labels = _arrays(data / "mined.npz")
        x, labels = np.concatenate([x, mined_x]), np.concatenate([labels, mined_labels])
    vx, vlabels = _arrays(data / "validation.npz")
    model = build_reader()  # type: ignore[no-untyped-call]
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=["sparse_categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy"])
    targets, weights = _targets(labels)
    vtargets, vweights = _targets(vlabels)
    schedule = keras.callbacks.LearningRateScheduler(lambda epoch: 1e-3 * 0.5 ** max(0, epoch - epochs // 2))
    history = model.fit(x, targets, sample_weight=weights, validation_data=(vx, vtargets, vweights),
                        epochs=epochs, batch_size=batch, callbacks=[schedule], verbose=2)
    rows = [{k: float(v[i]) for k, v in history.history.items()} for i in range(epochs)]
    return publish(model, store, data, rows, seed)


def export_onnx(model, path: Path) -> None:  # type: ignore[no-untyped-def]
    import onnx
    import tensorflow as tf
    import tf2onnx

    signature = [tf.TensorSpec((None, *FRAME, 1), tf.float32, name="image")]

    @tf.function(input_signature=signature)  # type: ignore[untyped-decorator]
    def infer(image: tf.Tensor) -> tf.Tensor:
        left, right, pair = model(image, training=False)
        return tf.concat([left, right, pair], axis=1)

    proto, _ = tf2onnx.convert.from_function(infer, input_signature=signature, opset=17)
    proto.graph.output[0].name  # noqa: B018 - one output, checked below
    onnx.checker.check_model(proto, full_check=True)
    path.write_bytes(proto.SerializeToString())


def publish(model, store: Path, data: Path, history: list[dict[str, float]], seed: int) -> Path:  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    from digit_contract.frontend_card import FRONTEND_DIR, PAIR_READER_NAME, PairReaderCard, PairReaderMetrics
    from digit_contract.store import CARD_FILE, MODEL_FILE, publish_version

    vx, vlabels = _arrays(data / "validation.npz")

    def build(directory: Path, version: int) -> None:
        path = directory / MODEL_FILE
        export_onnx(model, path)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        out = session.run(None, {"image": vx})[0]
        keras_out = np.concatenate([np.asarray(o) for o in model.predict(vx, batch_size=512, verbose=0)], axis=1)
        metrics = evaluate(out, vlabels)
        card = PairReaderCard(
            name=PAIR_READER_NAME, version=version, created_at=datetime.now(UTC),
            parameters=int(model.count_params()),
            input_note=f"image: float32 [N, {FRAME[0]}, {FRAME[1]}, 1] in [0, 1], a candidate's ink mask "
                       "framed by digit_frontend.pairs.frame_pair (20 px tall, centred)",
            output_note="float32 [N, 21]: left digit's probabilities (10), right digit's (10), "
                        "probability that it is two digits (1)",
            trained_on=f"{len(np.load(data / 'train.npz')['labels'])} whole-line candidates of one- and "
                       "two-digit numbers of MNIST training digits (first 54,000), canvases and scans "
                       f"(training.pair_reader, seed {seed}){_mined_note(data)}",
            validated_on=f"{len(vlabels)} whole-line candidates of numbers of MNIST validation digits",
            validation=PairReaderMetrics(samples=len(vlabels), **metrics,
                                         max_abs_diff_keras=float(np.abs(out - keras_out).max())),
            history=history,
            data_sha256={p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                         for p in sorted(data.glob("*.npz"))},
            onnx_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        )
        (directory / CARD_FILE).write_text(json.dumps(card.model_dump(mode="json"), indent=1) + "\n")
        print(json.dumps(card.validation.model_dump(), indent=1))

    return publish_version(store / FRONTEND_DIR, PAIR_READER_NAME, build)


def _mined_note(data: Path) -> str:
    if not (data / "mined.npz").exists():
        return ""
    labels = np.load(data / "mined.npz")["labels"]
    return (f", and {len(labels)} candidates mined from 2-6 digit numbers of the same digits "
            f"({int(labels[:, 2].sum())} pairs; training.pair_reader mine)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("render", help="render the training and held-out candidates to DIR")
    make.add_argument("--out", type=Path, required=True)
    make.add_argument("--data-dir", type=Path, default=None)
    make.add_argument("--train", type=int, default=60_000)
    make.add_argument("--validation", type=int, default=4_000)
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--workers", type=int, default=2)
    dig = commands.add_parser("mine", help="mine labelled candidates of longer training numbers into DIR/mined.npz")
    dig.add_argument("--out", type=Path, required=True)
    dig.add_argument("--data-dir", type=Path, default=None)
    dig.add_argument("--per-length", type=int, default=100)
    dig.add_argument("--seeds", type=int, nargs="+", default=[20, 21])
    dig.add_argument("--workers", type=int, default=2)
    fit = commands.add_parser("train", help="train, export and publish to STORE/frontend/pair_reader")
    fit.add_argument("--data", type=Path, required=True)
    fit.add_argument("--store", type=Path, default=Path("model_store"))
    fit.add_argument("--epochs", type=int, default=10)
    fit.add_argument("--batch", type=int, default=128)
    fit.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "render":
        render_dataset(args.out, args.data_dir, args.train, args.validation, args.seed, args.workers)
    elif args.command == "mine":
        mine_dataset(args.out, args.data_dir, args.per_length, args.seeds, args.workers)
    else:
        print(train(args.data, args.store, args.epochs, args.batch, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
