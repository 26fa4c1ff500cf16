"""Post every rendered upload to a running service and score the answers.

Digits go to `POST /predict`, numbers to `POST /read`, no-digit uploads to `/predict` (the right
answer is a 422 refusal). One request at a time: latency is the service's, not a queue's.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np

from bench.renderer_d.report import write_report

CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def post_file(url: str, path: Path, timeout: float) -> tuple[int, dict[str, object], float]:
    """Multipart POST of one file in the field `file`; returns status, JSON body and seconds."""
    boundary = uuid.uuid4().hex
    ctype = CONTENT_TYPES.get(path.suffix.lstrip(".").lower(), "application/octet-stream")
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
        f"Content-Type: {ctype}\r\n\r\n"
    ).encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})  # noqa: S310
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the operator names the URL
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    except (urllib.error.URLError, TimeoutError) as err:
        return 0, {"error": str(err)}, time.perf_counter() - start
    elapsed = time.perf_counter() - start
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = {"raw": raw[:200].decode("utf-8", "replace")}
    return status, parsed if isinstance(parsed, dict) else {"body": parsed}, elapsed


def score(row: dict[str, object], status: int, body: dict[str, object]) -> dict[str, object]:
    """Hit or miss for one answer, the answer as text and its confidence."""
    family, expected = row["family"], str(row["expected"])
    conf = body.get("confidence") if status == 200 else None
    confidence = float(conf) if isinstance(conf, (int, float)) else None
    if family == "number":
        text = str(body.get("text", "")) if status == 200 else ""
        got = "".join(ch for ch in text if ch.isdigit())
        out: dict[str, object] = {"answer": got if status == 200 else f"HTTP {status}", "hit": status == 200 and got == expected}
        if status == 200 and len(got) == len(expected):
            out["digits_right"] = sum(a == b for a, b in zip(got, expected, strict=True))
        out["length_delta"] = (len(got) - len(expected)) if status == 200 else None
    elif family == "none":
        answer = body.get("digit") if status == 200 else f"HTTP {status}"
        out = {"answer": str(answer), "hit": status == 422}
    else:
        digit = body.get("digit") if status == 200 else None
        out = {"answer": str(digit) if status == 200 else f"HTTP {status}", "hit": status == 200 and str(digit) == expected}
    out["confidence"] = confidence
    # A confident mistake: a wrong answer, or any answer to a no-digit upload, at >= 0.9.
    out["confident_mistake"] = bool(status == 200 and not out["hit"] and confidence is not None and confidence >= 0.9)
    return out


def pick(rows: list[dict[str, object]], limit: int | None) -> list[dict[str, object]]:
    """All rows, or `limit` of them spread evenly over the set (every kind of upload gets a turn)."""
    if limit is None or limit >= len(rows):
        return rows
    idx = np.unique(np.linspace(0, len(rows) - 1, limit).round().astype(int))
    return [rows[int(i)] for i in idx]


def evaluate(data: Path, out: Path, url: str, limit: int | None, model: str | None, timeout: float) -> dict[str, object]:
    """Score the set in `data` against the service at `url`; writes results.jsonl and the report."""
    rows = [json.loads(line) for line in (data / "labels.jsonl").read_text().splitlines() if line.strip()]
    rows = pick(rows, limit)
    out.mkdir(parents=True, exist_ok=True)
    query = f"?model={model}" if model else ""
    results: list[dict[str, object]] = []
    with open(out / "results.jsonl", "w") as sink:
        for row in rows:
            route = "/read" if row["family"] == "number" else "/predict"
            status, body, seconds = post_file(url.rstrip("/") + route + query, data / str(row["file"]), timeout)
            result = {
                "file": row["file"], "condition": row["condition"], "expected": row["expected"], "source": row["source"],
                "kind": row["kind"], "family": row["family"], "route": route, "status": status,
                "latency_ms": round(seconds * 1000, 1), "body": body, **score(row, status, body),
            }
            if row["family"] == "number":
                result["length"] = len(str(row["expected"]))
            sink.write(json.dumps(result) + "\n")
            results.append(result)
    return write_report(results, data, out, url, model)
