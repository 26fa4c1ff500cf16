"""Train the ink segmenter: a small fully convolutional network that marks a digit's pen strokes.

    python -m training.ink_segmenter render --data-dir $MNIST_DIR --out /tmp/ink-data   # renderer A, once
    python -m training.ink_segmenter train --data /tmp/ink-data --store model_store     # train, export, card

Why a network: hand-written rules (which polarity, which edges are lines, which blob is the digit)
each hold for the conditions someone thought of and break on the next one. Document binarisation
went the same way (U-Net-bin won DIBCO 2017; LS-HDIB, 2021, trained on large synthetic sets with
exact ground truth). We render the scenes ourselves (`training.ink_scenes`), so the ink is known.

The network (`build_segmenter`) is a U-Net cut to the front end's budget: a strided first
convolution (few channels at full resolution), depthwise-separable convolutions, 8-64 channels,
three scales and a dilated bottleneck for context (is this long straight edge a page or a "1"?).
It is trained at two scales, as the front end runs it (`digit_frontend.segmenter`):

- *coarse*: the whole scene shrunk to `COARSE_SIDE`, where it only has to find where the digit is;
- *fine*: a square crop around the digit at `FINE_SIDE`, where its strokes must be exact.

Scenes drawn with MNIST's training images, the UCI training split and fonts train it; scenes of
MNIST's validation images are the validation set that every choice here was made on.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import math
import multiprocessing
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from digit_contract.frontend_card import SEGMENTER_NAME, SegmenterCard, SegmenterMetrics
from digit_contract.store import CARD_FILE, MODEL_FILE, publish_version
from digit_frontend.pipeline import upscale_blocks
from digit_frontend.segmenter import crop_square, normalise, pad_square
from training.ink_scenes import CONDITIONS, NO_DIGIT_CONDITIONS, Scene, font_digit, font_files, render_scene, uci_like
from training.ink_writers import uci_split

log = logging.getLogger(__name__)

COARSE_SIDE = 128
FINE_SIDE = 96
"""Input sides at the two scales (the network is fully convolutional: any multiple of 8 works)."""

FINE_MARGIN = (1.25, 2.2)
"""A fine crop's side over the digit's longest side: from tight to loose, as a coarse find lands."""

CONDITION_SHARE = 0.5
"""Share of scenes that force one of renderer A's `CONDITIONS` (equally often each); the rest are drawn
at random as for versions 1 and 2. The conditions are the failure modes an independent evaluation
found A had drawn too rarely (issue 21)."""

CONDITION_WEIGHTS = (0.3, 0.15, 0.15, 0.15, 0.25)
"""How often each of `CONDITIONS` is forced (version 4; version 3 forced each equally often): a blind
evaluation of version 3 read faint pencil worst and hard shadows next."""

NO_DIGIT_SHARE = 0.1
"""Share of scenes of a bare desk or a page's edge alone (renderer A's `NO_DIGIT_CONDITIONS`, version 4),
on top of the 5% blank pages: version 3 answered empty desks instead of refusing them."""

INPUT_NAME, OUTPUT_NAME = "image", "ink"
OPSET = 17


# -- the data (renderer A, once, to disk) --------------------------------------------------------





def samples_of(scene: Scene, rng: np.random.Generator) -> list[tuple[NDArray[np.uint8], NDArray[np.uint8]]]:
    """The coarse view of a scene and, when it holds a digit, one fine crop: (image, ink 0-255) pairs."""
    coarse = (pad_square(scene.image, COARSE_SIDE), pad_square(scene.ink * 255, COARSE_SIDE))
    points = cv2.findNonZero(scene.ink)
    if points is None:
        # Nothing is ink: a fine crop anywhere (where a coarse view might have taken texture for a digit)
        # teaches the fine scale to find nothing there too.
        height, width = scene.image.shape
        side = rng.uniform(0.1, 0.5) * min(height, width)
        centre = (rng.uniform(0, width), rng.uniform(0, height))
        return [coarse, (crop_square(scene.image, centre, side, FINE_SIDE), np.zeros((FINE_SIDE, FINE_SIDE), np.uint8))]
    box = cv2.boundingRect(points)
    side = max(box[2], box[3]) * rng.uniform(*FINE_MARGIN)
    # The crop's centre is off the digit's by up to 12% of its side: the coarse view is not exact.
    centre = (box[0] + box[2] / 2 + rng.uniform(-0.12, 0.12) * side, box[1] + box[3] / 2 + rng.uniform(-0.12, 0.12) * side)
    fine = (crop_square(scene.image, centre, side, FINE_SIDE), crop_square(scene.ink * 255, centre, side, FINE_SIDE))
    return [coarse, fine]


@functools.lru_cache(maxsize=2)  # a worker renders many chunks of one split: read MNIST once
def _writers(data_dir: Path | None, split: str) -> tuple[list[NDArray[np.uint8]], list[int]]:
    """Digits to draw, white on black: MNIST's training (or validation) images, plus for training
    the UCI training split and every installed handwriting font."""
    from training.data import load_mnist

    mnist = load_mnist(data_dir, download=False)
    chosen = mnist.train if split == "train" else mnist.validation
    images, labels = list(chosen.images), [int(v) for v in chosen.labels]
    if split == "train":
        blocks, uci_labels = uci_split("train")
        images += [upscale_blocks(b) for b in blocks]
        labels += [int(v) for v in uci_labels]
    return images, labels


@functools.lru_cache(maxsize=1)
def _uci_blocks() -> tuple[list[NDArray[np.uint8]], list[int]]:
    """The UCI training split as 8x8 images (block counts scaled to 0-255), for clean frame-filling scenes."""
    blocks, labels = uci_split("train")
    return [np.clip(b / 16.0 * 255.0 + 0.5, 0, 255).astype(np.uint8) for b in blocks], [int(v) for v in labels]


def _render_chunk(task: tuple[int, int, str, Path | None]) -> tuple[NDArray[np.uint8], NDArray[np.uint8], int]:
    """Render `count` scenes (seeded by `seed`) into stacked coarse and fine samples."""
    seed, count, split, data_dir = task
    rng = np.random.default_rng(seed)
    images, labels = _writers(data_dir, split)
    uci_blocks, uci_labels = _uci_blocks() if split == "train" else ([], [])
    fonts = font_files() if split == "train" else []
    xs_coarse: list[NDArray[np.uint8]] = []
    ys_coarse: list[NDArray[np.uint8]] = []
    xs_fine: list[NDArray[np.uint8]] = []
    ys_fine: list[NDArray[np.uint8]] = []
    for _ in range(count):
        blank = rng.random() < 0.05  # a page with no digit: nothing is ink (refusals are learned here)
        if fonts and rng.random() < 0.12:
            digit_image = font_digit(fonts[int(rng.integers(len(fonts)))], int(rng.integers(10)), rng)
            label = -1
        else:
            index = int(rng.integers(len(images)))
            digit_image, label = images[index], labels[index]
        draw = rng.random()
        condition: str | None = None
        if draw < NO_DIGIT_SHARE:
            condition = str(rng.choice(NO_DIGIT_CONDITIONS))
        elif draw < NO_DIGIT_SHARE + CONDITION_SHARE:
            condition = str(rng.choice(CONDITIONS, p=CONDITION_WEIGHTS))
        if condition == "clean":  # UCI's writers as 8x8 blocks, or any digit counted into blocks, or as drawn
            pick = rng.random()
            if uci_blocks and pick < 0.5:
                index = int(rng.integers(len(uci_blocks)))
                digit_image, label = uci_blocks[index], uci_labels[index]
            elif pick < 0.75:
                digit_image = uci_like(digit_image)
        empty = np.zeros_like(digit_image)
        scene = render_scene(empty if blank else digit_image, label, rng, condition)
        for i, (x, y) in enumerate(samples_of(scene, rng)):
            (xs_coarse if i == 0 else xs_fine).append(x)
            (ys_coarse if i == 0 else ys_fine).append(y)
    coarse = np.stack([np.stack(xs_coarse), np.stack(ys_coarse)], axis=1)
    fine = np.stack([np.stack(xs_fine), np.stack(ys_fine)], axis=1)
    return coarse, fine, count


def render_dataset(out: Path, data_dir: Path | None, scenes: int, val_scenes: int, seed: int, workers: int) -> None:
    """Render the training and validation scenes once, to `out/{train,validation}.npz`."""
    out.mkdir(parents=True, exist_ok=True)
    for split, count, base in (("validation", val_scenes, seed + 10_000), ("train", scenes, seed)):
        chunk = 500
        tasks = [(base + i, min(chunk, count - i * chunk), split, data_dir) for i in range(math.ceil(count / chunk))]
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_render_chunk, tasks)
        coarse = np.concatenate([p[0] for p in parts])
        fine = np.concatenate([p[1] for p in parts])
        np.savez(out / f"{split}.npz", coarse=coarse, fine=fine)
        log.info("%s: %d coarse and %d fine samples", split, len(coarse), len(fine))


# -- the network ---------------------------------------------------------------------------------


def build_segmenter(width: int = 8):  # type: ignore[no-untyped-def]  # keras is imported lazily
    """The U-Net: (N, H, W, 1) normalised luma -> (N, H, W, 1) probability of the digit's ink.
    H and W must be multiples of 8."""
    import keras
    from keras import layers

    # No batch normalisation: coarse and fine batches alternate, and one set of running statistics
    # for both left the fine scale's validation IoU falling while its training loss fell (0.57 -> 0.39).
    def block(x, filters: int, stride: int = 1, dilation: int = 1):  # type: ignore[no-untyped-def]
        x = layers.SeparableConv2D(filters, 3, strides=stride, dilation_rate=dilation, padding="same")(x)
        return layers.ReLU()(x)

    image = keras.Input((None, None, 1), name=INPUT_NAME)
    stem = layers.ReLU()(layers.Conv2D(width, 3, strides=2, padding="same")(image))  # H/2 at once
    half = block(block(stem, 2 * width), 2 * width)  # H/2
    quarter = block(block(half, 4 * width, stride=2), 4 * width)  # H/4
    eighth = block(quarter, 8 * width, stride=2)  # H/8
    eighth = block(eighth, 8 * width, dilation=2)
    eighth = block(eighth, 8 * width, dilation=4)  # context: ~100 px of the input
    up = layers.Concatenate()([layers.UpSampling2D(2)(eighth), quarter])
    up = block(up, 4 * width)
    up = layers.Concatenate()([layers.UpSampling2D(2)(up), half])
    up = block(up, 2 * width)
    up = layers.Concatenate()([layers.UpSampling2D(2)(up), image])
    up = block(up, width)
    ink = layers.Conv2D(1, 1, activation="sigmoid", name=OUTPUT_NAME)(up)
    return keras.Model(image, ink, name="ink_segmenter")


def dice_bce(y_true, y_pred):  # type: ignore[no-untyped-def]
    """Cross-entropy, plus soft Dice per image: ink is 1-5% of the pixels, and Dice cares only about it."""
    import keras.ops as ops

    bce = ops.mean(ops.binary_crossentropy(y_true, y_pred))
    inter = ops.sum(y_true * y_pred, axis=(1, 2, 3))
    total = ops.sum(y_true, axis=(1, 2, 3)) + ops.sum(y_pred, axis=(1, 2, 3))
    dice = 1.0 - (2.0 * inter + 1.0) / (total + 1.0)
    return bce + 0.5 * ops.mean(dice)


def to_arrays(pairs: NDArray[np.uint8]) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Stacked (image, ink) uint8 pairs as network input and soft targets."""
    x = np.stack([normalise(img) for img in pairs[:, 0]])[..., None]
    return x, (pairs[:, 1].astype(np.float32) / 255.0)[..., None]


def iou(truth: NDArray[np.float32], predicted: NDArray[np.float32]) -> float:
    """Intersection over union of the ink (> 0.5) over a set, pixels pooled."""
    t, p = truth > 0.5, predicted > 0.5
    return float((t & p).sum() / max(1, (t | p).sum()))


def train(data: Path, store: Path, epochs: int, batch: int, width: int, seed: int, checkpoint: Path,
          init: Path | None = None, learning_rate: float = 2e-3, continued_from: str | None = None) -> Path:
    """Train on `data/train.npz`, choose the epoch by validation IoU (its weights kept in `checkpoint`,
    with the history beside them), export to ONNX and publish."""
    import keras

    keras.utils.set_random_seed(seed)
    train_set, val_set = np.load(data / "train.npz"), np.load(data / "validation.npz")
    coarse, fine = to_arrays(train_set["coarse"]), to_arrays(train_set["fine"])
    val = {scale: to_arrays(val_set[scale]) for scale in ("coarse", "fine")}
    model = build_segmenter(width)
    if init is not None:  # go on from an earlier run's weights, on new scenes
        model.load_weights(init)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=dice_bce)
    rng = np.random.default_rng(seed)
    best, best_weights, history = -1.0, model.get_weights(), []
    for epoch in range(epochs):
        started = time.monotonic()
        model.optimizer.learning_rate.assign(learning_rate * 0.5 * (1 + math.cos(math.pi * epoch / epochs)))
        losses = []
        # Batches of one scale at a time (shapes differ), in random order, with flips for variety.
        order = [("c", i) for i in rng.permutation(len(coarse[0]) // batch)] + [("f", i) for i in rng.permutation(len(fine[0]) // batch)]
        rng.shuffle(order)
        perm = {"c": rng.permutation(len(coarse[0])), "f": rng.permutation(len(fine[0]))}
        for kind, i in order:
            x, y = coarse if kind == "c" else fine
            index = perm[kind][i * batch : (i + 1) * batch]
            bx, by = x[index], y[index]
            if rng.random() < 0.5:
                bx, by = bx[:, :, ::-1], by[:, :, ::-1]
            losses.append(float(model.train_on_batch(bx, by)))
        scores = {scale: iou(val[scale][1], model.predict(val[scale][0], batch_size=64, verbose=0)) for scale in val}
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), **{f"val_iou_{k}": v for k, v in scores.items()},
                        "seconds": round(time.monotonic() - started, 1)})
        log.info("epoch %d: %s", epoch + 1, history[-1])
        # Every epoch's weights too: pooled IoU is a proxy, and the epoch may be chosen end to end
        # (`bench.frontend_tuning`) from these, then published with --publish-only.
        model.save_weights(checkpoint.with_suffix("").with_suffix(f".epoch{epoch + 1}.weights.h5"))
        if scores["fine"] + scores["coarse"] > best:
            best, best_weights = scores["fine"] + scores["coarse"], model.get_weights()
            model.save_weights(checkpoint)
        checkpoint.with_suffix(".json").write_text(json.dumps(history, indent=1))
    model.set_weights(best_weights)
    return publish(model, store, data, history, val, continued_from or (str(init) if init is not None else None))


def publish_checkpoint(data: Path, store: Path, width: int, checkpoint: Path, continued_from: str | None = None) -> Path:
    """Publish the weights a training run kept (when its own publishing step did not run)."""
    model = build_segmenter(width)
    model.load_weights(checkpoint)
    history = json.loads(checkpoint.with_suffix(".json").read_text())
    val_set = np.load(data / "validation.npz")
    val = {scale: to_arrays(val_set[scale]) for scale in ("coarse", "fine")}
    return publish(model, store, data, history, val, continued_from)


def export_onnx(model, path: Path) -> None:  # type: ignore[no-untyped-def]
    """Trace the network with tf2onnx: input `image` (N, H, W, 1), output `ink`, H and W dynamic."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    signature = [tf.TensorSpec((None, None, None, 1), tf.float32, name=INPUT_NAME)]

    @tf.function(input_signature=signature)  # type: ignore[untyped-decorator]
    def infer(image: tf.Tensor) -> tf.Tensor:
        return model(image, training=False)

    proto, _ = tf2onnx.convert.from_function(infer, input_signature=signature, opset=OPSET)
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [OUTPUT_NAME if n == old else n for n in node.output]
    proto.graph.output[0].name = OUTPUT_NAME
    proto.doc_string = "ink_segmenter: image (N, H, W, 1) normalised luma -> ink (N, H, W, 1) probability"
    onnx.checker.check_model(proto, full_check=True)
    path.write_bytes(proto.SerializeToString())


def publish(model, store: Path, data: Path, history: list[dict[str, float]],  # type: ignore[no-untyped-def]
            val: dict[str, tuple[NDArray[np.float32], NDArray[np.float32]]], continued_from: str | None = None) -> Path:
    """Export, check the ONNX file against Keras on the validation set, and publish it with its card."""
    import onnxruntime as ort

    def build(directory: Path, version: int) -> None:
        onnx_path = directory / MODEL_FILE
        export_onnx(model, onnx_path)
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        metrics = {}
        for scale, (x, y) in val.items():
            onnx_out = np.concatenate([session.run(None, {INPUT_NAME: x[i : i + 64]})[0] for i in range(0, len(x), 64)])
            keras_out = model.predict(x, batch_size=64, verbose=0)
            diff = float(np.abs(onnx_out - keras_out).max())
            if diff > 1e-4:
                raise RuntimeError(f"the ONNX export differs from Keras by {diff:.2g} on the {scale} validation set")
            metrics[scale] = SegmenterMetrics(samples=len(x), iou=iou(y, onnx_out), max_abs_diff_keras=diff)
        card = SegmenterCard(
            name=SEGMENTER_NAME,
            version=version,
            created_at=datetime.now(UTC),
            parameters=int(model.count_params()),
            coarse_side=COARSE_SIDE,
            fine_side=FINE_SIDE,
            input_note="luma stretched between its 1st and 99th percentile to [0, 1]; H, W multiples of 8",
            trained_on="renderer A (training.ink_scenes): MNIST training images (first 54,000), the UCI training "
                       "split (1,437) and installed handwriting fonts; 5% scenes without a digit; "
                       f"{CONDITION_SHARE:.0%} of scenes force one of {', '.join(CONDITIONS)} (weights "
                       f"{', '.join(f'{w:g}' for w in CONDITION_WEIGHTS)}); {NO_DIGIT_SHARE:.0%} a bare desk or a page's edge alone",
            validated_on="renderer A scenes of MNIST's validation images (the last 6,000 training images)",
            validation=metrics,
            history=history,
            data_sha256={name: hashlib.sha256((data / name).read_bytes()).hexdigest() for name in ("train.npz", "validation.npz")},
            onnx_sha256=hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
            continued_from=continued_from,
        )
        (directory / CARD_FILE).write_text(card.model_dump_json(indent=2) + "\n")

    return publish_version(store / "frontend", SEGMENTER_NAME, build)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.ink_segmenter", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="render renderer A's scenes once, to disk")
    render.add_argument("--data-dir", type=Path, default=None, help="MNIST's IDX files")
    render.add_argument("--out", type=Path, required=True)
    render.add_argument("--scenes", type=int, default=16_000)
    render.add_argument("--val-scenes", type=int, default=1_500)
    render.add_argument("--seed", type=int, default=0)
    render.add_argument("--workers", type=int, default=2)
    fit = commands.add_parser("train", help="train, export and publish to STORE/frontend/ink_segmenter")
    fit.add_argument("--data", type=Path, required=True)
    fit.add_argument("--store", type=Path, default=Path("model_store"))
    fit.add_argument("--epochs", type=int, default=12)
    fit.add_argument("--batch", type=int, default=32)
    fit.add_argument("--width", type=int, default=8)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--checkpoint", type=Path, default=Path(tempfile.gettempdir()) / "ink_segmenter.weights.h5",
                     help="the best epoch's weights (and .json history), kept while training")
    fit.add_argument("--publish-only", action="store_true", help="publish --checkpoint without training")
    fit.add_argument("--init", type=Path, default=None, help="start from these weights (an earlier run's checkpoint)")
    fit.add_argument("--learning-rate", type=float, default=2e-3, help="peak of the cosine schedule")
    fit.add_argument("--continued-from", default=None,
                     help="what the run started from, for the card (default: the --init path)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.command == "render":
        render_dataset(args.out, args.data_dir, args.scenes, args.val_scenes, args.seed, args.workers)
    else:
        if args.publish_only:
            continued = args.continued_from or (str(args.init) if args.init else None)
            print(publish_checkpoint(args.data, args.store, args.width, args.checkpoint, continued))
        else:
            print(train(args.data, args.store, args.epochs, args.batch, args.width, args.seed, args.checkpoint,
                        args.init, args.learning_rate, args.continued_from))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
