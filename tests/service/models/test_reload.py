"""Reloading the store without a restart: the admin endpoint, its token, and what a reload does.

New versions are picked up; the swap is atomic (requests in flight finish on the session they
started with, none fails); a version that fails to load leaves the previous one serving; a store
that cannot be loaded at all leaves everything as it was. SIGHUP is tested on a real server in
test_server_lifecycle.py.
"""

from __future__ import annotations

import gc
import shutil
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from digit_contract.store import latest_version, version_dir
from service.models.sessions import InferenceSessionLike, ProviderPlan, create_onnx_session
from service.settings import Settings
from tests.factories import bar_digit, encode
from tests.service.conftest import edit_card, model_files

TOKEN = "reload-token-" + "r" * 20
AUTH = {"authorization": f"Bearer {TOKEN}"}
DIGIT = encode(bar_digit(120))
PNG = {"content-type": "image/png"}


def publish_copy(store: Path, name: str) -> int:
    """Publish the latest version of `name` again as the next version (same model, new card version)."""
    current = latest_version(store, name)
    assert current is not None
    target = version_dir(store, name, current + 1)
    shutil.copytree(version_dir(store, name, current), target)
    edit_card(target / "card.json", version=current + 1)
    return current + 1


def publish_broken(store: Path, name: str) -> int:
    """Publish a next version of `name` whose card is missing."""
    version = publish_copy(store, name)
    (version_dir(store, name, version) / "card.json").unlink()
    return version


def predict_version(client: TestClient, model: str = "mlp") -> int:
    response = client.post(f"/predict?model={model}", content=DIGIT, headers=PNG)
    assert response.status_code == 200, response.text
    version: int = response.json()["version"]
    return version


# -- the admin endpoint and its token ----------------------------------------------------------


def test_without_a_token_the_admin_endpoints_do_not_exist(app_factory: Callable[..., FastAPI]) -> None:
    for token in (None, "", "  "):
        with TestClient(app_factory(admin_token=token)) as client:
            response = client.post("/admin/reload", headers={"authorization": f"Bearer {token}"})
            assert (response.status_code, response.json()) == (404, {"error": "no such endpoint"})
            assert not any(path.startswith("/admin") for path in client.get("/openapi.json").json()["paths"])


@pytest.mark.parametrize(
    ("headers", "status", "body"),
    [
        ({}, 401, {"error": "this endpoint needs the header `Authorization: Bearer <admin token>`"}),
        ({"authorization": f"Basic {TOKEN}"}, 401,
         {"error": "this endpoint needs the header `Authorization: Bearer <admin token>`"}),
        ({"authorization": "Bearer"}, 401, {"error": "this endpoint needs the header `Authorization: Bearer <admin token>`"}),
        ({"authorization": "Bearer wrong"}, 403, {"error": "the admin token is wrong"}),
        ({"authorization": f"Bearer {TOKEN}x"}, 403, {"error": "the admin token is wrong"}),
        ({"authorization": f"Bearer {TOKEN[:-1]}"}, 403, {"error": "the admin token is wrong"}),
    ],
    ids=["no-header", "basic", "empty-bearer", "wrong", "longer", "prefix"],
)
def test_a_missing_or_wrong_token_is_refused(app_factory: Callable[..., FastAPI], headers: dict[str, str],
                                            status: int, body: dict[str, str]) -> None:
    with TestClient(app_factory(admin_token=TOKEN)) as client:
        response = client.post("/admin/reload", headers=headers)
        assert (response.status_code, response.json()) == (status, body)
        if status == 401:
            assert response.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in response.text
        metrics = client.get("/metrics").text
    assert "digits_store_reloads_total{" not in metrics  # nothing was reloaded


def test_the_admin_endpoint_is_documented_with_its_security_scheme(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory(admin_token=TOKEN)) as client:
        schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/admin/reload"]["post"]
    assert set(operation["responses"]) == {"200", "401", "403", "409", "default"}
    assert operation["security"] == [{"HTTPBearer": []}]
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": "The value of DIGITS_ADMIN_TOKEN."}


def test_the_token_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGITS_ADMIN_TOKEN", TOKEN)
    assert TOKEN not in repr(Settings()) and TOKEN not in str(Settings().model_dump())


# -- what a reload does ------------------------------------------------------------------------


def test_a_new_version_is_picked_up(app_factory: Callable[..., FastAPI], copy_store: Callable[..., Path]) -> None:
    store = copy_store("cnn", "mlp")
    with TestClient(app_factory(model_store=store, admin_token=TOKEN)) as client:
        old = predict_version(client)
        new = publish_copy(store, "mlp")
        response = client.post("/admin/reload", headers=AUTH)
        assert response.status_code == 200
        report = response.json()
        assert report["default_model"] == client.get("/models").json()["default_model"]
        assert report["seconds"] > 0
        assert report["models"] == [
            {"name": "cnn", "change": "reloaded", "version": latest_version(store, "cnn"),
             "previous_version": latest_version(store, "cnn"), "state": "ready", "reason": None},
            {"name": "mlp", "change": "updated", "version": new, "previous_version": old, "state": "ready",
             "reason": None},
        ]
        assert predict_version(client) == new
        assert client.get("/models/mlp").json()["version"] == new
        metrics = client.get("/metrics").text
    assert f'digits_model_info{{model="mlp",providers="CPUExecutionProvider",version="{new}"}} 1.0' in metrics
    assert f'digits_model_info{{model="mlp",providers="CPUExecutionProvider",version="{old}"}} 0.0' in metrics
    assert 'digits_store_reloads_total{outcome="succeeded",trigger="admin"} 1.0' in metrics


def test_the_sessions_a_reload_replaced_are_freed(app_factory: Callable[..., FastAPI],
                                                 copy_store: Callable[..., Path]) -> None:
    # The app's lifespan held the first load's models for as long as the app ran, so the first
    # reload left every session of the start-up alive (~36 MB on the committed store).
    store = copy_store("cnn", "mlp")
    app = app_factory(model_store=store, admin_token=TOKEN)
    with TestClient(app) as client:
        first = [weakref.ref(model.session) for model in app.state.registry.models.values()]
        assert client.post("/admin/reload", headers=AUTH).status_code == 200
        gc.collect()
        assert [ref() for ref in first] == [None] * len(first)


def test_models_added_to_and_removed_from_the_store(app_factory: Callable[..., FastAPI],
                                                     copy_store: Callable[..., Path], store: Path) -> None:
    target = copy_store("cnn", "mlp")
    with TestClient(app_factory(model_store=target, admin_token=TOKEN)) as client:
        shutil.rmtree(target / "mlp")
        version = latest_version(store, "cnn_noise")
        assert version is not None
        shutil.copytree(version_dir(store, "cnn_noise", version), version_dir(target, "cnn_noise", version))
        report = client.post("/admin/reload", headers=AUTH).json()
        changes = {row["name"]: (row["change"], row["version"], row["state"]) for row in report["models"]}
        assert changes == {"cnn": ("reloaded", latest_version(store, "cnn"), "ready"),
                           "cnn_noise": ("added", version, "ready"), "mlp": ("removed", None, None)}
        assert client.post("/predict?model=cnn_noise", content=DIGIT, headers=PNG).status_code == 200
        response = client.post("/predict?model=mlp", content=DIGIT, headers=PNG)
        assert response.status_code == 404
        assert response.json()["available"] == ["cnn", "cnn_noise"]
        metrics = client.get("/metrics").text
    assert 'digits_model_ready{model="mlp"} 0.0' in metrics
    assert 'digits_predictions_total{digit="0",model="cnn_noise"}' in metrics


def test_a_failed_new_version_keeps_the_old_one_serving(app_factory: Callable[..., FastAPI],
                                                         copy_store: Callable[..., Path]) -> None:
    store = copy_store("mlp")
    with TestClient(app_factory(model_store=store, admin_token=TOKEN)) as client:
        old = predict_version(client)
        broken = publish_broken(store, "mlp")
        response = client.post("/admin/reload", headers=AUTH)
        assert response.status_code == 200
        assert response.json()["models"] == [
            {"name": "mlp", "change": "kept", "version": old, "previous_version": old, "state": "ready",
             "reason": f"version {broken} failed: card.json is missing"}]
        assert predict_version(client) == old
        assert client.get("/health/ready").json()["status"] == "ready"


def test_a_store_that_cannot_load_leaves_everything_serving(app_factory: Callable[..., FastAPI],
                                                            copy_store: Callable[..., Path]) -> None:
    store = copy_store("mlp")
    with TestClient(app_factory(model_store=store, admin_token=TOKEN)) as client:
        old = predict_version(client)
        moved = store.with_name("elsewhere")
        store.rename(moved)  # the store directory is gone (an unmounted volume, a typo in a deploy)
        response = client.post("/admin/reload", headers=AUTH)
        assert response.status_code == 409
        assert response.json() == {"error": "reload failed: the model store holds no models; the previous "
                                            "models keep serving"}
        assert predict_version(client) == old
        assert client.get("/health/ready").status_code == 200
        metrics = client.get("/metrics").text
    assert 'digits_store_reloads_total{outcome="failed",trigger="admin"} 1.0' in metrics


# -- atomic swap under concurrency -------------------------------------------------------------


class GatedSession:
    """A real session whose request-time runs can be held at a gate (warm-up runs pass freely)."""

    def __init__(self, real: InferenceSessionLike, gate: Gate) -> None:
        self.real, self.gate = real, gate

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any], run_options: Any = None) -> Sequence[Any]:
        self.gate.pass_through(self)
        return self.real.run(output_names, input_feed, run_options)

    def get_inputs(self) -> Sequence[Any]:
        return self.real.get_inputs()

    def get_outputs(self) -> Sequence[Any]:
        return self.real.get_outputs()

    def get_providers(self) -> list[str]:
        return self.real.get_providers()


class Gate:
    """Once armed, holds every run of the first session built (the old version) until opened."""

    def __init__(self) -> None:
        self.sessions: list[GatedSession] = []
        self.armed = False
        self.waiting = threading.Semaphore(0)
        self.open = threading.Event()

    def factory(self, model: bytes, plan: ProviderPlan, threads: int) -> InferenceSessionLike:
        session = GatedSession(create_onnx_session(model, plan, threads), self)
        self.sessions.append(session)
        return session

    def pass_through(self, session: GatedSession) -> None:
        if self.armed and session is self.sessions[0]:
            self.waiting.release()
            assert self.open.wait(timeout=30), "the gate was never opened"


def test_in_flight_requests_finish_on_the_old_session_while_new_ones_get_the_new(
    app_factory: Callable[..., FastAPI], copy_store: Callable[..., Path]
) -> None:
    store = copy_store("mlp")
    gate = Gate()
    in_flight = 6
    # inline_max_pixels=0: every inference runs in a worker thread, where the gate can hold it
    # without stopping the event loop (a real request in flight is in that thread too); threads
    # enough for the held requests and the new ones.
    with TestClient(app_factory(model_store=store, admin_token=TOKEN, session_factory=gate.factory,
                                inline_max_pixels=0, work_threads=in_flight + 2)) as client, \
            ThreadPoolExecutor(in_flight) as pool:
        old = predict_version(client)
        gate.armed = True
        held = [pool.submit(predict_version, client) for _ in range(in_flight)]
        for _ in range(in_flight):  # every one of them is now inside the old session's run()
            assert gate.waiting.acquire(timeout=30)
        new = publish_copy(store, "mlp")
        report = client.post("/admin/reload", headers=AUTH).json()
        assert report["models"][0]["change"] == "updated"
        assert len(gate.sessions) == 2
        # The new session answers at once, while the old one still holds its requests.
        assert [predict_version(client) for _ in range(3)] == [new] * 3
        assert not any(future.done() for future in held)
        gate.open.set()
        assert [future.result(timeout=30) for future in held] == [old] * in_flight


def test_no_request_fails_while_the_store_is_reloaded_under_load(
    app_factory: Callable[..., FastAPI], copy_store: Callable[..., Path]
) -> None:
    store = copy_store("cnn", "mlp")
    stop = threading.Event()

    def hammer(model: str) -> list[int]:
        statuses = []
        while not stop.is_set():
            statuses.append(client.post(f"/predict?model={model}", content=DIGIT, headers=PNG).status_code)
            statuses.append(client.get("/health/ready").status_code)
        return statuses

    with TestClient(app_factory(model_store=store, admin_token=TOKEN)) as client, ThreadPoolExecutor(4) as pool:
        workers = [pool.submit(hammer, model) for model in ("cnn", "mlp", "cnn", "mlp")]
        reports = []
        for _ in range(3):
            publish_copy(store, "mlp")
            reports.append(client.post("/admin/reload", headers=AUTH))
        stop.set()
        statuses = [status for worker in workers for status in worker.result(timeout=60)]
        final = predict_version(client)
    assert [r.status_code for r in reports] == [200] * 3
    assert final == latest_version(store, "mlp")
    assert len(statuses) > 20 and set(statuses) == {200}


def test_reloads_do_not_overlap(app_factory: Callable[..., FastAPI], copy_store: Callable[..., Path],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    store = copy_store("mlp")
    with TestClient(app_factory(model_store=store, admin_token=TOKEN)) as client, ThreadPoolExecutor(4) as pool:
        registry = client.app.state.registry  # type: ignore[attr-defined]
        active, overlaps = [0], [0]
        load = registry.load

        def counting_load() -> Any:
            active[0] += 1
            overlaps[0] = max(overlaps[0], active[0])
            try:
                return load()
            finally:
                active[0] -= 1

        monkeypatch.setattr(registry, "load", counting_load)
        responses = list(pool.map(lambda _: client.post("/admin/reload", headers=AUTH), range(4)))
    assert [r.status_code for r in responses] == [200] * 4
    assert overlaps[0] == 1


def test_model_files_of_the_old_version_can_go_once_swapped(app_factory: Callable[..., FastAPI],
                                                            copy_store: Callable[..., Path]) -> None:
    # Sessions are built from bytes read at load time: deleting an old version's directory after a
    # reload (a store clean-up) cannot break the requests it still serves, nor the new version.
    store = copy_store("mlp")
    with TestClient(app_factory(model_store=store, admin_token=TOKEN)) as client:
        old = predict_version(client)
        publish_copy(store, "mlp")
        client.post("/admin/reload", headers=AUTH)
        shutil.rmtree(version_dir(store, "mlp", old))
        assert predict_version(client) == old + 1
        assert model_files(store, "mlp")[0].exists()
