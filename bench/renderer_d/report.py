"""Roll the scored answers up into report.json, report.md and a grid of misses."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np

Row = dict[str, object]
GRID_MAX = 120
TILE = 128


def group_stats(rows: list[Row]) -> dict[str, object]:
    """n, hits, accuracy, refusals and confident mistakes (share of the answers given) of a group."""
    n = len(rows)
    hits = sum(1 for r in rows if r["hit"])
    answered = [r for r in rows if r["status"] == 200]
    confident = sum(1 for r in rows if r["confident_mistake"])
    return {
        "n": n, "hits": hits, "accuracy": round(hits / n, 4) if n else None,
        "refused_422": sum(1 for r in rows if r["status"] == 422),
        "errors": sum(1 for r in rows if r["status"] not in (200, 422)),
        "answered": len(answered),
        "confident_mistakes": confident,
        "confident_mistake_share": round(confident / len(answered), 4) if answered else None,
    }


def number_stats(rows: list[Row]) -> dict[str, object]:
    """Exact-string rate plus per-digit accuracy where lengths match, and split/merge counts."""
    base = group_stats(rows)
    same = [r for r in rows if "digits_right" in r]
    digits = sum(len(str(r["expected"])) for r in same)
    right = sum(int(r["digits_right"]) for r in same)  # type: ignore[call-overload]
    deltas = [int(r["length_delta"]) for r in rows if r["length_delta"] is not None]  # type: ignore[call-overload]
    base.update(
        same_length=len(same),
        per_digit_accuracy=round(right / digits, 4) if digits else None,
        splits=sum(1 for d in deltas if d > 0),
        merges=sum(1 for d in deltas if d < 0),
    )
    return base


def by(rows: Iterable[Row], key: Callable[[Row], object], stats: Callable[[list[Row]], dict[str, object]] = group_stats) -> dict[str, dict[str, object]]:
    """Stats per value of `key`, in sorted order."""
    groups: dict[str, list[Row]] = {}
    for r in rows:
        groups.setdefault(str(key(r)), []).append(r)
    return {k: stats(groups[k]) for k in sorted(groups)}


def latency(rows: list[Row]) -> dict[str, float | None]:
    """p50 and p95 of the request latency in milliseconds."""
    ms = [float(r["latency_ms"]) for r in rows if r["status"] in (200, 422)]  # type: ignore[arg-type]
    if not ms:
        return {"p50_ms": None, "p95_ms": None}
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1)}


def write_report(results: list[Row], data: Path, out: Path, url: str, model: str | None) -> dict[str, object]:
    """Write report.json, report.md and grid.png; returns the report."""
    digits = [r for r in results if r["family"] == "digit"]
    nones = [r for r in results if r["family"] == "none"]
    numbers = [r for r in results if r["family"] == "number"]
    report: dict[str, object] = {
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "url": url, "model": model or "(service default)", "data": str(data), "uploads": len(results),
        "headline": {
            "digit_uploads": group_stats(digits),
            "photos": group_stats([r for r in digits if r["kind"] == "photo"]),
            "canvases_and_scans": group_stats([r for r in digits if r["kind"] in ("canvas", "scan", "clean")]),
            "no_digit": group_stats(nones),
            "numbers": number_stats(numbers),
            "latency_all": latency(results),
        },
        "digit_by_source": by(digits, lambda r: r["source"]),
        "digit_by_condition": by(digits, lambda r: r["condition"]),
        "digit_by_expected": by(digits, lambda r: r["expected"]),
        "no_digit_by_condition": by(nones, lambda r: r["condition"]),
        "numbers_by_length": by(numbers, lambda r: r["length"], number_stats),
        "numbers_by_condition": by(numbers, lambda r: r["condition"], number_stats),
        "latency_by_route": {route: latency([r for r in results if r["route"] == route]) for route in ("/predict", "/read")},
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    misses = [r for r in results if not r["hit"]]
    draw_grid(misses, data, out / "grid.png")
    return report


def table(title: str, groups: dict[str, dict[str, object]], extra: tuple[str, ...] = ()) -> list[str]:
    """One markdown table of group stats."""
    cols = ("n", "accuracy", "refused_422", "confident_mistake_share", *extra)
    lines = [f"### {title}", "", "| group | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, s in groups.items():
        lines.append(f"| {name} | " + " | ".join("" if s.get(c) is None else str(s.get(c)) for c in cols) + " |")
    return [*lines, ""]


def markdown(rep: dict[str, object]) -> str:
    """The report as markdown."""
    head = rep["headline"]
    assert isinstance(head, dict)
    lines = [
        "# Renderer D: evaluation report", "",
        f"Service {rep['url']}, model {rep['model']}, set {rep['data']}, {rep['uploads']} uploads, {rep['when_utc']}.", "",
        "A hit: the expected digit with HTTP 200 (a 422 is a miss); for no-digit uploads a 422; for numbers the exact",
        "digit string from `POST /read`. Confident mistakes: wrong answers (or any answer to a no-digit upload) with",
        "confidence >= 0.9, as a share of the group's answers (HTTP 200).", "",
        f"Latency over all requests: p50 {head['latency_all']['p50_ms']} ms, p95 {head['latency_all']['p95_ms']} ms.", "",
    ]
    lines += table("Headline", {k: v for k, v in head.items() if k != "latency_all"}, ("per_digit_accuracy", "splits", "merges"))
    for key, title in (("digit_by_source", "Digits by source"), ("digit_by_condition", "Digits by condition"),
                       ("digit_by_expected", "Digits by expected digit"), ("no_digit_by_condition", "No digit, by condition")):
        lines += table(title, rep[key])  # type: ignore[arg-type]
    for key, title in (("numbers_by_length", "Numbers by length"), ("numbers_by_condition", "Numbers by condition")):
        lines += table(title, rep[key], ("per_digit_accuracy", "same_length", "splits", "merges"))  # type: ignore[arg-type]
    lines += ["### Latency by route", "", "| route | p50 ms | p95 ms |", "|---|---|---|"]
    for route, lat in rep["latency_by_route"].items():  # type: ignore[attr-defined]
        lines.append(f"| {route} | {lat['p50_ms']} | {lat['p95_ms']} |")
    return "\n".join(lines) + "\n"


def thumbnail(path: Path) -> np.ndarray:
    """The upload as the viewer sees it (EXIF applied, alpha over grey), fitted into a tile."""
    from PIL import Image, ImageOps

    with Image.open(path) as src:
        src.draft("RGB", (TILE * 2, TILE * 2))  # JPEG: decode at a reduced size, fast for 12 MP
        upright = ImageOps.exif_transpose(src)
        upright.thumbnail((TILE * 2, TILE * 2))
        arr = np.asarray(upright.convert("RGBA"), np.float32)
    alpha = arr[..., 3:4] / 255.0
    img = (arr[..., :3] * alpha + 160 * (1 - alpha)).astype(np.uint8)[..., ::-1]
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    img = img[..., :3]
    h, w = img.shape[:2]
    s = (TILE - 18) / max(h, w)
    small = cv2.resize(np.ascontiguousarray(img), (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
    tile = np.full((TILE, TILE, 3), 255, np.uint8)
    tile[: small.shape[0], : small.shape[1]] = small
    return tile


def draw_grid(misses: list[Row], data: Path, path: Path) -> None:
    """Up to GRID_MAX misses, spread over the conditions, with expected -> answer under each."""
    chosen = sorted(misses, key=lambda r: (str(r["condition"]), str(r["file"])))
    if len(chosen) > GRID_MAX:
        idx = np.linspace(0, len(chosen) - 1, GRID_MAX).round().astype(int)
        chosen = [chosen[int(i)] for i in idx]
    tiles = []
    for r in chosen:
        tile = thumbnail(data / str(r["file"]))
        label = f"{str(r['condition'])[:18]}"
        cv2.putText(tile, label, (2, TILE - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(tile, f"{r['expected']} -> {r['answer']}", (2, TILE - 1), cv2.FONT_HERSHEY_SIMPLEX, 0.3, (0, 0, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    if not tiles:
        tiles = [np.full((TILE, TILE, 3), 255, np.uint8)]
    cols = 12
    while len(tiles) % cols and len(tiles) > cols:
        tiles.append(np.full((TILE, TILE, 3), 255, np.uint8))
    rows = [np.hstack(tiles[i : i + cols]) for i in range(0, len(tiles), cols)]
    cv2.imwrite(str(path), np.vstack(rows))
