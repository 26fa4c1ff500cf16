"""Training and serving are peers over the contract: `training` never imports `service`, and
`digit_contract` imports neither (issue 23). Read from the source, so that an import inside a
function counts as much as one at the top of a module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def imported_packages(package: str) -> dict[str, set[str]]:
    """Per module of `package` (a folder of the repository), the top-level packages it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.partition(".")[0])
        found[str(path.relative_to(REPO))] = names
    return found


def offenders(package: str, forbidden: set[str]) -> list[str]:
    return [f"{module} imports {', '.join(sorted(names & forbidden))}"
            for module, names in imported_packages(package).items() if names & forbidden]


def test_training_never_imports_the_service() -> None:
    assert offenders("training", {"service"}) == []


def test_the_contract_imports_neither_training_nor_the_service() -> None:
    assert offenders("digit_contract", {"service", "training"}) == []


def test_the_scan_sees_a_late_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The rule's own check can fail: an import inside a function is found.
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "late.py").write_text("def f():\n    from service.inference.comparison import compare_models\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert offenders("pkg", {"service"}) == ["pkg/late.py imports service"]


def test_the_training_report_runs_without_the_service_loaded() -> None:
    # What `python -m training report` imports: the zoo's comparison comes from the contract.
    code = "import sys, training.report; print(any(m == 'service' or m.startswith('service.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)  # noqa: S603
    assert out.stdout.strip() == "False"
