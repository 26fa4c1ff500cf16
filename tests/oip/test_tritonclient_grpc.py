"""Triton's own gRPC client (tritonclient.grpc) against the live server's `inference.GRPCInferenceService`:
the same answers as over HTTP, and errors with the matching gRPC status codes."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.factories import encode
from training.data import RawSplit

from .conftest import MODEL, UPLOADS, ProtocolServer, as_model_input


@pytest.fixture(scope="module")
def client(protocol_server: ProtocolServer) -> grpcclient.InferenceServerClient:
    return protocol_server.grpc()


def image_input(images: np.ndarray) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput("image", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images)
    return tensor


def test_health_and_metadata(client: grpcclient.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert client.is_model_ready(MODEL, "1")
    server = client.get_server_metadata(as_json=True)
    assert server["name"] == "digit-serving"
    assert set(server["extensions"]) == {"binary_tensor_data", "classification", "model_configuration", "statistics",
                                         "model_repository"}
    model = client.get_model_metadata(MODEL, as_json=True)
    assert model["versions"] == ["1"]
    assert model["platform"] == "onnx_onnxv1"
    # protobuf's JSON form writes int64 as strings
    assert model["inputs"][0] == {"name": "image", "datatype": "FP32", "shape": ["-1", "28", "28", "1"]}
    assert [t["name"] for t in model["outputs"]] == ["probabilities", "digit"]


@pytest.mark.parametrize("batch", [1, 64, 1024])
def test_batches_give_the_same_answers_as_http(protocol_server: ProtocolServer,
                                               client: grpcclient.InferenceServerClient,
                                               digits: RawSplit, batch: int) -> None:
    images = as_model_input(np.resize(digits.images, (batch, 28, 28)))
    result = client.infer(MODEL, [image_input(images)], request_id="g1")
    assert result.get_response().id == "g1"
    assert result.get_response().model_version == "1"
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (batch, 10)
    http_input = httpclient.InferInput("image", list(images.shape), "FP32")
    http_input.set_data_from_numpy(images)
    over_http = protocol_server.http().infer(MODEL, [http_input]).as_numpy("probabilities")
    np.testing.assert_allclose(probabilities, over_http, atol=1e-6)


def test_digit_classification_and_image_files(client: grpcclient.InferenceServerClient, digits: RawSplit) -> None:
    files = [encode(image) for image in digits.images[:4]] + [p.read_bytes() for p in sorted(UPLOADS.glob("*.jpg"))[:4]]
    tensor = grpcclient.InferInput("image_file", [len(files)], "BYTES")
    tensor.set_data_from_numpy(np.array(files, dtype=np.object_))
    from_files = client.infer(MODEL, [tensor], outputs=[grpcclient.InferRequestedOutput("digit")]).as_numpy("digit")
    assert from_files[:4].tolist() == digits.labels[:4].tolist()
    # The rendered uploads are named after their digit: "<condition>-<i>-digit<d>.jpg".
    assert from_files[4:].tolist() == [int(p.stem[-1]) for p in sorted(UPLOADS.glob("*.jpg"))[:4]]
    result = client.infer(MODEL, [image_input(as_model_input(digits.images[:4]))], outputs=[
        grpcclient.InferRequestedOutput("digit"), grpcclient.InferRequestedOutput("probabilities", class_count=1)])
    assert result.as_numpy("digit").tolist() == digits.labels[:4].tolist()
    assert [int(e.split(b":")[1]) for e in result.as_numpy("probabilities")[:, 0]] == digits.labels[:4].tolist()


def test_errors_carry_grpc_status_codes(client: grpcclient.InferenceServerClient, digits: RawSplit) -> None:
    images = as_model_input(digits.images[:2])
    cases = [
        ({"model_name": "no_such_model"}, "StatusCode.NOT_FOUND", "no model 'no_such_model'"),
        ({"model_name": MODEL, "model_version": "9"}, "StatusCode.NOT_FOUND", "has no version '9'"),
    ]
    for arguments, status, message in cases:
        with pytest.raises(InferenceServerException) as error:
            client.infer(inputs=[image_input(images)], **arguments)
        assert error.value.status() == status
        assert message in error.value.message()
    bad = grpcclient.InferInput("image", [2, 28, 28], "FP32")
    bad.set_data_from_numpy(images[..., 0])
    with pytest.raises(InferenceServerException) as shape:
        client.infer(MODEL, [bad])
    assert shape.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert shape.value.message() == "input 'image' must have shape [-1, 28, 28, 1] (N images), got [2, 28, 28]"
    with pytest.raises(InferenceServerException) as ready:
        client.is_model_ready("no_such_model")
    assert ready.value.status() == "StatusCode.NOT_FOUND"


def test_a_message_over_the_limit_is_refused(client: grpcclient.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException) as error:
        client.infer(MODEL, [image_input(np.zeros((1400, 28, 28, 1), dtype=np.float32))])
    assert error.value.status() == "StatusCode.RESOURCE_EXHAUSTED"


def test_grpc_requests_are_counted_in_the_shared_metrics(protocol_server: ProtocolServer,
                                                         client: grpcclient.InferenceServerClient,
                                                         digits: RawSplit) -> None:
    import re
    import time

    import httpx

    from service.observability.metrics import RENDER_MAX_AGE

    def inferences() -> float:
        text = httpx.get(f"{protocol_server.base_url}/metrics", timeout=10).text
        found = re.search(rf'^digits_inference_duration_seconds_count{{model="{MODEL}"}} (\S+)$', text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    time.sleep(RENDER_MAX_AGE + 0.1)  # a fresh rendering, after every earlier request
    before = inferences()
    client.infer(MODEL, [image_input(as_model_input(digits.images[:1]))])
    with pytest.raises(InferenceServerException):
        client.get_model_metadata("no_such_model")
    time.sleep(RENDER_MAX_AGE + 0.1)  # /metrics reuses its rendering for up to this long
    # The data plane's own metrics see gRPC inferences too: one registry for both transports.
    assert inferences() == before + 1
    text = httpx.get(f"{protocol_server.base_url}/metrics", timeout=10).text
    assert 'digits_grpc_requests_total{code="OK",method="ModelInfer"}' in text
    assert 'digits_grpc_requests_total{code="NOT_FOUND",method="ModelMetadata"}' in text
