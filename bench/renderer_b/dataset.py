"""The whole set: which digit goes to which condition, rendered in one process, with ``manifest.json``.

Every file gets its own generator, seeded from (seed, condition, number), so a file's bytes do not depend on
which other files were rendered or in what order, and ``--only`` reproduces the same files as a full run.
"""

from __future__ import annotations

import json
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.renderer_b import conditions
from bench.renderer_b.render import Upload, render_canvas, render_clean, render_photo, render_scan
from bench.renderer_b.sources import (
    Glyph,
    available_fonts,
    font_glyph,
    load_mnist_test,
    load_uci_test,
    mnist_glyph,
    uci_glyph,
)

Rng = np.random.Generator

# Defaults at --per-condition 40; the other families scale with it.
DEFAULT_PER_CONDITION = 40
OTHER_COUNTS = {
    "uci_photo": 200,
    "uci_clean": 200,
    "canvas_transparent": 60,
    "canvas_white": 40,
    "scan_grey_png": 50,
    "scan_colour_jpeg": 50,
}
NO_DIGIT_KINDS = ("blank", "edge", "spiral", "desk")
NO_DIGIT_EACH = 10
FONT_VARIANTS = 2  # renderings of every font x digit (different slant, size, scan)


@dataclass(frozen=True)
class Job:
    """One file to render: its condition, family and which test digit (if any)."""

    condition: str
    family: str  # photo | canvas | scan | clean | font_scan | no_digit
    number: int
    source: str | None  # mnist | uci | font | None
    index: int  # index in the source's test split (fonts: the digit)
    font: str | None = None


def _balanced(labels: np.ndarray[Any, Any], count: int, rng: Rng, used: set[int]) -> list[int]:
    """``count`` indices, as even over the ten digits as possible, none used before."""
    picks: list[int] = []
    per = [count // 10 + (1 if d < count % 10 else 0) for d in range(10)]
    order = rng.permutation(10)
    for d, n in zip(order.tolist(), per, strict=True):
        pool = [int(i) for i in np.flatnonzero(labels == d) if int(i) not in used]
        chosen = rng.choice(pool, size=min(n, len(pool)), replace=False).tolist() if pool and n else []
        picks.extend(int(i) for i in chosen)
        used.update(int(i) for i in chosen)
    rng.shuffle(picks)
    return picks


def plan(per_condition: int, seed: int, fonts: dict[str, Path], uci_labels: np.ndarray[Any, Any],
         mnist_labels: np.ndarray[Any, Any]) -> list[Job]:  # fmt: skip
    """Every file of the set, in order."""
    rng = np.random.default_rng([seed, 0xB])
    scale = per_condition / DEFAULT_PER_CONDITION
    jobs: list[Job] = []
    used: set[int] = set()  # each MNIST test digit appears once in the whole set
    for cond in conditions.PHOTO_CONDITIONS:
        for n, i in enumerate(_balanced(mnist_labels, per_condition, rng, used)):
            jobs.append(Job(cond, "photo", n, "mnist", i))
    counts = {k: max(1, round(v * scale)) for k, v in OTHER_COUNTS.items()}
    uci_used: set[int] = set()
    for n, i in enumerate(_balanced(uci_labels, min(counts["uci_photo"], len(uci_labels)), rng, uci_used)):
        jobs.append(Job("uci_photo", "photo", n, "uci", i))
    for n, i in enumerate(_balanced(uci_labels, min(counts["uci_clean"], len(uci_labels)), rng, set())):
        jobs.append(Job("uci_clean", "clean", n, "uci", i))
    for cond in ("canvas_transparent", "canvas_white"):
        for n, i in enumerate(_balanced(mnist_labels, counts[cond], rng, used)):
            jobs.append(Job(cond, "canvas", n, "mnist", i))
    for cond in ("scan_grey_png", "scan_colour_jpeg"):
        for n, i in enumerate(_balanced(mnist_labels, counts[cond], rng, used)):
            jobs.append(Job(cond, "scan", n, "mnist", i))
    n = 0
    for _v in range(max(1, round(FONT_VARIANTS * min(1.0, scale)))):
        for name in fonts:
            for d in range(10):
                jobs.append(Job("font_scan", "font_scan", n, "font", d, font=name))
                n += 1
    each = max(1, round(NO_DIGIT_EACH * scale))
    for kind in NO_DIGIT_KINDS:
        for n in range(each):
            jobs.append(Job(f"no_digit_{kind}", "no_digit", n, None, -1))
    return jobs


class Glyphs:
    """The test digits, loaded once."""

    def __init__(self) -> None:
        self.mnist_images, self.mnist_labels = load_mnist_test()
        self.uci_x, self.uci_y = load_uci_test()
        self.fonts = available_fonts()

    def get(self, job: Job, rng: Rng) -> Glyph | None:
        if job.source == "mnist":
            return mnist_glyph(self.mnist_images[job.index], int(self.mnist_labels[job.index]), job.index)
        if job.source == "uci":
            return uci_glyph(self.uci_x[job.index], int(self.uci_y[job.index]), job.index)
        if job.source == "font" and job.font is not None:
            return font_glyph(self.fonts[job.font], job.font, job.index, float(rng.uniform(-6, 6)),
                              float(rng.uniform(-0.05, 0.3)))  # fmt: skip
        return None


def render_job(job: Job, glyph: Glyph | None, rng: Rng) -> Upload:
    """Render one job with its own generator."""
    if job.family == "photo":
        spec = conditions.everyday(rng)
        if job.condition in conditions.PHOTO_CONDITIONS:
            conditions.PHOTO_CONDITIONS[job.condition](spec, rng)
        return render_photo(glyph, spec, rng)
    assert glyph is not None or job.family == "no_digit"
    if job.family == "no_digit":
        spec = conditions.everyday(rng)
        kind = job.condition.removeprefix("no_digit_")
        if kind == "spiral":
            spec.paper = "spiral"
        if kind == "desk" and rng.random() < 0.35:
            spec.keyboard = True
        return render_photo(None, spec, rng, empty=kind)
    assert glyph is not None
    if job.family == "canvas":
        return render_canvas(glyph, rng, transparent=job.condition == "canvas_transparent")
    if job.family == "scan":
        return render_scan(glyph, rng, colour=job.condition == "scan_colour_jpeg")
    if job.family == "font_scan":
        return render_scan(glyph, rng, colour=False, native_pen=True)
    if job.family == "clean":
        return render_clean(glyph, rng)
    raise ValueError(f"unknown family {job.family!r}")


def render_all(out: Path, per_condition: int = DEFAULT_PER_CONDITION, seed: int = 0,
               only: list[str] | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Render the set into ``out`` (one folder per condition) and write ``out/manifest.json``."""
    glyphs = Glyphs()
    jobs = plan(per_condition, seed, glyphs.fonts, glyphs.uci_y, glyphs.mnist_labels)
    if only:
        jobs = [j for j in jobs if j.condition in only]
    out.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    started = time.perf_counter()
    for k, job in enumerate(jobs):
        rng = np.random.default_rng([seed, zlib.crc32(job.condition.encode()), job.number])
        t0 = time.perf_counter()
        glyph = glyphs.get(job, rng)
        up = render_job(job, glyph, rng)
        up.facts["render_ms"] = round(1000 * (time.perf_counter() - t0))
        rel = Path(job.condition) / f"{job.condition}-{job.number:04d}.{up.ext}"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(up.data)
        box = up.digit_box
        entries.append({
            "file": rel.as_posix(),
            "label": glyph.label if glyph is not None else None,
            "condition": job.condition,
            "family": job.family,
            "source": job.source,
            "source_index": job.index if job.source in ("mnist", "uci") else None,
            "font": job.font,
            "format": up.fmt,
            "width": up.width,
            "height": up.height,
            "megapixels": round(up.width * up.height / 1e6, 3),
            "bytes": len(up.data),
            "digit_box": list(box) if box else None,
            "digit_share": round(box[3] / up.height, 4) if box else None,
            "digit_area_share": round(box[2] * box[3] / (up.width * up.height), 5) if box else None,
            "facts": up.facts,
        })  # fmt: skip
        if progress and (k + 1) % 100 == 0:
            progress(f"{k + 1}/{len(jobs)} files, {time.perf_counter() - started:.0f} s")
    seconds = time.perf_counter() - started
    manifest = {
        "renderer": "bench.renderer_b",
        "seed": seed,
        "per_condition": per_condition,
        "files": len(entries),
        "render_seconds": round(seconds, 1),
        "python": sys.version.split()[0],
        "uploads": entries,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
