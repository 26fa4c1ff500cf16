"""Smoke test of the soak script (bench/soak.py): a few seconds of its mix against a real server.

The real soak runs minutes at concurrency 64 (see bench/SOAK.md); this proves the script, its mix
and its checks work end to end, and that a short burst of that mix passes them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bench import soak

REPO = Path(__file__).resolve().parents[2]


def test_a_short_soak_passes_every_check(tmp_path: Path) -> None:
    store = Path(os.environ.get("DIGITS_TEST_STORE") or REPO / "model_store")
    code = soak.main(["--store", str(store), "--duration", "3", "--warmup", "1", "--concurrency", "6",
                      "--upload-limit", str(256 * 1024), "--out", str(tmp_path)])
    report = json.loads((tmp_path / "soak.json").read_text())
    assert code == 0, report["checks"]
    assert report["passed"] and all(report["checks"].values())
    kinds = report["kinds"]
    assert {name for name, kind in kinds.items() if kind["requests"] == 0} <= {
        "over_upload_limit_chunked", "over_upload_limit", "long_query", "wrong_field", "too_many_parts"}
    assert report["totals"]["requests"] > 50 and report["totals"]["invalid_requests"] > 0
    assert (tmp_path / "soak.md").read_text().startswith("# Soak test: PASS")


def test_the_mix_expects_a_4xx_for_every_invalid_kind() -> None:
    mix = soak.build_mix(256 * 1024)
    assert all(400 <= kind.status < 500 for kind in mix if not kind.valid)
    assert all(kind.status == 200 for kind in mix if kind.valid)
    valid_share = sum(kind.weight for kind in mix if kind.valid) / sum(kind.weight for kind in mix)
    assert 0.7 < valid_share < 0.9
