"""Benchmark of the web page: its weight, and the time from the end of a stroke to every answer shown.

    python -m bench.page --store model_store [--strokes 40] [--out bench/results/page]

Starts the service (one worker), opens `/` in Debian's chromium (headless, driven by Playwright)
and measures:

- **Page weight**: the bytes of every response the page needs, uncompressed as served (the service
  does not compress) and gzip-compressed for reference, split into the "Try it" view (HTML, CSS, JS,
  icon: what loads before the first stroke), its API call (`GET /models`), and the "Explore" view
  (cards, comparison, sprite of misclassified digits), which loads only when opened. The charts are
  the page's own SVG code (`js/charts.js`), so there is no charting library to leave out.
- **Stroke to answers**: strokes drawn with the mouse, each on a cleared pad; for each, the page's
  own measure `stroke-to-answers` (performance.measure from `pointerup` to the animation frame that
  shows every model's answer: PNG encoding, the request, the server, JSON parsing, the DOM update).
  In the same run, the same PNGs are posted to `POST /models/compare?explain=true` from Python: the
  round trip without a browser, the floor the page's time is compared with.

Writes `report.md` and `report.json` to `--out`.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.servers import RunningServer, server_spec
from bench.toolkit import REPO, http_request

Stroke = list[tuple[float, float]]

# Digit-like strokes in fractions of the pad: a 1, a 0, a 7, a 2, an L-shaped 4 without its bar.
STROKES: dict[str, Stroke] = {
    "1": [(0.52, 0.15 + 0.7 * i / 14) for i in range(15)],
    "0": [(0.5 + 0.22 * math.sin(2 * math.pi * i / 20), 0.5 - 0.32 * math.cos(2 * math.pi * i / 20)) for i in range(21)],
    "7": [(0.28 + 0.44 * i / 6, 0.2) for i in range(7)] + [(0.72 - 0.25 * i / 8, 0.2 + 0.62 * i / 8) for i in range(1, 9)],
    "2": [(0.3 + 0.4 * (0.5 - 0.5 * math.cos(math.pi * i / 8)), 0.3 - 0.12 * math.sin(math.pi * i / 8)) for i in range(9)]
         + [(0.7 - 0.4 * i / 6, 0.3 + 0.5 * i / 6) for i in range(1, 7)] + [(0.3 + 0.42 * i / 5, 0.8) for i in range(1, 6)],
}


# The page's own measures (js/try.js): the whole, then its three parts.
PARTS = {
    "stroke-to-answers": "page: stroke end to answers shown",
    "stroke-encode-and-wait": "  of which: PNG encoding (and any wait for a request in flight)",
    "stroke-request": "  of which: the request, until its JSON is parsed",
    "stroke-render": "  of which: drawing the answers, until the frame that shows them",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": statistics.median(values), "p95": percentile(values, 95),
            "mean": statistics.fmean(values), "min": min(values), "max": max(values)}


def classify(url: str, base: str) -> str:
    path = url.removeprefix(base)
    if path == "/models":
        return "try: API (GET /models)"
    if path.startswith("/models") or path.endswith(("mistakes.png", "mistakes.json")):
        return "explore: data (cards, comparison, sprite)"
    return "try: page (HTML, CSS, JS, icon)"


def measure_weight(browser: Any, base: str) -> dict[str, Any]:
    """Every response of a first visit to / and then #explore, by group; sizes uncompressed and gzipped."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    responses: list[Any] = []
    page.on("response", lambda response: responses.append(response))
    page.goto(base + "/", wait_until="networkidle")
    page.locator("#answers .answer").first.wait_for()
    page.goto(base + "/#explore")
    page.locator("#experiment .mistakes .thumb").first.wait_for()
    page.wait_for_load_state("networkidle")
    files = []
    for response in responses:
        if not response.url.startswith(base) or response.request.method != "GET":
            continue
        body = response.body()
        files.append({"url": response.url.removeprefix(base), "group": classify(response.url, base),
                      "bytes": len(body), "gzip_bytes": len(gzip.compress(body, 6))})
    context.close()
    groups: dict[str, dict[str, int]] = {}
    for entry in files:
        group = groups.setdefault(entry["group"], {"files": 0, "bytes": 0, "gzip_bytes": 0})
        group["files"] += 1
        group["bytes"] += entry["bytes"]
        group["gzip_bytes"] += entry["gzip_bytes"]
    return {"files": files, "groups": groups}


def draw(page: Any, stroke: Stroke) -> None:
    box = page.locator("#pad").bounding_box()
    points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
    page.mouse.move(*points[0])
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*point)
    page.mouse.up()


def settled(page: Any) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#answers")).to_have_attribute("aria-busy", "false", timeout=30_000)


def measure_strokes(browser: Any, base: str, strokes: int) -> dict[str, Any]:
    """Draw `strokes` strokes, each on a cleared pad; the page's stroke-to-answers times and the PNGs sent."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    posts: list[float] = []
    page.on("request", lambda r: posts.append(time.monotonic()) if r.method == "POST" else None)
    page.goto(base + "/")
    page.locator("#answers .answer").first.wait_for()
    names = list(STROKES)
    parts: dict[str, list[float]] = {name: [] for name in PARTS}
    requests_per_stroke: list[int] = []
    pngs: list[bytes] = []
    models_shown: set[int] = set()
    for i in range(strokes):
        if i:
            page.get_by_role("button", name="Clear").click()
            settled(page)
        before = len(posts)
        draw(page, STROKES[names[i % len(names)]])
        settled(page)
        for name in PARTS:
            entries = page.evaluate(f"performance.getEntriesByName('{name}').map(e => e.duration)")
            parts[name].append(float(entries[-1]))
        requests_per_stroke.append(len(posts) - before)
        models_shown.add(page.locator(".answer.has-answer").count())
        if i < len(names):
            data_url = page.evaluate("document.getElementById('pad').toDataURL('image/png')")
            pngs.append(base64.b64decode(data_url.split(",", 1)[1]))
    context.close()
    return {"parts_ms": parts, "requests_per_stroke": requests_per_stroke, "pngs": pngs,
            "models_shown": sorted(models_shown)}


def measure_floor(base: str, pngs: list[bytes], samples: int) -> dict[str, Any]:
    """The same PNGs posted from Python: the round trip to all answers without the browser."""
    times: list[float] = []
    server_ms: list[float] = []
    for i in range(samples):
        started = time.perf_counter()
        status, body = http_request(base + "/models/compare?explain=true", method="POST", body=pngs[i % len(pngs)],
                                    content_type="image/png")
        times.append((time.perf_counter() - started) * 1000)
        assert status == 200, body[:200]
        answer = json.loads(body)
        first = answer["predictions"][0]["timings"]
        server_ms.append(first["preprocess_ms"] + sum(p["timings"]["inference_ms"] for p in answer["predictions"]))
    return {"round_trip_ms": times, "server_work_ms": server_ms}


def kb(n: float) -> str:
    return f"{n / 1024:,.1f} KB"


def write_report(out: Path, result: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    weight = result["weight"]["groups"]
    page_only = weight.get("try: page (HTML, CSS, JS, icon)", {"bytes": 0, "gzip_bytes": 0, "files": 0})
    stroke = result["stroke_to_answers_ms"]
    floor = result["python_round_trip_ms"]
    work = result["server_work_ms"]
    lines = [
        "# Web page benchmark",
        "",
        f"{result['date']}, commit {result['commit']}, {result['machine']} (load average {result['load_average_before_after'][0][0]} "
        f"before, {result['load_average_before_after'][1][0]} after); chromium {result['chromium']}, headless; "
        f"the service with 1 worker and {result['ready_models']} ready models.",
        "",
        "## Page weight (first visit, as served: uncompressed; gzip -6 for reference)",
        "",
        "| what | files | bytes | gzip |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, group in sorted(weight.items()):
        lines.append(f"| {name} | {group['files']} | {kb(group['bytes'])} | {kb(group['gzip_bytes'])} |")
    lines += [
        "",
        f"HTML + JS + CSS (+ the icon) of the page: **{kb(page_only['bytes'])}** against the target of 250 KB "
        "uncompressed. There is no charting library: the charts are the page's own SVG code (`js/charts.js`, "
        "included in that figure).",
        "",
        "| file | bytes |",
        "| --- | ---: |",
    ]
    lines += [f"| `{f['url']}` | {f['bytes']:,} |" for f in result["weight"]["files"]]
    lines += [
        "",
        "## End of a stroke to every answer shown",
        "",
        f"{stroke['n']} strokes drawn with the mouse, each on a cleared pad; the page's `stroke-to-answers` measure "
        "(`pointerup` to the animation frame that shows all answers). In the same run, the same PNGs posted "
        "from Python to `POST /models/compare?explain=true` (the round trip without a browser).",
        "",
        "| measure | p50 | p95 | mean | min | max |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    rows = [(PARTS[name], result["stroke_parts_ms"][name]) for name in PARTS]
    rows += [("Python: the same PNGs, POST round trip", floor), ("server: preprocessing + every model's inference", work)]
    for label, s in rows:
        lines.append(f"| {label} | {s['p50']:.1f} ms | {s['p95']:.1f} ms | {s['mean']:.1f} ms | {s['min']:.1f} ms | "
                     f"{s['max']:.1f} ms |")
    lines += [
        "",
        f"Target: < 150 ms with six models; here {result['ready_models']} models answer each request. "
        f"p95 {stroke['p95']:.1f} ms: **{'met' if stroke['p95'] < 150 else 'missed'}** "
        f"(p50 {stroke['p50']:.1f} ms; the page adds {stroke['p50'] - floor['p50']:.1f} ms at the median over "
        f"the Python round trip: PNG encoding, fetch, JSON parsing, the DOM update and the wait for the next frame).",
        f"Requests per stroke: {dict(sorted(result['requests_per_stroke'].items()))} (more than one means a "
        "debounced request was sent while drawing and the last one waited for it; the measure includes the wait).",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=REPO / "model_store")
    parser.add_argument("--strokes", type=int, default=40)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "page")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("needs Debian's chromium: apt-get install -y chromium")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,  # noqa: S607
                            check=False).stdout.strip()
    load_before = [round(x, 2) for x in os.getloadavg()]
    with RunningServer(server_spec("service", 1, args.store), REPO / "bench" / "results" / "logs") as server, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        _, models_body = http_request(server.base_url + "/models")
        ready = sum(m["state"] == "ready" for m in json.loads(models_body)["models"])
        weight = measure_weight(browser, server.base_url)
        strokes = measure_strokes(browser, server.base_url, args.strokes)
        floor = measure_floor(server.base_url, strokes["pngs"], args.strokes)
        version = browser.version
        browser.close()
    counts: dict[str, int] = {}
    for n in strokes["requests_per_stroke"]:
        counts[str(n)] = counts.get(str(n), 0) + 1
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": commit,
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        # Other work on the machine shares its cores: the load average says how busy it was.
        "load_average_before_after": [load_before, [round(x, 2) for x in os.getloadavg()]],
        "chromium": version,
        "ready_models": ready,
        "models_shown_per_answer": strokes["models_shown"],
        "weight": weight,
        "stroke_to_answers_ms": summary(strokes["parts_ms"]["stroke-to-answers"]),
        "stroke_parts_ms": {name: summary(values) for name, values in strokes["parts_ms"].items()},
        "stroke_to_answers_samples_ms": strokes["parts_ms"]["stroke-to-answers"],
        "python_round_trip_ms": summary(floor["round_trip_ms"]),
        "server_work_ms": summary(floor["server_work_ms"]),
        "requests_per_stroke": counts,
    }
    write_report(args.out, result)
    print((args.out / "report.md").read_text())


if __name__ == "__main__":
    main()
