"""A contact sheet of rendered uploads, shown upright (EXIF applied) as a viewer would."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

TILE = 256


def thumbnail(path: Path, caption: str, tile: int = TILE) -> Image.Image:
    im = ImageOps.exif_transpose(Image.open(path))
    if im.mode in ("RGBA", "LA"):  # show transparency as a checkerboard, like an image viewer
        bg = Image.new("RGB", im.size, (200, 200, 200))
        d = ImageDraw.Draw(bg)
        for y in range(0, im.size[1], 16):
            for x in range((y // 16) % 2 * 16, im.size[0], 32):
                d.rectangle([x, y, x + 15, y + 15], fill=(240, 240, 240))
        bg.paste(im.convert("RGBA"), mask=im.convert("RGBA").split()[3])
        im = bg
    im = im.convert("RGB")
    im.thumbnail((tile, tile - 14))
    out = Image.new("RGB", (tile, tile), (40, 40, 40))
    out.paste(im, ((tile - im.size[0]) // 2, 14))
    ImageDraw.Draw(out).text((2, 1), caption[:42], fill=(255, 255, 0))
    return out


def contact_sheet(uploads: Path, out: Path, per: int, cols: int = 8) -> None:
    rows = [json.loads(line) for line in (uploads / "labels.jsonl").read_text().splitlines()]
    seen: dict[str, int] = {}
    chosen = []
    for r in rows:
        if seen.get(r["condition"], 0) < per:
            seen[r["condition"]] = seen.get(r["condition"], 0) + 1
            chosen.append(r)
    n_rows = (len(chosen) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * TILE, n_rows * TILE))
    for i, r in enumerate(chosen):
        cap = f"{r['condition']} [{r['expected']}]"
        sheet.paste(thumbnail(uploads / r["file"], cap), ((i % cols) * TILE, (i // cols) * TILE))
    sheet.save(out)
    print(f"{len(chosen)} tiles -> {out}")
