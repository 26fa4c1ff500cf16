"""What a release shows its users: `--version`, the program's name, `GET /version`, the license."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.__main__ import build_parser, package_version
from service.server.app import create_app
from tests.service.conftest import REPO, make_settings


def test_version_flag_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"python -m service {package_version()}"


def test_the_console_script_names_itself() -> None:
    script = Path(sys.executable).parent / "digit-serving"
    if not script.is_file():
        pytest.skip("the package is not installed in this environment (no digit-serving script)")
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True).stdout  # noqa: S603
    assert out.startswith("usage: digit-serving ")
    assert "python -m service" not in out


def test_version_route_matches_the_package(store: Path) -> None:
    with TestClient(create_app(make_settings(store))) as client:
        answer = client.get("/version")
        assert answer.status_code == 200
        assert answer.json() == {"name": "digit-serving", "version": package_version()}
        assert client.get("/v2").json()["version"] == package_version()


def test_the_license_is_the_one_pyproject_names() -> None:
    assert 'license = "MIT"' in (REPO / "pyproject.toml").read_text()
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
