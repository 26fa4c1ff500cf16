"""Render the whole set once into a folder with `labels.jsonl`."""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bench.renderer_d import camera, flat
from bench.renderer_d import sources as src
from bench.renderer_d.conditions import CONDITIONS, Condition
from bench.renderer_d.writing import WriteFn, write_digit, write_number

SEED = 20261207
NUMBER_LENGTHS = (2, 3, 4, 5, 6)


@dataclass
class Pools:
    """Test digits handed out in a fixed order, each at most once across the whole set."""

    mnist_images: np.ndarray
    mnist_labels: np.ndarray
    mnist_order: np.ndarray
    uci_images: np.ndarray
    uci_labels: np.ndarray
    uci_order: np.ndarray
    fonts: list[Path]
    mnist_next: int = 0
    uci_next: int = 0

    @classmethod
    def load(cls, seed: int) -> Pools:
        images, labels = src.load_mnist_test()
        uci_x, uci_y = src.load_uci_test()
        rng = np.random.default_rng(seed)
        return cls(images, labels, rng.permutation(len(labels)), uci_x, uci_y, rng.permutation(len(uci_y)), src.usable_fonts())

    def mnist(self) -> src.Glyph:
        idx = int(self.mnist_order[self.mnist_next])
        self.mnist_next += 1
        return src.mnist_glyph(self.mnist_images[idx], int(self.mnist_labels[idx]), idx)

    def uci(self) -> src.Glyph:
        idx = int(self.uci_order[self.uci_next])
        self.uci_next += 1
        return src.uci_glyph(self.uci_images[idx], int(self.uci_labels[idx]), idx)

    def font(self, condition: str, i: int) -> src.Glyph:
        # Each condition walks fonts and digits in its own shuffled order: every digit equally often.
        key = zlib.crc32(condition.encode())
        font_order = np.random.default_rng([SEED, key]).permutation(len(self.fonts))
        digits = np.random.default_rng([SEED, key, i // 10]).permutation(10)
        return src.font_glyph(self.fonts[int(font_order[i % len(self.fonts)])], int(digits[i % 10]))


def plan(cond: Condition, i: int, pools: Pools) -> tuple[WriteFn | None, str, list[str], dict[str, object]]:
    """What upload i of a condition shows: its writing, the expected answer, source ids."""
    if cond.family == "none":
        return None, "none", [], {}
    if cond.family == "number":
        length = NUMBER_LENGTHS[i % len(NUMBER_LENGTHS)]
        glyphs = [pools.mnist() for _ in range(length)]
        expected = "".join(str(g.digit) for g in glyphs)
        return write_number(glyphs), expected, [g.source_id for g in glyphs], {"length": length}
    glyph = {"mnist": pools.mnist, "uci": pools.uci}[cond.source]() if cond.source != "font" else pools.font(cond.name, i)
    return write_digit(glyph), str(glyph.digit), [glyph.source_id], dict(glyph.meta)


def render_one(cond: Condition, writing: WriteFn | None, rng: np.random.Generator) -> tuple[bytes, str, dict[str, object]]:
    """Dispatch to the photo, canvas or scan renderer."""
    if cond.kind == "photo":
        assert cond.photo is not None
        return camera.render_photo(cond.photo, writing, rng)
    if cond.kind == "canvas":
        return flat.render_canvas(writing, bool(cond.options.get("transparent", rng.random() < 0.5)), rng, wide=cond.family == "number")
    if cond.kind == "clean":
        return flat.render_canvas(writing, False, rng, source_clean=True)
    return flat.render_scan(writing, rng, number=cond.family == "number")


def render_whole(cond: Condition, writing: WriteFn | None, seed: int, i: int, tries: int = 6) -> tuple[bytes, str, dict[str, object]]:
    """Render upload i; a photo whose writing the random framing cut off is drawn again (new draw)."""
    key = zlib.crc32(cond.name.encode())
    for attempt in range(tries):
        rng = np.random.default_rng([seed, key, i] if attempt == 0 else [seed, key, i, attempt])
        data, ext, meta = render_one(cond, writing, rng)
        if meta.get("digit_in_frame", True):
            break
    meta["attempt"] = attempt
    return data, ext, meta


def iter_uploads(pools: Pools, per_condition: int | None = None, only: set[str] | None = None) -> Iterator[tuple[Condition, int, WriteFn | None, str, list[str], dict[str, object]]]:
    """Every upload in a fixed order; sources are handed out even for skipped ones, so ids never shift."""
    for cond in CONDITIONS:
        for i in range(cond.count):
            writing, expected, ids, extra = plan(cond, i, pools)
            if (only and cond.name not in only) or (per_condition is not None and i >= per_condition):
                continue
            yield cond, i, writing, expected, ids, extra


def render_all(out: Path, per_condition: int | None = None, only: set[str] | None = None, seed: int = SEED) -> dict[str, object]:
    """Render into `out`; returns counts and timing (also written to out/render_stats.json)."""
    out.mkdir(parents=True, exist_ok=True)
    cv2.setNumThreads(1)  # one shared core: the budget is for a single thread
    pools = Pools.load(seed)
    start = time.perf_counter()
    counts: dict[str, int] = {}
    with open(out / "labels.jsonl", "w") as labels:
        for cond, i, writing, expected, ids, extra in iter_uploads(pools, per_condition, only):
            t0 = time.perf_counter()
            data, ext, meta = render_whole(cond, writing, seed, i)
            meta["render_ms"] = round((time.perf_counter() - t0) * 1000)
            meta.update(extra)
            name = f"{cond.name}/{cond.name}_{i:03d}.{ext}"
            (out / cond.name).mkdir(exist_ok=True)
            (out / name).write_bytes(data)
            row = {
                "file": name, "condition": cond.name, "expected": expected, "source": cond.source,
                "kind": cond.kind, "family": cond.family, "source_ids": ids, "bytes": len(data), "meta": meta,
            }
            labels.write(json.dumps(row, default=_jsonable) + "\n")
            counts[cond.name] = counts.get(cond.name, 0) + 1
    stats: dict[str, object] = {
        "seed": seed, "uploads": sum(counts.values()), "per_condition": counts,
        "render_seconds": round(time.perf_counter() - start, 1), "mnist_used": pools.mnist_next, "uci_used": pools.uci_next,
    }
    (out / "render_stats.json").write_text(json.dumps(stats, indent=2))
    return stats


def _jsonable(value: object) -> object:
    """numpy scalars and arrays in the metadata, as plain JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON: {type(value)}")
