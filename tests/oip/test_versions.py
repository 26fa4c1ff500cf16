"""Several versions of a model served at once, by version policy, and routed by `/versions/{v}`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest
from fastapi.testclient import TestClient

from service.server.app import create_app
from tests.factories import bar_digit, encode
from tests.service.conftest import make_settings


@pytest.fixture(scope="module")
def two_versions(oip_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with cnn v1 and v2 (the same network, its card renumbered) and mlp v1."""
    store = tmp_path_factory.mktemp("versions")
    shutil.copytree(oip_store / "cnn" / "1", store / "cnn" / "1")
    shutil.copytree(oip_store / "cnn" / "1", store / "cnn" / "2")
    card = store / "cnn" / "2" / "card.json"
    card.write_text(json.dumps({**json.loads(card.read_text()), "version": 2}))
    shutil.copytree(oip_store / "mlp" / "1", store / "mlp" / "1")
    return store


def client_for(store: Path, policy: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(store, version_policy=policy, warmup_runs=1))) as client:
        yield client


@pytest.fixture(scope="module")
def all_versions(two_versions: Path) -> Iterator[TestClient]:
    yield from client_for(two_versions, "latest:1; cnn=all")


PIXELS = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 28, 28, 1], "data": [0.5] * 784}]}


def test_every_kept_version_is_listed_and_routed(all_versions: TestClient) -> None:
    assert all_versions.get("/v2/models/cnn").json()["versions"] == ["1", "2"]
    assert all_versions.get("/v2/models/mlp").json()["versions"] == ["1"]
    for version in ("1", "2"):
        assert all_versions.get(f"/v2/models/cnn/versions/{version}/ready").json() == {"name": "cnn", "ready": True}
        answer = all_versions.post(f"/v2/models/cnn/versions/{version}/infer", json=PIXELS)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == version
    assert all_versions.post("/v2/models/cnn/infer", json=PIXELS).json()["model_version"] == "2"


def test_image_files_reach_the_named_version(all_versions: TestClient) -> None:
    import base64

    body = {"inputs": [{"name": "image_file", "datatype": "BYTES", "shape": [1], "parameters": {"content_type": "base64"},
                        "data": [base64.b64encode(encode(bar_digit())).decode()]}], "outputs": [{"name": "digit"}]}
    answer = all_versions.post("/v2/models/cnn/versions/1/infer", json=body).json()
    assert (answer["model_version"], answer["outputs"][0]["data"]) == ("1", [1])


def test_the_native_api_keeps_the_latest(all_versions: TestClient) -> None:
    answer = all_versions.post("/predict?model=cnn", files=[("file", ("d.png", encode(bar_digit()), "image/png"))])
    assert answer.json()["version"] == 2
    listed = {m["name"]: m["version"] for m in all_versions.get("/models").json()["models"]}
    assert listed == {"cnn": 2, "mlp": 1}


def test_the_default_policy_loads_the_latest_only(two_versions: Path) -> None:
    for client in client_for(two_versions, "latest:1"):
        assert client.get("/v2/models/cnn").json()["versions"] == ["2"]
        missing = client.post("/v2/models/cnn/versions/1/infer", json=PIXELS)
        assert missing.status_code == 404
        assert missing.json() == {"error": "model 'cnn' has no version '1'; versions: 2", "versions": ["2"]}


def test_a_specific_policy_serves_an_older_version_as_the_current_one(two_versions: Path) -> None:
    for client in client_for(two_versions, "cnn=specific:1"):
        assert client.get("/v2/models/cnn").json()["versions"] == ["1"]
        answer = client.post("/predict?model=cnn", files=[("file", ("d.png", encode(bar_digit()), "image/png"))])
        assert answer.json()["version"] == 1


def test_a_policy_that_selects_nothing_fails_that_model_with_the_reason(two_versions: Path) -> None:
    for client in client_for(two_versions, "cnn=specific:5"):
        ready = client.get("/v2/models/cnn/ready")
        assert ready.status_code == 503
        assert ready.json()["error"] == "model 'cnn' is not ready: the version policy specific:5 selects none of its versions ([1, 2])"
        assert client.get("/v2/models/mlp/ready").status_code == 200


def test_a_malformed_policy_is_refused_at_start_up(two_versions: Path) -> None:
    with pytest.raises(pydantic.ValidationError, match="expected latest:N"):
        make_settings(two_versions, version_policy="newest")
