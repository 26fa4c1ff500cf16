"""Cut the misclassified MNIST test digits of every model in the store into one sprite for the web page.

The service has no MNIST data at run time, yet the page's experiment views show each model's
misclassified test digits. The cards name them by test-set index; this script draws those images
once into `service/web/static/mistakes.png` (a grid of 28x28 tiles, 16 grey levels, 4 bits a pixel)
and writes `mistakes.json`, the test index of each tile in order. Models share most of their
mistakes, so one sprite of the union is about half the size of one per model. Re-run it after
adding a model to the store:

    python scripts/make_web_mistakes.py --data-dir /path/to/mnist --store model_store
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from digit_contract.store import latest_cards
from training.data import TEST_IMAGES, TEST_LABELS, load_split

STATIC = Path(__file__).resolve().parents[1] / "service" / "web" / "static"
COLUMNS = 32
TILE = 28
LEVELS = 16  # 4-bit grey: the thumbnails are drawn at 28-56 px, where 16 levels look like 256


def misclassified_indices(store: Path) -> list[int]:
    """Every MNIST test index that some model of the store gets wrong, ascending."""
    indices: set[int] = set()
    for card in latest_cards(store).values():
        if card.dataset.name == "mnist":  # other test sets' indices name other images
            indices.update(m.index for m in card.misclassified)
    return sorted(indices)


def draw_sprite(images: np.ndarray, indices: list[int]) -> Image.Image:
    """The tiles of `indices`, row by row, COLUMNS a row, white digits on black as MNIST has them."""
    rows = -(-len(indices) // COLUMNS)
    sheet = np.zeros((rows * TILE, COLUMNS * TILE), dtype=np.uint8)
    for position, index in enumerate(indices):
        row, column = divmod(position, COLUMNS)
        sheet[row * TILE:(row + 1) * TILE, column * TILE:(column + 1) * TILE] = images[index]
    quantised = (sheet.astype(np.uint16) * (LEVELS - 1) + 127) // 255
    sprite = Image.fromarray(quantised.astype(np.uint8), mode="P")
    step = 255 // (LEVELS - 1)
    sprite.putpalette([level * step for level in range(LEVELS) for _ in range(3)])
    return sprite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="directory with the MNIST IDX files")
    parser.add_argument("--store", type=Path, default=Path("model_store"))
    parser.add_argument("--out", type=Path, default=STATIC)
    args = parser.parse_args()

    test, _ = load_split(args.data_dir, TEST_IMAGES, TEST_LABELS)
    indices = misclassified_indices(args.store)
    draw_sprite(test.images, indices).save(args.out / "mistakes.png", optimize=True, bits=4)
    meta = {"tile": TILE, "columns": COLUMNS, "indices": indices}
    (args.out / "mistakes.json").write_text(json.dumps(meta, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{len(indices)} digits -> {args.out / 'mistakes.png'} ({(args.out / 'mistakes.png').stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
