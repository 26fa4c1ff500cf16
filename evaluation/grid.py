"""The picture grid: for each condition, a sample upload and the 28x28 image the model saw.

It answers "why is this condition wrong?" at a glance: a desk read as ink shows as a white frame,
ruling as grey bars, a shadow as a blob.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageOps

if TYPE_CHECKING:
    from evaluation.evaluate import Results

THUMB = 150
"""Side of each picture in the grid, in pixels."""

COLUMNS = 4
"""(upload, model input) pairs per row."""


def upload_thumbnail(data: bytes) -> Image.Image:
    """The upload as a viewer shows it (EXIF applied, transparency on a checkerboard), THUMB px."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    image.draft("RGB", (THUMB * 2, THUMB * 2))
    image = image.convert("RGBA")
    image.thumbnail((THUMB, THUMB))
    checks = (np.indices((image.height, image.width)) // 8).sum(axis=0) % 2
    board = Image.fromarray(np.where(checks[..., None] == 1, 205, 235).astype(np.uint8).repeat(3, axis=2)).convert("RGBA")
    board.alpha_composite(image)
    tile = Image.new("RGB", (THUMB, THUMB), (90, 90, 90))
    tile.paste(board.convert("RGB"), ((THUMB - image.width) // 2, (THUMB - image.height) // 2))
    return tile


def draw_grid(results: Results, path: Path, title: str = "") -> None:
    """Write the grid PNG: one cell per (source, condition) sample, with the default model's answer."""
    model = results.default_model
    cells = [(k, o) for k, o in enumerate(results.outcomes) if o.upload is not None]
    label_h = 34
    cell_w, cell_h = 2 * THUMB + 12, THUMB + label_h
    rows = (len(cells) + COLUMNS - 1) // COLUMNS
    sheet = Image.new("RGB", (COLUMNS * cell_w, rows * cell_h + 24), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((6, 6), f"{title}upload | what {model} saw (28x28) | its answer", fill="black")
    for n, (k, outcome) in enumerate(cells):
        assert outcome.upload is not None
        x, y = (n % COLUMNS) * cell_w, (n // COLUMNS) * cell_h + 24
        sheet.paste(upload_thumbnail(outcome.upload.data), (x, y))
        if outcome.prepared is not None:
            seen = Image.fromarray(outcome.prepared.pixels).resize((THUMB, THUMB), Image.Resampling.NEAREST)
            sheet.paste(seen.convert("RGB"), (x + THUMB + 4, y))
            predicted = int(results.predictions[model][k])
            confidence = float(results.confidences[model][k])
            verdict = f"true {outcome.label}, said {predicted} ({confidence:.2f})"
            colour = (0, 120, 0) if predicted == outcome.label else (190, 0, 0)
        else:
            verdict, colour = f"true {outcome.label}, refused: {outcome.error}", (190, 0, 0)
        name = outcome.condition if outcome.source == "mnist" else f"{outcome.source}: {outcome.condition}"
        draw.text((x + 2, y + THUMB + 3), name, fill="black")
        draw.text((x + 2, y + THUMB + 17), verdict, fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A palette of 128 colours is indistinguishable here and a third of the size in the repository.
    sheet.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
