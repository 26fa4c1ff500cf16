"""Domain code does not import the web framework: the errors carry their status as data, and only
the routes (`service.api.error_handlers`) turn them into HTTP answers."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

WEB_FRAMEWORKS = {"fastapi", "starlette", "uvicorn"}

# The modules below the routes: errors, per-request input, models and their sessions, the data plane.
DOMAIN_MODULES = (
    "service.errors",
    "digit_frontend.pipeline",
    "digit_frontend.structure",
    "service.models.sessions",
    "service.models.checks",
    "service.models.registry",
    "service.models.versions",
    "service.inference_protocol.batching",
    "service.inference.comparison",
    "service.inference.dataplane",
    "service.models.reloader",
)


def _top_level_modules_after(statement: str) -> set[str]:
    # A fresh interpreter: the test process has FastAPI loaded already.
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout  # noqa: S603
    return {name.split(".")[0] for name in out.split()}


def test_the_domain_modules_import_no_web_framework() -> None:
    loaded = _top_level_modules_after(f"import {', '.join(DOMAIN_MODULES)}")
    if loaded & WEB_FRAMEWORKS:  # name the culprits (one interpreter each is slow, so only on failure)
        culprits = [m for m in DOMAIN_MODULES if _top_level_modules_after(f"import {m}") & WEB_FRAMEWORKS]
        pytest.fail(f"{', '.join(culprits)} import {', '.join(sorted(loaded & WEB_FRAMEWORKS))}")


def test_the_error_handlers_do_import_it() -> None:
    # The check above can fail: the route layer's module, which maps errors to HTTP, loads FastAPI.
    assert {"fastapi", "starlette"} <= _top_level_modules_after("import service.api.error_handlers")


def test_every_domain_error_carries_a_plain_int_status() -> None:
    from digit_contract import errors as contract_errors
    from service import errors

    namespaces = {**vars(contract_errors), **vars(errors)}
    classes = [c for c in namespaces.values() if isinstance(c, type) and issubclass(c, errors.ServiceError)]
    assert len(classes) > 10
    for error in classes:
        assert type(error.status_code) is int and 400 <= error.status_code <= 599, error


# -- the layers of service/ --------------------------------------------------------------------
# Bottom to top (web: the page's static files). A layer imports from the layers below it and from the shared vocabulary at the
# package's top (settings, errors, schemas), never from a layer above. The two transports, the
# native API and the Open Inference Protocol, sit side by side and share the request readers.
LAYERS = (("web",), ("observability",), ("models",), ("inference",), ("api", "inference_protocol"), ("server",))
SERVICE = Path(__file__).resolve().parents[2] / "service"
# The one import that goes up, with its reason: `service store add` writes Triton's config.pbtxt
# beside the model it adds, in the protocol's words (its input names and batch limit).
ALLOWED_UPWARD = {("service/models/store_add.py", "service.inference_protocol.triton_config")}


def _rank(layer: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if layer in names)


def _service_imports(path: Path) -> list[str]:
    """Modules of `service` that a file imports, at run time (typing-only imports are left out)."""
    tree = ast.parse(path.read_text())
    typing_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and ast.unparse(block.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                   for statement in block.body for node in ast.walk(statement)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and id(node) not in typing_only:
            if node.module == "service":
                found += [f"service.{alias.name}" for alias in node.names]
            elif node.module.startswith("service."):
                found.append(node.module)
    return found


def test_each_layer_imports_only_the_layers_below_it() -> None:
    upward = []
    for path in sorted(SERVICE.rglob("*.py")):
        relative = path.relative_to(SERVICE.parent)
        if len(relative.parts) < 3 or "proto" in relative.parts:
            continue  # the shared vocabulary at the top, and protoc's output
        own = _rank(relative.parts[1])
        for module in _service_imports(path):
            layer = module.split(".")[1]
            below_or_beside = not any(layer in names for names in LAYERS) or _rank(layer) <= own
            if not below_or_beside and (relative.as_posix(), module) not in ALLOWED_UPWARD:
                upward.append(f"{relative} imports {module}")
    assert upward == []


def test_the_shared_vocabulary_imports_no_layer_above_the_models() -> None:
    for name in ("settings.py", "errors.py", "schemas.py"):
        layers = {module.split(".")[1] for module in _service_imports(SERVICE / name)}
        assert layers <= {"observability", "models"}, name


def test_the_layering_check_sees_an_upward_import(tmp_path: Path) -> None:
    # The rule above can fail: a models module that reached for the data plane would be reported.
    module = tmp_path / "registry.py"
    module.write_text("from service.inference.dataplane import DataPlane\n")
    assert _service_imports(module) == ["service.inference.dataplane"]
    assert _rank("inference") > _rank("models")
