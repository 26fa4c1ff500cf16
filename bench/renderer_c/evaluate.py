"""Send the uploads to the service over HTTP, score the answers, write report.md/json and grid.png.

Digit and no-digit uploads go to POST /predict, numbers to POST /read. A refusal (422) is a miss
for a digit or a number and a hit for a no-digit upload.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from .sheet import thumbnail

MIME = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
CONFIDENT = 0.9


def load_labels(uploads: Path, limit: int | None) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (uploads / "labels.jsonl").read_text().splitlines() if line.strip()]
    if limit and limit < len(rows):
        step = len(rows) / limit  # spread a smoke subset over all conditions
        rows = [rows[int(i * step)] for i in range(limit)]
    return rows


def send(client: httpx.Client, uploads: Path, row: dict[str, Any], model: str | None) -> dict[str, Any]:
    path = uploads / row["file"]
    endpoint = "/read" if row["kind"] == "number" else "/predict"
    params = {"model": model} if model else None
    t0 = time.monotonic()
    try:
        files = {"file": (path.name, path.read_bytes(), MIME[path.suffix.lstrip(".")])}
        r = client.post(endpoint, files=files, params=params)
        status, text = r.status_code, r.text
    except httpx.HTTPError as exc:
        status, text = 0, f"{type(exc).__name__}: {exc}"
    latency = time.monotonic() - t0
    try:
        body = json.loads(text)
    except ValueError:
        body = {"raw": text[:300]}
    return {**row, "status": status, "body": body, "latency_s": round(latency, 4)}


def score(res: dict[str, Any]) -> dict[str, Any]:
    """Add hit / refused / error / answer / confident_wrong (and number details) to one result."""
    status, body, kind = res["status"], res["body"], res["kind"]
    ok = status == 200 and isinstance(body, dict)
    s: dict[str, Any] = {"refused": status == 422, "error": status not in (200, 422), "answered": ok}
    conf = body.get("confidence") if ok else None
    s["confidence"] = conf
    if kind == "digit":
        s["answer"] = body.get("digit") if ok else None
        s["hit"] = ok and s["answer"] == res["expected"]
    elif kind == "none":
        s["answer"] = body.get("digit") if ok else None
        s["hit"] = status == 422
    else:
        text = str(body.get("text", "")) if ok else ""
        s["answer"] = text if ok else None
        want = str(res["expected"])
        s["hit"] = ok and text == want
        s["hit_ignoring_spaces"] = ok and text.replace(" ", "") == want.replace(" ", "")
        got = [d.get("digit") for d in body.get("digits", [])] if ok and body.get("digits") else [
            int(c) for c in text if c.isdigit()]
        exp = [int(c) for c in want if c.isdigit()]
        s["length_got"], s["length_expected"] = len(got), len(exp)
        s["digits_right"] = sum(a == b for a, b in zip(got, exp, strict=False)) if len(got) == len(exp) else 0
        s["split"] = ok and len(got) > len(exp)
        s["merge"] = ok and len(got) < len(exp)
    s["confident_wrong"] = bool(ok and not s["hit"] and conf is not None and conf >= CONFIDENT)
    return {**res, **s}


def _rate(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


def summarise(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    rs = list(results)
    n = len(rs)
    answered = sum(r["answered"] for r in rs)
    lat = sorted(r["latency_s"] for r in rs)
    out: dict[str, Any] = {
        "n": n,
        "accuracy": _rate(sum(r["hit"] for r in rs), n),
        "refusal_rate": _rate(sum(r["refused"] for r in rs), n),
        "error_rate": _rate(sum(r["error"] for r in rs), n),
        "confident_mistakes_of_answers": _rate(sum(r["confident_wrong"] for r in rs), answered),
        "answered": answered,
        "latency_p50_s": lat[len(lat) // 2] if lat else None,
    }
    nums = [r for r in rs if r["kind"] == "number"]
    if nums:
        same = [r for r in nums if r["answered"] and r["length_got"] == r["length_expected"]]
        out["exact_ignoring_spaces"] = _rate(sum(r["hit_ignoring_spaces"] for r in nums), len(nums))
        out["digit_accuracy_same_length"] = _rate(sum(r["digits_right"] for r in same),
                                                  sum(r["length_expected"] for r in same))
        out["digit_accuracy_all"] = _rate(sum(r["digits_right"] for r in nums), sum(r["length_expected"] for r in nums))
        out["split_rate"] = _rate(sum(r["split"] for r in nums), len(nums))
        out["merge_rate"] = _rate(sum(r["merge"] for r in nums), len(nums))
    return out


def group(results: list[dict[str, Any]], key: Any) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        k = key(r)
        if k is not None:
            groups[str(k)].append(r)
    return {k: summarise(v) for k, v in groups.items()}


def build_report(results: list[dict[str, Any]]) -> dict[str, Any]:
    digits = [r for r in results if r["kind"] == "digit"]
    numbers = [r for r in results if r["kind"] == "number"]
    nones = [r for r in results if r["kind"] == "none"]
    return {
        "overall": {
            "digit_uploads": summarise(digits),
            "photos": summarise(r for r in digits if r["family"] == "photo"),
            "canvases_and_scans": summarise(r for r in digits if r["family"] in ("canvas", "scan")),
            "clean_upscaled": summarise(r for r in digits if r["family"] == "clean"),
            "no_digit": summarise(nones),
            "numbers": summarise(numbers) if numbers else None,
        },
        "per_condition": group(results, lambda r: r["condition"]),
        "per_source": group(digits, lambda r: r["source_set"]),
        "per_expected_digit": group(digits, lambda r: r["expected"]),
        "numbers_per_length": group(numbers, lambda r: r["length_expected"]),
        "numbers_per_condition": group(numbers, lambda r: r["condition"]),
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _table(title: str, rows: dict[str, dict[str, Any]], numbers: bool = False) -> list[str]:
    head = "| group | n | accuracy | refused | errors | confident mistakes / answers | p50 latency |"
    sep = "|---|---:|---:|---:|---:|---:|---:|"
    if numbers:
        head = "| group | n | exact | exact (spaces ignored) | digit acc. (same length) | digit acc. (all) | split | merge | refused |"
        sep = "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    lines = [f"## {title}", "", head, sep]
    for k, s in rows.items():
        if s is None:
            continue
        if numbers:
            lines.append(f"| {k} | {s['n']} | {_pct(s['accuracy'])} | {_pct(s.get('exact_ignoring_spaces'))} | "
                         f"{_pct(s.get('digit_accuracy_same_length'))} | {_pct(s.get('digit_accuracy_all'))} | "
                         f"{_pct(s.get('split_rate'))} | {_pct(s.get('merge_rate'))} | {_pct(s['refusal_rate'])} |")
        else:
            lat = "-" if s["latency_p50_s"] is None else f"{1000 * s['latency_p50_s']:.0f} ms"
            lines.append(f"| {k} | {s['n']} | {_pct(s['accuracy'])} | {_pct(s['refusal_rate'])} | "
                         f"{_pct(s['error_rate'])} | {_pct(s['confident_mistakes_of_answers'])} | {lat} |")
    return [*lines, ""]


def write_markdown(report: dict[str, Any], meta: dict[str, Any], path: Path, conditions: dict[str, str]) -> None:
    ov = report["overall"]
    lines = [
        "# renderer_c: independent evaluation of the digit service",
        "",
        f"Service: `{meta['url']}` (model: {meta['model'] or 'default'}); {meta['n']} uploads from `{meta['uploads']}`"
        f"{' (smoke subset)' if meta['limit'] else ''}; {meta['seconds']:.0f} s.",
        "",
        "A refusal (HTTP 422) is a miss for a digit or number upload and a hit for a no-digit upload. "
        f"Confident mistakes: wrong answers (or answers to a no-digit upload) with confidence >= {CONFIDENT}, "
        "as a share of all 200 answers in the group.",
        "",
    ]
    lines += _table("Overall", {k: v for k, v in ov.items() if k != "numbers"})
    lines += _table("Per source (digit uploads)", report["per_source"])
    digit_conds = {k: v for k, v in report["per_condition"].items() if conditions.get(k) != "number"}
    lines += _table("Per condition (digits and no-digit)", digit_conds)
    if ov["numbers"]:
        lines += _table("Numbers (POST /read)", {"all": ov["numbers"]}, numbers=True)
        lines += _table("Numbers per length", report["numbers_per_length"], numbers=True)
        lines += _table("Numbers per condition", report["numbers_per_condition"], numbers=True)
    lines += _table("Per expected digit", dict(sorted(report["per_expected_digit"].items())))
    lines += ["![failures](grid.png)", ""]
    path.write_text("\n".join(lines))


def failure_grid(results: list[dict[str, Any]], uploads: Path, path: Path, n: int = 48, cols: int = 8) -> None:
    """Thumbnails of misses, taken in turn from each condition so one bad condition does not fill it."""
    from PIL import Image

    by_cond: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        if not r["hit"]:
            by_cond[r["condition"]].append(r)
    picked: list[dict[str, Any]] = []
    while len(picked) < n and any(by_cond.values()):
        for c in list(by_cond):
            if by_cond[c] and len(picked) < n:
                picked.append(by_cond[c].pop(0))
    if not picked:
        return
    tile = 200
    sheet = Image.new("RGB", (cols * tile, ((len(picked) + cols - 1) // cols) * tile))
    for i, r in enumerate(picked):
        got = "422" if r["refused"] else (f"err {r['status']}" if r["error"] else r["answer"])
        conf = f" {r['confidence']:.2f}" if r.get("confidence") is not None else ""
        cap = f"{r['condition'][:16]} {r['expected']}->{got}{conf}"
        sheet.paste(thumbnail(uploads / r["file"], cap, tile), ((i % cols) * tile, (i // cols) * tile))
    sheet.save(path)


def evaluate(uploads: Path, url: str, out: Path, limit: int | None, concurrency: int, model: str | None,
             timeout: float) -> None:
    rows = load_labels(uploads, limit)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with httpx.Client(base_url=url, timeout=timeout) as client:
        ready = client.get("/health/ready")
        if ready.status_code != 200:
            raise SystemExit(f"{url}/health/ready answered {ready.status_code}: start the service first")
        with ThreadPoolExecutor(concurrency) as pool:
            results = [score(r) for r in pool.map(lambda row: send(client, uploads, row, model), rows)]
    seconds = time.monotonic() - t0
    with (out / "results.jsonl").open("w") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    report = build_report(results)
    meta = {"url": url, "model": model, "uploads": str(uploads), "n": len(results), "limit": limit, "seconds": seconds}
    (out / "report.json").write_text(json.dumps({"meta": meta, **report}, indent=1))
    conditions = {r["condition"]: r["kind"] for r in results}
    write_markdown(report, meta, out / "report.md", conditions)
    failure_grid(results, uploads, out / "grid.png")
    print(f"{len(results)} uploads in {seconds:.0f} s -> {out}/report.md")
