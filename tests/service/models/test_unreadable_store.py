"""A store, or one model's directory, that the server may not read: reported, never a 500.

Before (issue 9): an unreadable model directory failed the start-up with a traceback, and an
unreadable store root answered 500 on `/admin/reload` and left an unhandled task on SIGHUP.

The suite runs as root in CI, where permissions do not stop reads, so the denial is injected at
`Path.iterdir` (where the listing fails for a real unreadable directory); where the tests run
unprivileged, one test also takes the permission away for real.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from digit_contract.store import scan_store
from service.errors import StoreUnavailable
from tests.factories import bar_digit, encode

TOKEN = "reload-token-" + "u" * 20
AUTH = {"authorization": f"Bearer {TOKEN}"}
DIGIT = encode(bar_digit(120))


@contextmanager
def unreadable(monkeypatch: pytest.MonkeyPatch, directory: Path) -> Iterator[None]:
    """Make listing `directory` fail as it does without read permission (EACCES)."""
    real = pathlib.Path.iterdir

    def iterdir(self: Path) -> Iterator[Path]:
        if self.resolve() == directory.resolve():
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    with monkeypatch.context() as patch:
        patch.setattr(pathlib.Path, "iterdir", iterdir)
        yield


def test_an_unreadable_model_directory_is_a_failed_model_and_the_rest_serve(
        app_factory: Callable[..., FastAPI], copy_store: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    store = copy_store("cnn", "mlp")
    with unreadable(monkeypatch, store / "mlp"), TestClient(app_factory(model_store=store)) as client:
        models = {m["name"]: m for m in client.get("/models").json()["models"]}
        readiness = client.get("/health/ready")
        answer = client.post("/predict?model=cnn", content=DIGIT, headers={"content-type": "image/png"})
        refused = client.post("/predict?model=mlp", content=DIGIT, headers={"content-type": "image/png"})
    assert models["mlp"]["state"] == "failed"
    assert models["mlp"]["reason"] == "the model directory cannot be read (Permission denied)"
    assert models["cnn"]["state"] == "ready" and answer.status_code == 200
    assert readiness.status_code == 200 and readiness.json()["status"] == "degraded"
    assert refused.status_code == 503 and "cannot be read" in refused.text


def test_an_unreadable_store_root_refuses_to_start_with_the_reason(
        app_factory: Callable[..., FastAPI], copy_store: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    store = copy_store("cnn")
    with unreadable(monkeypatch, store), pytest.raises(StoreUnavailable, match="cannot be read"), \
            TestClient(app_factory(model_store=store)):
        pass


def test_reload_of_an_unreadable_store_root_is_409_and_keeps_serving(
        app_factory: Callable[..., FastAPI], copy_store: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    store = copy_store("cnn")
    with TestClient(app_factory(model_store=store, admin_token=TOKEN)) as client:
        with unreadable(monkeypatch, store):
            response = client.post("/admin/reload", headers=AUTH)
        assert client.post("/predict?model=cnn", content=DIGIT, headers={"content-type": "image/png"}
                           ).status_code == 200
    assert response.status_code == 409
    assert response.json() == {"error": "reload failed: the model store cannot be read (Permission denied); "
                                        "the previous models keep serving"}


def test_a_reload_by_signal_of_an_unreadable_store_leaves_no_unhandled_task(
        app_factory: Callable[..., FastAPI], copy_store: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    app = app_factory(model_store=copy_store("cnn"))
    with TestClient(app) as client:
        reloader = app.state.reloader
        with unreadable(monkeypatch, reloader.registry.store):
            # What SIGHUP schedules; an exception escaping it would be an unhandled task error.
            client.portal.call(reloader._reload_logged)  # type: ignore[union-attr]
        metrics = client.get("/metrics").text
    assert 'digits_store_reloads_total{outcome="failed",trigger="signal"} 1.0' in metrics


def test_a_store_path_is_never_echoed_even_with_spaces(
        app_factory: Callable[..., FastAPI], copy_store: Callable[..., Path], tmp_path: Path) -> None:
    spaced = tmp_path / "a store with spaces; secret-name"
    copy_store("cnn").rename(spaced)
    with TestClient(app_factory(model_store=spaced, admin_token=TOKEN)) as client:
        spaced.rename(tmp_path / "gone")
        response = client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 409
    for fragment in ("spaces", "secret-name", str(tmp_path)):
        assert fragment not in response.text


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every directory: the injected denial above covers it")
def test_a_really_unreadable_model_directory_is_a_failed_model(copy_store: Callable[..., Path]) -> None:
    store = copy_store("cnn", "mlp")
    (store / "mlp").chmod(0)
    try:
        listing = scan_store(store)
    finally:
        (store / "mlp").chmod(0o755)
    assert listing.unreadable == {"mlp": "Permission denied"} and "cnn" in listing.versions


def test_scan_store_lists_versions_and_unreadable_directories(copy_store: Callable[..., Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store = copy_store("cnn", "mlp")
    with unreadable(monkeypatch, store / "cnn"):
        listing = scan_store(store)
    assert listing.versions == {"mlp": [1]} and listing.unreadable == {"cnn": "Permission denied"}
