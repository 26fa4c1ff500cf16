"""bench.triton without Triton: the section is skipped with its reason, and the table reads its figures.

Offline and quick: Triton itself (.venv-triton, Python 3.12) is started only by `python -m bench`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import triton

STORE = Path(__file__).resolve().parents[2] / "model_store"


def figure(requests_per_s: float, p50_ms: float = 1.0, errors: int = 0) -> dict[str, Any]:
    return {"requests_per_s": requests_per_s, "p50_ms": p50_ms, "errors": errors}


def test_missing_environment_skips_with_the_make_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(triton, "TRITON_VENV", tmp_path / ".venv-triton")
    results = triton.run(STORE, tmp_path, seconds=0.1, rounds=1)
    assert results["skipped"] == ".venv-triton is missing: `make .venv-triton` (Python 3.12, requirements-triton.txt)"
    assert "Skipped: .venv-triton is missing" in triton.render(results)


def test_libpython_found_beside_the_interpreter(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "lib").mkdir()
    python = tmp_path / "bin" / "python"
    python.touch()
    assert triton.libpython_dir(python) is None
    (tmp_path / "lib" / "libpython3.12.so.1.0").touch()
    assert triton.libpython_dir(python) == str(tmp_path / "lib")


def test_table_has_each_transport_and_batch_with_the_ratio() -> None:
    results: dict[str, Any] = {
        "when": "now", "model": "cnn.onnx", "seconds_per_run": 1, "rounds": 1,
        "machine": {"cpus": 2, "load_average_at_start": (1.0, 0, 0), "load_average_at_end": (2.0, 0, 0)},
        "checked_accuracy": {"triton": 1.0, "service": 1.0},
    }
    for transport in ("binary", "json", "grpc"):
        results[transport] = {"triton": {b: figure(100.0) for b in triton.BATCHES},
                              "service": {b: figure(150.0, errors=2) for b in triton.BATCHES}}
    results["binary"]["service_batching"] = {1: figure(50.0)}
    table = triton.render(results)
    assert "| REST V2 binary (wrk) | 1,024 | 4 | 102,400 | 153,600 | 1.50x | 1.00 | 1.00 | 0/2 |" in table
    assert "| gRPC (Python client) | 1 | 6 | 100 | 150 | 1.50x |" in table
    assert "50 images/s, 0.50x Triton" in table


def test_model_file_is_the_latest_version_of_cnn() -> None:
    assert triton.model_file(STORE).name == "model.onnx"
    assert triton.model_file(STORE).parent.parent.name == "cnn"
