"""The service on Ray Serve (`service.server.ray_serve`): a local Ray cluster, two replicas, correct answers.

Ray is not in the test environment (`requirements/ci.lock`): this module is marked `ray`, which the
default run deselects, and it is skipped when Ray cannot be imported. `make test-ray` installs
`requirements/ray.lock` into `.venv-ray` and runs it (about a minute on 2 cores: Ray's start-up).
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray", reason="Ray is not installed: `make test-ray` installs requirements/ray.lock")
serve = pytest.importorskip("ray.serve", reason="Ray Serve is not installed: `make test-ray`")
ort = pytest.importorskip("onnxruntime")

from bench.toolkit import free_port  # noqa: E402
from service.server import ray_serve  # noqa: E402
from service.settings import Settings  # noqa: E402
from training.data import TEST_IMAGES, TEST_LABELS, load_split  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SAMPLE_DIR = REPO / "tests" / "data" / "mnist-sample"
MODELS = ("cnn", "mlp")
IMAGES = 64



def post_json(url: str, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(  # noqa: S310 (the loopback proxy's http:// URL)
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two of the committed models: each replica loads the whole store, so fewer is quicker."""
    store = tmp_path_factory.mktemp("store")
    for name in MODELS:
        shutil.copytree(REPO / "model_store" / name, store / name)
    return store


@pytest.fixture(scope="module")
def deployment(small_store: Path) -> Iterator[str]:
    """Two replicas on a local Ray cluster of 2 CPUs; the proxy's base URL."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        settings = Settings(model_store=small_store, port=free_port(), device="cpu", warmup_runs=2,
                            calibrated_probabilities=False)
        yield ray_serve.start(settings, replicas=2)
    finally:
        serve.shutdown()
        ray.shutdown()


def test_two_replicas_are_running(deployment: str) -> None:
    status = serve.status().applications[ray_serve.APP_NAME]
    replicas = status.deployments[ray_serve.DEPLOYMENT_NAME].replica_states
    assert str(status.status).endswith("RUNNING")
    assert replicas.get("RUNNING") == 2, replicas


def test_predictions_through_ray_are_onnx_runtimes_own(deployment: str, small_store: Path) -> None:
    split, _ = load_split(SAMPLE_DIR, TEST_IMAGES, TEST_LABELS)
    pixels = (split.images[:IMAGES] / np.float32(255)).astype(np.float32)
    labels = split.labels[:IMAGES]
    for name in MODELS:
        session = ort.InferenceSession(str(small_store / name / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
        shape = session.get_inputs()[0].shape  # [N, 28, 28, 1] (cnn) or [N, 784] (mlp)
        expected = session.run(None, {"image": pixels.reshape(IMAGES, *shape[1:])})[0]
        # Eight requests of eight images, sent concurrently so that both replicas answer some.
        batches = [pixels[i:i + 8].tolist() for i in range(0, IMAGES, 8)]
        url = f"{deployment}/predict?model={name}"
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda batch, url=url: post_json(url, {"images": batch}), batches))
        assert all(status == 200 for status, _ in answers), answers[:1]
        got = [p for _, body in answers for p in body]
        assert [p["model"] for p in got] == [name] * IMAGES
        assert [p["digit"] for p in got] == expected.argmax(axis=1).tolist()
        np.testing.assert_allclose([p["probabilities"] for p in got], expected, atol=1e-5)
        assert np.mean(np.array([p["digit"] for p in got]) == labels) > 0.9


def test_errors_are_the_services_own(deployment: str) -> None:
    status, body = post_json(f"{deployment}/predict?model=nope", {"images": [[[0.5] * 28] * 28]})
    assert status == 404 and "nope" in body["error"]
    with urllib.request.urlopen(f"{deployment}/health/ready", timeout=30) as response:  # noqa: S310
        assert response.status == 200 and json.loads(response.read())["status"] == "ready"
