"""The front end is shared by the service, the trainers and the evaluation, so it imports none of them."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import digit_frontend

FORBIDDEN = {"service", "training", "bench", "fastapi", "starlette", "tensorflow"}


def _top_level_modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout  # noqa: S603
    return {name.split(".")[0] for name in out.split()}


def test_the_front_end_imports_neither_service_nor_training_nor_bench() -> None:
    modules = [f"digit_frontend.{info.name}" for info in pkgutil.iter_modules(digit_frontend.__path__)]
    assert "digit_frontend.pipeline" in modules and "digit_frontend.decode" in modules
    assert not _top_level_modules_after(f"import {', '.join(modules)}") & FORBIDDEN


def test_the_check_above_can_fail() -> None:
    assert "service" in _top_level_modules_after("import service.errors")
