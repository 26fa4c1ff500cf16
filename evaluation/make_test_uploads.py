"""Regenerate tests/data/uploads/: three small rendered uploads per condition, with a manifest.

    .venv/bin/python -m evaluation.make_test_uploads --data-dir /path/to/mnist

The digits are MNIST *validation* images (the last 6,000 training images), so the pipeline may be
tuned on these files. They need the full training file: tests/data/mnist-sample holds only the
first 2,500 training images (which the models were trained on) and 500 test images, neither of
which may be used for this.

To keep the folder near 1 MB, the renders are shrunk the way a messaging app or a web form
shrinks a photo before sending it: to at most SHIPPED_SIDE px on the longest side, re-encoded
(JPEG quality SHIPPED_QUALITY, EXIF orientation kept); canvases are shipped as rendered. The
12 MP condition is not shipped (2-4 MB a file): the tests render one on the fly.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from evaluation.render import (
    CANVAS_CONDITIONS,
    CONDITIONS,
    EXIF_ORIENTATION,
    SCAN_CONDITIONS,
    Upload,
    render_upload,
)
from evaluation.sources import mnist_split

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "tests/data/uploads"

PER_CONDITION = 3
NOT_SHIPPED = ("photo_12mp",)
"""Too large to ship; rendered on the fly by the tests instead."""

SHIPPED_SIDE = 640
"""Longest side of a shipped photo, in pixels."""

SHIPPED_SCAN_SIDE = 400
"""Longest side of a shipped scan: a lossless PNG of noisy paper is large, a scan crop is small."""

SHIPPED_QUALITY = 80
"""JPEG quality of a shipped photo (photo_jpeg keeps its own, much lower, quality)."""

SEED = 8
"""The shipped set's seed (issue 8)."""


def shrink(upload: Upload, side: int) -> Upload:
    """The upload reduced to at most `side` px (area-averaged) and re-encoded in its own format."""
    image = Image.open(io.BytesIO(upload.data))
    exif = image.getexif()
    factor = side / max(image.size)
    if factor >= 1:
        return upload
    stored = image.resize((max(1, round(image.width * factor)), max(1, round(image.height * factor))), Image.Resampling.BOX)
    buffer = io.BytesIO()
    if upload.format == "JPEG":
        quality = 30 if upload.condition == "photo_jpeg" else SHIPPED_QUALITY
        stored.save(buffer, "JPEG", quality=quality, exif=exif if EXIF_ORIENTATION in exif else Image.Exif())
    else:
        stored.save(buffer, "PNG")
    x, y, w, h = (round(v * factor) for v in upload.digit_box)
    width, height = round(upload.width * factor), round(upload.height * factor)
    return Upload(buffer.getvalue(), upload.condition, upload.format, upload.mode, width, height, (x, y, max(1, w), max(1, h)), upload.exif_orientation)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.make_test_uploads", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="full MNIST (else MNIST_DIR, then the cache)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    conditions = [c for c in CONDITIONS if c not in NOT_SHIPPED]
    count = PER_CONDITION * len(conditions)
    images, labels = mnist_split(args.data_dir, "validation", count, seed=SEED)
    # Shuffle (seeded) so each condition gets a mix of digits, not three neighbours of the split.
    order = np.random.default_rng(SEED).permutation(count)
    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    entries = []
    for c, condition in enumerate(conditions):
        for j in range(PER_CONDITION):
            k = int(order[c * PER_CONDITION + j])
            seed = SEED * 10_000 + c * 100 + j
            upload = render_upload(images[k], condition, np.random.default_rng(seed))
            if condition in SCAN_CONDITIONS:
                upload = shrink(upload, SHIPPED_SCAN_SIDE)
            elif condition not in CANVAS_CONDITIONS:
                upload = shrink(upload, SHIPPED_SIDE)
            name = f"{condition}-{j}-digit{labels[k]}.{'png' if upload.format == 'PNG' else 'jpg'}"
            (args.out / name).write_bytes(upload.data)
            entries.append(
                {
                    "file": name,
                    "condition": condition,
                    "digit": int(labels[k]),
                    "seed": seed,
                    "format": upload.format,
                    "width": upload.width,
                    "height": upload.height,
                    "digit_box": list(upload.digit_box),
                }
            )
    manifest = {
        "source": "MNIST validation split (the last 6,000 training images), drawn with seed "
        f"{SEED}; rendered by evaluation.render, shrunk to <= {SHIPPED_SIDE} px (scans {SHIPPED_SCAN_SIDE} px, canvases as rendered)",
        "not_shipped": list(NOT_SHIPPED),
        "uploads": entries,
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"{len(entries)} uploads, {total / 1e6:.2f} MB, in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
