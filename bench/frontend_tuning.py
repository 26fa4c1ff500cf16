"""Tune the front end on validation data only: renderer A's scenes of MNIST's validation digits, end to end.

    python -m bench.frontend_tuning --data-dir $MNIST_DIR [--scenes 600] [--model cnn_augmented]

Each scene (`training.ink_scenes`, the segmenter's own renderer, drawn with digits it never trained
on) is saved as a JPEG, read back through `digit_frontend.pipeline.prepare_image` with the learned
and with the classical front end, and classified by one model of the store. It prints accuracy,
refusals and confident mistakes for each front end, by the digit's share of the frame. This is the
set the segmenter's thresholds were chosen on; renderer B (`bench.renderer_b`) is never used for that.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from digit_contract.errors import ServiceError
from digit_contract.inputs import normalize_pixels
from digit_contract.store import MODEL_FILE, latest_version, version_dir
from digit_frontend.pipeline import prepare_image, use_front_end
from digit_frontend.segmenter import InkSegmenter
from training.data import load_mnist
from training.ink_scenes import render_scene

REPO = Path(__file__).resolve().parents[1]
SHARES = ((0.0, 0.1), (0.1, 0.2), (0.2, 1.01))
"""Digit height over the frame's shorter side: small, medium, large."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.frontend_tuning", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--store", type=Path, default=REPO / "model_store")
    parser.add_argument("--model", default="cnn_augmented")
    parser.add_argument("--scenes", type=int, default=600)
    parser.add_argument("--seed", type=int, default=777)
    args = parser.parse_args(argv)
    validation = load_mnist(args.data_dir, download=False).validation
    rng = np.random.default_rng(args.seed)
    uploads: list[bytes] = []
    labels: list[int] = []
    shares: list[float] = []
    for index in rng.choice(len(validation), args.scenes, replace=False):
        scene = render_scene(validation.images[index], int(validation.labels[index]), rng)
        _, encoded = cv2.imencode(".jpg", scene.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        rows = np.flatnonzero(scene.ink.any(axis=1))
        uploads.append(encoded.tobytes())
        labels.append(int(validation.labels[index]))
        shares.append((rows[-1] - rows[0] + 1) / min(scene.image.shape) if len(rows) else 0.0)
    version = latest_version(args.store, args.model)
    assert version is not None, f"no {args.model} in {args.store}"
    session = ort.InferenceSession(str(version_dir(args.store, args.model, version) / MODEL_FILE))
    for kind in ("learned", "classical"):
        use_front_end(InkSegmenter.from_store(args.store) if kind == "learned" else None)
        answers, confidences, started = [], [], time.perf_counter()
        for data in uploads:
            try:
                pixels = prepare_image(data, max_pixels=50_000_000).pixels
            except ServiceError:
                answers.append(-1)
                confidences.append(0.0)
                continue
            probabilities = session.run(None, {"image": normalize_pixels(pixels[None])})[0][0]
            answers.append(int(np.argmax(probabilities)))
            confidences.append(float(probabilities.max()))
        ms = (time.perf_counter() - started) * 1000 / len(uploads)
        answer, truth, confidence = np.array(answers), np.array(labels), np.array(confidences)
        right, share = answer == truth, np.array(shares)
        print(f"{kind:9s} accuracy {right.mean():.1%}  refused {(answer == -1).mean():.1%}  "
              f"confidently wrong {((~right) & (answer >= 0) & (confidence >= 0.9)).mean():.1%}  ({ms:.1f} ms/upload)")
        for low, high in SHARES:
            chosen = (share >= low) & (share < high)
            print(f"    digit {low:.0%}-{min(high, 1):.0%} of the frame: {right[chosen].mean():.1%} of {chosen.sum()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
