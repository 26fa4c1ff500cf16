"""Triton's model-configuration, statistics and model-repository extensions, driven by tritonclient
over HTTP and gRPC on a live server (with an admin token, on a copy of the store), and what
perf_analyzer's defaults send: both optional inputs, random bytes as FP32."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeAlias

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2
from tritonclient.utils import InferenceServerException

from bench.toolkit import free_port
from service.inference_protocol.triton_config import CONFIG_FILE
from tests.service.live_server import live_server
from training.data import RawSplit

from .conftest import MODEL, ProtocolServer, as_model_input

TOKEN = "extensions-test-token"  # noqa: S105 (a test server's token)
SPARE = "mlp_noise"
"""The model the repository tests unload and load again (not a default)."""

Client: TypeAlias = httpclient.InferenceServerClient | grpcclient.InferenceServerClient


@pytest.fixture(scope="module")
def server(oip_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProtocolServer]:
    store = tmp_path_factory.mktemp("ext") / "store"
    shutil.copytree(oip_store, store)
    grpc_port = free_port()
    with live_server(store, grpc_port=str(grpc_port), admin_token=TOKEN) as running:
        yield ProtocolServer(running, grpc_port)


@pytest.fixture(params=["http", "grpc"])
def client(request: pytest.FixtureRequest, server: ProtocolServer) -> Client:
    return server.http() if request.param == "http" else server.grpc()


def _json(client: Client, answer: Any) -> Any:
    """tritonclient's HTTP client answers JSON, its gRPC client messages: both as Triton's JSON."""
    if isinstance(client, grpcclient.InferenceServerClient):
        return json_format.MessageToDict(answer, preserving_proto_field_name=True)
    return answer


def _index(client: Client) -> list[dict[str, str]]:
    index = _json(client, client.get_model_repository_index())
    models: list[dict[str, str]] = index["models"] if isinstance(client, grpcclient.InferenceServerClient) else index
    return models


def _config(client: Client, name: str) -> dict[str, Any]:
    answer = client.get_model_config(name)
    document = _json(client, answer)
    return document["config"] if isinstance(client, grpcclient.InferenceServerClient) else document


def _infer(client: Client, images: np.ndarray, model: str = MODEL) -> Any:
    module = grpcclient if isinstance(client, grpcclient.InferenceServerClient) else httpclient
    tensor = module.InferInput("image", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images)
    return client.infer(model, [tensor])


def test_server_metadata_lists_the_extensions(client: Client) -> None:
    extensions = set(_json(client, client.get_server_metadata())["extensions"])
    assert {"model_configuration", "statistics", "model_repository"} <= extensions


def test_model_config_is_the_stores_with_optional_inputs(client: Client, oip_store: Path) -> None:
    config = _config(client, MODEL)
    parsed = json_format.ParseDict(config, model_config_pb2.ModelConfig())  # Triton's own message
    stored = text_format.Parse((oip_store / MODEL / CONFIG_FILE).read_text(), model_config_pb2.ModelConfig())
    # The tensor, the output, the batch limit and the batcher are the config.pbtxt's ...
    assert parsed.input[0].name == stored.input[0].name == "image"
    assert list(parsed.input[0].dims) == list(stored.input[0].dims) == [28, 28, 1]
    assert parsed.output == stored.output
    assert parsed.max_batch_size == stored.max_batch_size
    assert parsed.dynamic_batching == stored.dynamic_batching
    assert parsed.platform == stored.platform
    # ... and this server's image files are a second input; a request sends either, so both are optional.
    assert [(i.name, model_config_pb2.DataType.Name(i.data_type), list(i.dims), i.optional) for i in parsed.input] == [
        ("image", "TYPE_FP32", [28, 28, 1], True), ("image_file", "TYPE_STRING", [1], True)]


def test_model_config_of_an_unknown_model_is_not_found(server: ProtocolServer) -> None:
    with pytest.raises(InferenceServerException) as http_error:
        server.http().get_model_config("no_such_model")
    assert "no model 'no_such_model'" in str(http_error.value)
    with pytest.raises(InferenceServerException) as grpc_error:
        server.grpc().get_model_config("no_such_model")
    assert grpc_error.value.status() == "StatusCode.NOT_FOUND"


def _stats(client: Client, name: str) -> dict[str, Any]:
    (entry,) = _json(client, client.get_inference_statistics(name))["model_stats"]
    assert isinstance(entry, dict)
    return entry


def _count(entry: dict[str, Any], key: str) -> int:
    return int(entry["inference_stats"][key].get("count", 0))


def test_statistics_count_successes_images_and_failures(client: Client, digits: RawSplit) -> None:
    before = _stats(client, "cnn")
    _infer(client, as_model_input(digits.images[:5]), "cnn")
    with pytest.raises(InferenceServerException):
        _infer(client, np.zeros((2, 27, 28, 1), np.float32), "cnn")  # wrong shape: a failed request
    after = _stats(client, "cnn")
    assert (after["name"], after["version"]) == ("cnn", "1")
    assert _count(after, "success") == _count(before, "success") + 1
    assert _count(after, "fail") == _count(before, "fail") + 1
    assert int(after["inference_count"]) == int(before.get("inference_count", 0)) + 5
    assert int(after["execution_count"]) == int(before.get("execution_count", 0)) + 1
    for phase in ("success", "compute_infer"):
        assert int(after["inference_stats"][phase]["ns"]) > int(before["inference_stats"][phase].get("ns", 0))
    assert int(after["last_inference"]) > 0


def test_statistics_of_every_model(server: ProtocolServer) -> None:
    stats = server.http().get_inference_statistics()["model_stats"]
    assert {entry["name"] for entry in stats} == {"cnn", "cnn_augmented", "cnn_dropout", "cnn_noise", "mlp",
                                                  "mlp_dropout", "mlp_noise"}


def test_repository_index_lists_the_store(client: Client) -> None:
    assert {(m["name"], m["version"], m["state"]) for m in _index(client)} >= {(MODEL, "1", "READY"), ("cnn", "1", "READY")}


@pytest.mark.parametrize("headers", [None, {"authorization": "Bearer wrong"}], ids=["no token", "wrong token"])
def test_load_and_unload_need_the_admin_token(client: Client, headers: dict[str, str] | None) -> None:
    for call in (client.unload_model, client.load_model):
        with pytest.raises(InferenceServerException) as error:
            call(SPARE, headers=headers)
        assert ("admin token" in str(error.value)), error.value
    assert client.is_model_ready(SPARE)


def test_unload_then_load_without_a_restart(client: Client, digits: RawSplit) -> None:
    auth = {"authorization": f"Bearer {TOKEN}"}  # lower case: gRPC metadata keys must be
    client.unload_model(SPARE, headers=auth)
    with pytest.raises(InferenceServerException, match="no model 'mlp_noise'"):
        _infer(client, as_model_input(digits.images[:1]), SPARE)
    entry = next(m for m in _index(client) if m["name"] == SPARE)
    assert {"name": SPARE, "state": "UNAVAILABLE", "reason": "unloaded"}.items() <= entry.items()
    client.load_model(SPARE, headers=auth)
    assert client.is_model_ready(SPARE)
    assert _infer(client, as_model_input(digits.images[:1]), SPARE).as_numpy("probabilities").shape == (1, 10)


def test_grpc_unknown_model_is_not_found_before_its_input_is_read(server: ProtocolServer) -> None:
    tensor = grpcclient.InferInput("image", [1, 3], "FP32")  # also the wrong shape: the model is looked up first
    tensor.set_data_from_numpy(np.zeros((1, 3), np.float32))
    with pytest.raises(InferenceServerException) as error:
        server.grpc().infer("no_such_model", [tensor])
    assert error.value.status() == "StatusCode.NOT_FOUND"
    assert "no model 'no_such_model'" in str(error.value)


def test_head_health_live(server: ProtocolServer) -> None:
    answer = httpx.head(f"{server.base_url}/health/live")
    assert answer.status_code == 200
    assert answer.content == b""


def test_what_perf_analyzer_sends_by_default_is_answered(client: Client) -> None:
    """perf_analyzer fills every input of the configuration with random bytes: FP32 `image` then holds
    NaN, infinities and huge values, `image_file` random strings. The tensor passes through (as Triton
    passes tensors), `image` is what is answered, and the answer is well formed."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(64, 28, 28, 1, 4), dtype=np.uint8).view(np.float32)[..., 0]
    assert not np.isfinite(images).all()
    module = grpcclient if isinstance(client, grpcclient.InferenceServerClient) else httpclient
    image = module.InferInput("image", list(images.shape), "FP32")
    image.set_data_from_numpy(images)
    files = module.InferInput("image_file", [64, 1], "BYTES")
    files.set_data_from_numpy(np.array([[b"random string"]] * 64, dtype=np.object_))
    outputs = [module.InferRequestedOutput("probabilities"), module.InferRequestedOutput("digit")]
    result = client.infer(MODEL, [image, files], outputs=outputs)
    assert result.as_numpy("probabilities").shape == (64, 10)
    assert result.as_numpy("digit").shape == (64,)


def test_values_outside_the_training_range_pass_through(server: ProtocolServer, digits: RawSplit) -> None:
    images = as_model_input(digits.images[:3])
    scaled = _infer(server.http(), images * 255).as_numpy("probabilities")  # 0-255 instead of 0-1: not refused
    assert scaled.shape == (3, 10)
    assert np.isfinite(scaled).all()
