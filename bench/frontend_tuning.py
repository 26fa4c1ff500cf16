"""Tune the front end on validation data only: renderer A's scenes of MNIST's validation digits, end to end.

    python -m bench.frontend_tuning --data-dir $MNIST_DIR [--scenes 300] [--versions 1 2] [--model cnn_augmented]
    python -m bench.frontend_tuning --data-dir $MNIST_DIR --view conditions   # renderer A's forced conditions

Each scene (`training.ink_scenes`, the segmenter's own renderer, drawn with digits it never trained
on; a fifth as many pages without a digit) is saved as a JPEG, read back through
`digit_frontend.pipeline.prepare_image` with the classical rules and with each version of the
segmenter in the store, and classified by one model of the store. It prints accuracy, refusals and
confident mistakes for each front end, by the digit's share of the frame, and how many of the pages
without a digit it refused. This is the
set the segmenter's thresholds were chosen on; renderer B (`bench.renderer_b`) is never used for that.

`--view conditions` renders, with its own seed, `--per-condition` scenes of each of renderer A's
forced conditions (`training.ink_scenes.CONDITIONS`: faint pencil, spiral bindings, clean digits
filling the frame, half of them counted into UCI-style 8x8 blocks, small digits, hard shadows),
pages without a digit that carry a spiral binding or a hard shadow, and photos without writing
(`training.ink_scenes.render_empty`: a bare desk of each surface, a page's edge or corner alone); it
prints accuracy per condition and the refusals of each kind of empty photo.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from digit_contract.errors import ServiceError
from digit_contract.frontend_card import FRONTEND_DIR, SEGMENTER_NAME
from digit_contract.inputs import normalize_pixels
from digit_contract.store import MODEL_FILE, latest_version, list_versions, version_dir
from digit_frontend.pipeline import prepare_image, use_front_end
from digit_frontend.segmenter import InkSegmenter
from training.data import RawSplit, load_mnist
from training.ink_scenes import CONDITIONS, EMPTY_KINDS, render_empty, render_scene, uci_like

REPO = Path(__file__).resolve().parents[1]
SHARES = ((0.0, 0.1), (0.1, 0.2), (0.2, 1.01))
"""Digit height over the frame's shorter side: small, medium, large."""


def render_uploads(validation: RawSplit, scenes: int, seed: int) -> tuple[list[bytes], list[int], list[float]]:
    """`scenes` JPEG uploads of validation digits and a fifth as many pages without one (label -1), with
    each digit's height over the frame's shorter side."""
    rng = np.random.default_rng(seed)
    uploads: list[bytes] = []
    labels: list[int] = []
    shares: list[float] = []
    for k, index in enumerate(rng.choice(len(validation), scenes + scenes // 5, replace=False)):
        blank = k >= scenes
        digit = np.zeros_like(validation.images[index]) if blank else validation.images[index]
        scene = render_scene(digit, int(validation.labels[index]), rng)
        _, encoded = cv2.imencode(".jpg", scene.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        rows = np.flatnonzero(scene.ink.any(axis=1))
        uploads.append(encoded.tobytes())
        labels.append(-1 if blank else int(validation.labels[index]))
        shares.append((rows[-1] - rows[0] + 1) / min(scene.image.shape) if len(rows) else 0.0)
    return uploads, labels, shares


def render_condition_uploads(validation: RawSplit, per_condition: int, seed: int) -> tuple[list[bytes], list[int], list[str]]:
    """`per_condition` JPEG uploads of validation digits in each of renderer A's forced conditions, and as
    many pages without a digit under a spiral binding or a hard shadow (label -1), with each one's condition."""
    rng = np.random.default_rng(seed)
    uploads: list[bytes] = []
    labels: list[int] = []
    conditions: list[str] = []
    plan = [(c, False) for c in CONDITIONS for _ in range(per_condition)]
    plan += [(c, True) for c in ("spiral", "shadow") for _ in range(per_condition // 2)]
    for k, ((condition, blank), index) in enumerate(zip(plan, rng.choice(len(validation), len(plan), replace=False), strict=True)):
        digit = validation.images[index]
        if condition == "clean" and k % 2:  # as a UCI writer's 8x8 blocks
            digit = uci_like(digit)
        scene = render_scene(np.zeros_like(digit) if blank else digit, int(validation.labels[index]), rng, condition)
        _, encoded = cv2.imencode(".jpg", scene.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        uploads.append(encoded.tobytes())
        labels.append(-1 if blank else int(validation.labels[index]))
        conditions.append(condition)
    # Photos without writing, half as many of each kind, from a generator of their own so that the scenes
    # above stay the ones earlier versions were measured on.
    empty_rng = np.random.default_rng(seed + 1)
    for kind in EMPTY_KINDS:
        for _ in range(per_condition // 2):
            _, encoded = cv2.imencode(".jpg", render_empty(empty_rng, kind).image, [cv2.IMWRITE_JPEG_QUALITY, 92])
            uploads.append(encoded.tobytes())
            labels.append(-1)
            conditions.append(f"empty {kind}")
    return uploads, labels, conditions


def read_all(uploads: Sequence[bytes], session: ort.InferenceSession) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Each upload's answer through the installed front end (-1: refused) and its confidence."""
    answers, confidences = [], []
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
    return np.array(answers, np.int64), np.array(confidences, np.float64)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.frontend_tuning", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--store", type=Path, default=REPO / "model_store")
    parser.add_argument("--model", default="cnn_augmented")
    parser.add_argument("--scenes", type=int, default=300, help="scenes with a digit (and a fifth as many without)")
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--versions", type=int, nargs="*", default=None,
                        help="segmenter versions to compare (default: every version in the store)")
    parser.add_argument("--skip-classical", action="store_true", help="compare segmenter versions only")
    parser.add_argument("--view", choices=("scenes", "conditions"), default="scenes",
                        help="renderer A's random scenes (default), or its forced conditions")
    parser.add_argument("--per-condition", type=int, default=50, help="with --view conditions: scenes per condition")
    parser.add_argument("--condition-seed", type=int, default=778, help="with --view conditions")
    args = parser.parse_args(argv)
    validation = load_mnist(args.data_dir, download=False).validation
    if args.view == "conditions":
        uploads, labels, kinds = render_condition_uploads(validation, args.per_condition, args.condition_seed)
        shares = [0.0] * len(uploads)
    else:
        uploads, labels, shares = render_uploads(validation, args.scenes, args.seed)
        kinds = []
    version = latest_version(args.store, args.model)
    assert version is not None, f"no {args.model} in {args.store}"
    session = ort.InferenceSession(str(version_dir(args.store, args.model, version) / MODEL_FILE))
    versions = args.versions if args.versions is not None else list_versions(args.store / FRONTEND_DIR, SEGMENTER_NAME)
    front_ends = [] if args.skip_classical else [("classical", None)]
    for name, segmenter in front_ends + [(f"segmenter v{v}", InkSegmenter.from_store(args.store, v)) for v in versions]:
        use_front_end(segmenter)
        started = time.perf_counter()
        answer, confidence = read_all(uploads, session)
        ms = (time.perf_counter() - started) * 1000 / len(uploads)
        truth, share = np.array(labels), np.array(shares)
        digit = truth >= 0
        right = answer == truth
        confident_wrong = (~right) & (answer >= 0) & (confidence >= 0.9)
        answered = digit & (answer >= 0)
        print(f"{name:13s} accuracy {right[digit].mean():.1%}  refused {(answer[digit] == -1).mean():.1%}  "
              f"confidently wrong {confident_wrong[digit].mean():.1%} ({confident_wrong[answered].mean():.1%} of answers)  "
              f"pages without a digit refused {(answer[~digit] == -1).mean():.0%}  ({ms:.1f} ms/upload)")
        if kinds:
            kind = np.array(kinds)
            for condition in CONDITIONS:
                chosen = digit & (kind == condition)
                wrong = confident_wrong[chosen].mean()
                print(f"    {condition:7s} {right[chosen].mean():.1%} of {chosen.sum()}  refused {(answer[chosen] == -1).mean():.1%}  "
                      f"confidently wrong {wrong:.1%}")
            for condition in ("spiral", "shadow", *(f"empty {k}" for k in EMPTY_KINDS)):
                chosen = ~digit & (kind == condition)
                sure = (answer[chosen] >= 0) & (confidence[chosen] >= 0.9)
                print(f"    no digit, {condition}: refused {(answer[chosen] == -1).mean():.0%} of {chosen.sum()}  "
                      f"answered with confidence >= 0.9 {sure.mean():.0%}")
            continue
        for low, high in SHARES:
            chosen = digit & (share >= low) & (share < high)
            print(f"    digit {low:.0%}-{min(high, 1):.0%} of the frame: {right[chosen].mean():.1%} of {chosen.sum()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
