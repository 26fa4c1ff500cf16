"""Domain code does not import the web framework: the errors carry their status as data, and only
the routes (`service.routes.errors`) turn them into HTTP answers."""

from __future__ import annotations

import subprocess
import sys

import pytest

WEB_FRAMEWORKS = {"fastapi", "starlette", "uvicorn"}

# The modules below the routes: errors, per-request input, models and their sessions, the data plane.
DOMAIN_MODULES = (
    "service.errors",
    "digit_frontend.pipeline",
    "digit_frontend.structure",
    "service.sessions",
    "service.model_checks",
    "service.registry",
    "service.versions",
    "service.batching",
    "service.comparison",
    "service.dataplane",
    "service.reloader",
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
    assert {"fastapi", "starlette"} <= _top_level_modules_after("import service.routes.errors")


def test_every_domain_error_carries_a_plain_int_status() -> None:
    from digit_contract import errors as contract_errors
    from service import errors

    namespaces = {**vars(contract_errors), **vars(errors)}
    classes = [c for c in namespaces.values() if isinstance(c, type) and issubclass(c, errors.ServiceError)]
    assert len(classes) > 10
    for error in classes:
        assert type(error.status_code) is int and 400 <= error.status_code <= 599, error
