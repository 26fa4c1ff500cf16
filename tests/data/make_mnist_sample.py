"""Cut the small MNIST sample under tests/data/mnist-sample from the four canonical IDX files.

    python tests/data/make_mnist_sample.py --source ../shared/datasets/mnist

The output is byte-for-byte reproducible (gzip level 9, zero mtime).
"""

from __future__ import annotations

import argparse
import gzip
import struct
from pathlib import Path

from training.data import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, find_file, read_idx_bytes

SAMPLE_SIZES = {TRAIN_IMAGES: 2500, TRAIN_LABELS: 2500, TEST_IMAGES: 500, TEST_LABELS: 500}


def cut_idx(data: bytes, count: int) -> bytes:
    """The first `count` items of an IDX file, with the header's first dimension rewritten."""
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = list(struct.unpack(f">{ndim}I", data[4:header]))
    item_size = 1
    for d in dims[1:]:
        item_size *= d
    dims[0] = count
    return data[:4] + struct.pack(f">{ndim}I", *dims) + data[header : header + count * item_size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "mnist-sample")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for stem, count in SAMPLE_SIZES.items():
        path = find_file(args.source, stem)
        if path is None:
            raise SystemExit(f"{stem}[.gz] not found in {args.source}")
        sample = cut_idx(read_idx_bytes(path), count)
        (args.out / f"{stem}.gz").write_bytes(gzip.compress(sample, compresslevel=9, mtime=0))


if __name__ == "__main__":
    main()
