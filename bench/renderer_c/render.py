"""Render the conditions to files and a labels.jsonl beside them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .conditions import CONDITIONS, Condition


def select(only: list[str] | None) -> list[tuple[int, Condition, int]]:
    """(condition index, condition, offset) for the chosen conditions.

    The offset is the running count over the whole table, so every upload draws its own source
    digit whichever subset is rendered.
    """
    out, offset = [], 0
    for i, c in enumerate(CONDITIONS):
        if not only or c.name in only:
            out.append((i, c, offset))
        offset += c.count
    return out


def render_all(out: Path, seed: int, limit: int | None, only: list[str] | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    total = 0
    size = 0
    with (out / "labels.jsonl").open("w") as labels:
        for ci, cond, offset in select(only):
            (out / cond.name).mkdir(exist_ok=True)
            t1 = time.monotonic()
            n = min(cond.count, limit) if limit else cond.count
            for k in range(n):
                rng = np.random.default_rng([seed, ci, k])
                data, ext, expected, source, meta = cond.make(rng, offset + k, seed)
                rel = f"{cond.name}/{cond.name}_{k:03d}.{ext}"
                (out / rel).write_bytes(data)
                size += len(data)
                row = {"file": rel, "condition": cond.name, "expected": expected, "source": source,
                       "kind": cond.kind, "family": cond.family, "source_set": cond.source, "meta": meta}
                labels.write(json.dumps(row, default=_plain) + "\n")
            total += n
            print(f"{cond.name:32s} {n:4d} uploads {time.monotonic() - t1:6.1f} s", flush=True)
    print(f"{total} uploads, {size / 1e6:.0f} MB, {time.monotonic() - t0:.0f} s -> {out}")


def _plain(x: object) -> object:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, tuple):
        return list(x)
    return str(x)
