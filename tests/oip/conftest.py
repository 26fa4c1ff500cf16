"""Fixtures for the Open Inference Protocol tests: one live server (HTTP and gRPC) for the whole
package, Triton's own clients on it, an in-process app for the error cases, and MNIST digits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from fastapi.testclient import TestClient

from bench.toolkit import free_port
from service.server.app import create_app
from tests.service.conftest import REPO, SAMPLE_DIR, make_settings, seed_store
from tests.service.live_server import LiveServer, live_server
from training.data import TEST_IMAGES, TEST_LABELS, RawSplit, load_split

UPLOADS = REPO / "tests" / "data" / "uploads"
MODEL = "cnn_augmented"
"""The model most tests call (the default for uploads, so /predict and /v2 agree on it)."""


@pytest.fixture(scope="session")
def oip_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seed 000's seven models, as the service tests serve them (tests/service/conftest.py)."""
    return seed_store(tmp_path_factory)


@pytest.fixture(scope="session")
def digits() -> RawSplit:
    """The first 500 MNIST test images (uint8, white on black) and their labels."""
    split, _ = load_split(SAMPLE_DIR, TEST_IMAGES, TEST_LABELS)
    return split


def as_model_input(images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """uint8 digits as the models' FP32 [N, 28, 28, 1] input."""
    return (images.astype(np.float32) / np.float32(255.0))[..., np.newaxis]


class ProtocolServer:
    """A live `python -m service` with the gRPC service on, and clients of both transports."""

    def __init__(self, server: LiveServer, grpc_port: int) -> None:
        self.server = server
        self.base_url = server.base_url
        self.http_url = f"127.0.0.1:{server.port}"
        self.grpc_url = f"127.0.0.1:{grpc_port}"

    def http(self) -> httpclient.InferenceServerClient:
        return httpclient.InferenceServerClient(self.http_url, connection_timeout=30, network_timeout=60)

    def grpc(self) -> grpcclient.InferenceServerClient:
        return grpcclient.InferenceServerClient(self.grpc_url)


@pytest.fixture(scope="session")
def protocol_server(oip_store: Path) -> Iterator[ProtocolServer]:
    """One server for every test of the package that needs a real socket (started once: ~5 s)."""
    grpc_port = free_port()
    # A small body limit, so that the over-the-limit case needs no large body.
    with live_server(oip_store, grpc_port=str(grpc_port), max_upload_bytes=str(4 * 1024 * 1024)) as server:
        yield ProtocolServer(server, grpc_port)


@pytest.fixture(scope="module")
def v2_client(oip_store: Path) -> Iterator[TestClient]:
    """An in-process app on the real store for the request and error cases (no socket needed)."""
    with TestClient(create_app(make_settings(oip_store, max_upload_bytes=1024 * 1024))) as started:
        yield started
