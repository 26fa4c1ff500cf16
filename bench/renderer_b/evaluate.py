"""Send every rendered upload to a running service's ``/predict`` (a black box) and write the report.

An upload is right when the service answers 200 with the written digit. A 422 refusal on a digit upload is a
miss (counted apart as a refusal); on the no-digit family it is the right answer, and that family is reported
on its own, never in the accuracy.
"""

from __future__ import annotations

import base64
import io
import json
import math
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageDraw, ImageOps

MIME = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
CONFIDENT = 0.9
MAX_CONCURRENCY = 2  # the machine's two cores are shared: never more than two requests in flight


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - half), min(1.0, c + half))


def _spread(entries: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """The first ``limit`` uploads taken round-robin over the conditions (a smoke test sees every kind)."""
    if not limit or limit >= len(entries):
        return entries
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in entries:
        by[e["condition"]].append(e)
    groups = list(by.values())
    if limit < len(groups):  # fewer files than conditions: conditions evenly spaced over all the families
        groups = [groups[i * len(groups) // limit] for i in range(limit)]
    out: list[dict[str, Any]] = []
    k = 0
    while len(out) < limit:
        for items in groups:
            if k < len(items) and len(out) < limit:
                out.append(items[k])
        k += 1
    return out


def ask(client: httpx.Client, url: str, path: Path, number: int, model: str | None) -> dict[str, Any]:
    """POST one file; the filename sent is a neutral camera-like name, so nothing about the file leaks."""
    ext = path.suffix.lstrip(".").lower()
    params = {"explain": "true"}
    if model:
        params["model"] = model
    files = {"file": (f"IMG_{number:04d}.{ext}", path.read_bytes(), MIME.get(ext, "application/octet-stream"))}
    t0 = time.perf_counter()
    try:
        r = client.post(f"{url.rstrip('/')}/predict", params=params, files=files)
    except httpx.HTTPError as exc:
        return {"status": 0, "error": type(exc).__name__, "ms": round((time.perf_counter() - t0) * 1000, 1)}
    ms = round((time.perf_counter() - t0) * 1000, 1)
    try:
        body = r.json()
    except ValueError:
        body = {}
    if isinstance(body, list):  # a list of answers when several files are sent; we send one
        body = body[0] if body else {}
    if r.status_code != 200:
        return {"status": r.status_code, "error": str(body.get("error", ""))[:200], "ms": ms}
    image = body.get("image") or {}
    return {"status": 200, "digit": body.get("digit"), "confidence": body.get("confidence"),
            "answered_by": body.get("model"), "prepared_png": image.get("prepared_png"), "ms": ms}  # fmt: skip


def run(uploads: Path, url: str, models: list[str | None], limit: int | None = None,
        concurrency: int = MAX_CONCURRENCY, timeout: float = 60.0) -> dict[str, Any]:  # fmt: skip
    """Every upload to every model; returns the records (prepared images kept only for misses)."""
    manifest = json.loads((uploads / "manifest.json").read_text())
    entries = _spread(manifest["uploads"], limit)
    records: list[dict[str, Any]] = []
    with httpx.Client(timeout=timeout) as client, ThreadPoolExecutor(max(1, min(concurrency, MAX_CONCURRENCY))) as pool:
        for model in models:
            started = time.perf_counter()
            answers = pool.map(lambda ie, m=model: ask(client, url, uploads / ie[1]["file"], ie[0], m), enumerate(entries))
            for e, a in zip(entries, answers, strict=True):
                label = e["label"]
                right = a["status"] == 200 and label is not None and a.get("digit") == label
                if right or (label is None and a["status"] == 422):
                    a.pop("prepared_png", None)
                records.append({"file": e["file"], "condition": e["condition"], "family": e["family"],
                                "source": e["source"], "font": e["font"], "label": label,
                                **a, "model": model or "(default)", "right": right})  # fmt: skip
            print(f"renderer_b: {model or '(default)'}: {len(entries)} uploads in {time.perf_counter() - started:.0f} s")
    return {"manifest": manifest, "records": records, "entries": len(entries)}


# ---------------------------------------------------------------------------------------------------------------
# Report


def _rate(recs: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(recs)
    right = sum(r["right"] for r in recs)
    answered = [r for r in recs if r["status"] == 200]
    confident_wrong = sum(1 for r in answered if not r["right"] and (r.get("confidence") or 0) >= CONFIDENT)
    lo, hi = wilson(right, n)
    return {
        "n": n,
        "right": right,
        "accuracy": round(right / n, 4) if n else None,
        "ci95": [round(lo, 4), round(hi, 4)],
        "refused_422": sum(r["status"] == 422 for r in recs),
        "other_errors": sum(r["status"] not in (200, 422) for r in recs),
        "answered": len(answered),
        "confident_mistakes": confident_wrong,
        "confident_mistakes_share_of_answers": round(confident_wrong / len(answered), 4) if answered else None,
    }


def _source_key(r: dict[str, Any]) -> str:
    if r["source"] == "uci":
        return "uci clean" if r["family"] == "clean" else "uci photo"
    if r["source"] == "font":
        return "font"
    return f"mnist {r['family']}"


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy overall, per condition, per source and per font; the no-digit family apart; per model."""
    out: dict[str, Any] = {}
    for model in dict.fromkeys(r["model"] for r in records):
        recs = [r for r in records if r["model"] == model]
        digits = [r for r in recs if r["label"] is not None]
        empty = [r for r in recs if r["label"] is None]
        groups: dict[str, dict[str, list[dict[str, Any]]]] = {"condition": defaultdict(list), "source": defaultdict(list),
                                                               "font": defaultdict(list)}  # fmt: skip
        for r in digits:
            groups["condition"][r["condition"]].append(r)
            groups["source"][_source_key(r)].append(r)
            if r["font"]:
                groups["font"][r["font"]].append(r)
        no_digit: dict[str, Any] = {}
        for cond in dict.fromkeys(r["condition"] for r in empty):
            rs = [r for r in empty if r["condition"] == cond]
            no_digit[cond] = {"n": len(rs), "refused_422": sum(r["status"] == 422 for r in rs),
                              "answered": [[r["digit"], r["confidence"]] for r in rs if r["status"] == 200]}  # fmt: skip
        refused = sum(r["status"] == 422 for r in empty)
        out[model] = {
            "overall": _rate(digits),
            "per_condition": {k: _rate(v) for k, v in groups["condition"].items()},
            "per_source": {k: _rate(v) for k, v in sorted(groups["source"].items())},
            "per_font": {k: _rate(v) for k, v in sorted(groups["font"].items())},
            "no_digit": {"n": len(empty), "refused_422": refused,
                         "refusal_rate": round(refused / len(empty), 4) if empty else None, "per_kind": no_digit},
            "answered_by": sorted({str(r["answered_by"]) for r in recs if r.get("answered_by")}),
        }
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _rate_row(name: str, s: dict[str, Any]) -> str:
    return (f"| {name} | {s['n']} | {_pct(s['accuracy'])} | {_pct(s['ci95'][0])}-{_pct(s['ci95'][1])} | "
            f"{s['refused_422']} | {s['confident_mistakes']} ({_pct(s['confident_mistakes_share_of_answers'])}) | "
            f"{s['other_errors']} |")  # fmt: skip


HEAD = ("| {} | n | accuracy | 95% CI | refused (422) | confident mistakes (share of answers) | other errors |\n"
        "| --- | ---: | ---: | --- | ---: | ---: | ---: |")  # fmt: skip


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        "# Renderer B: realistic uploads against /predict",
        "",
        f"Service {meta['url']}, {meta['uploads']} uploads from `{meta['dir']}` (seed {meta['seed']}), "
        f"{meta['when']}, {meta['seconds']:.0f} s. Right = HTTP 200 with the written digit; a 422 on a digit upload "
        f"is a miss. Confident mistake: wrong with confidence >= {CONFIDENT}. The no-digit family (right answer: 422) "
        "is reported apart and is in no accuracy. Intervals: Wilson 95%.",
        "",
    ]
    if meta.get("note"):
        lines += [f"**{meta['note']}**", ""]
    models = list(summary)
    if len(models) > 1:
        lines += ["## Models side by side", "", "| model | accuracy | 95% CI | refused | confident mistakes | no-digit refused |",
                  "| --- | ---: | --- | ---: | ---: | ---: |"]  # fmt: skip
        for m in models:
            o, nd = summary[m]["overall"], summary[m]["no_digit"]
            lines.append(f"| {m} | {_pct(o['accuracy'])} | {_pct(o['ci95'][0])}-{_pct(o['ci95'][1])} | "
                         f"{o['refused_422']} | {_pct(o['confident_mistakes_share_of_answers'])} | {_pct(nd['refusal_rate'])} |")  # fmt: skip
        conds = list(summary[models[0]]["per_condition"])
        lines += ["", "| condition | n | " + " | ".join(models) + " |", "| --- | ---: |" + " ---: |" * len(models)]
        for c in conds:
            cells = [_pct(summary[m]["per_condition"].get(c, {}).get("accuracy")) for m in models]
            lines.append(f"| {c} | {summary[models[0]]['per_condition'][c]['n']} | " + " | ".join(cells) + " |")
        lines.append("")
    for m in models:
        s = summary[m]
        by = ", ".join(s["answered_by"]) or "-"
        lines += [f"## Model: {m} (answered by {by})", "", HEAD.format("uploads"), _rate_row("all digit uploads", s["overall"]), ""]
        lines += ["### Per condition", "", HEAD.format("condition")]
        lines += [_rate_row(k, v) for k, v in s["per_condition"].items()]
        lines += ["", "### Per source", "", HEAD.format("source")]
        lines += [_rate_row(k, v) for k, v in s["per_source"].items()]
        if s["per_font"]:
            lines += ["", "### Per font (clean scans)", "", HEAD.format("font")]
            lines += [_rate_row(k, v) for k, v in s["per_font"].items()]
        nd = s["no_digit"]
        lines += ["", "### No digit (right answer: 422)", "",
                  f"Refused {nd['refused_422']} of {nd['n']} ({_pct(nd['refusal_rate'])}).", "",
                  "| kind | n | refused (422) | answered (digit, confidence) |", "| --- | ---: | ---: | --- |"]  # fmt: skip
        for k, v in nd["per_kind"].items():
            ans = ", ".join(f"{d} ({c:.2f})" for d, c in v["answered"]) or "-"
            lines.append(f"| {k} | {v['n']} | {v['refused_422']} | {ans} |")
        lines.append("")
    lines += ["Failures, a few per condition: `grid.png` (upload, then the 28x28 image the model saw).", ""]
    return "\n".join(lines)


def _thumb(path: Path, size: int) -> Image.Image:
    im = ImageOps.exif_transpose(Image.open(path))
    if im.mode in ("RGBA", "LA") or "transparency" in im.info:
        im = im.convert("RGBA")
        board = Image.new("RGBA", im.size, (200, 200, 200, 255))
        d = ImageDraw.Draw(board)
        step = max(8, min(im.size) // 16)
        for y in range(0, im.size[1], step):
            for x in range((y // step) % 2 * step, im.size[0], 2 * step):
                d.rectangle([x, y, x + step - 1, y + step - 1], fill=(150, 150, 150, 255))
        im = Image.alpha_composite(board, im)
    im = im.convert("RGB")
    im.thumbnail((size, size))
    return im


def grid(records: Iterable[dict[str, Any]], uploads: Path, out: Path, per_condition: int = 3) -> int:
    """A picture of a few failures per condition: the upload beside what the model saw. Returns the count."""
    fails: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        wrong = (not r["right"]) if r["label"] is not None else r["status"] != 422
        if wrong and len(fails[r["condition"]]) < per_condition:
            fails[r["condition"]].append(r)
    if not fails:
        return 0
    th, cell_w, row_h = 150, 150 + 6 + 112 + 14, 150 + 22
    cols = per_condition
    img = Image.new("RGB", (cols * cell_w + 170, len(fails) * row_h + 4), (255, 255, 255))
    d = ImageDraw.Draw(img)
    for row, (cond, rs) in enumerate(fails.items()):
        y = 2 + row * row_h
        d.text((4, y + th // 2 - 6), cond, fill=(0, 0, 0))
        for col, r in enumerate(rs):
            x = 170 + col * cell_w
            t = _thumb(uploads / r["file"], th)
            img.paste(t, (x, y))
            if r.get("prepared_png"):
                seen = Image.open(io.BytesIO(base64.b64decode(r["prepared_png"]))).convert("L").resize((112, 112), Image.Resampling.NEAREST)
                img.paste(seen, (x + th + 6, y + 19))
            else:
                d.rectangle([x + th + 6, y + 19, x + th + 6 + 111, y + 19 + 111], outline=(180, 0, 0))
                d.text((x + th + 20, y + 70), str(r["status"]), fill=(180, 0, 0))
            label = "none" if r["label"] is None else str(r["label"])
            said = f"{r['digit']} ({r['confidence']:.2f})" if r["status"] == 200 else f"HTTP {r['status']}"
            d.text((x, y + th + 4), f"{label} -> {said}", fill=(0, 0, 0))
    img.save(out, optimize=True)
    return sum(len(v) for v in fails.values())


def write_report(result: dict[str, Any], uploads: Path, out: Path, url: str, seconds: float, note: str | None = None) -> None:
    """report.json, report.md and grid.png (grid-<model>.png for every model after the first) under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    records = result["records"]
    summary = summarise(records)
    meta = {"url": url, "uploads": result["entries"], "dir": str(uploads), "seed": result["manifest"].get("seed"),
            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "seconds": seconds, "note": note,
            "confident_threshold": CONFIDENT}  # fmt: skip
    slim = [{k: v for k, v in r.items() if k != "prepared_png"} for r in records]
    (out / "report.json").write_text(json.dumps({"meta": meta, "summary": summary, "records": slim}, indent=1))
    (out / "report.md").write_text(markdown(summary, meta))
    for k, model in enumerate(summary):
        name = "grid.png" if k == 0 else f"grid-{model}.png"
        grid([r for r in records if r["model"] == model], uploads, out / name)
