"""Triton's own HTTP client (tritonclient.http) against a live server: health, metadata, inference
with binary and JSON tensors, batches, image files, and errors the client reports as errors."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.factories import encode
from training.data import RawSplit

from .conftest import MODEL, UPLOADS, ProtocolServer, as_model_input


@pytest.fixture(scope="module")
def client(protocol_server: ProtocolServer) -> httpclient.InferenceServerClient:
    return protocol_server.http()


def image_input(images: np.ndarray, *, binary: bool = True) -> httpclient.InferInput:
    tensor = httpclient.InferInput("image", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images, binary_data=binary)
    return tensor


def files_input(files: list[bytes]) -> httpclient.InferInput:
    tensor = httpclient.InferInput("image_file", [len(files)], "BYTES")
    tensor.set_data_from_numpy(np.array(files, dtype=np.object_))
    return tensor


def test_health_and_server_metadata(client: httpclient.InferenceServerClient) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert client.is_model_ready(MODEL, "1")
    metadata = client.get_server_metadata()
    assert metadata["name"] == "digit-serving"
    assert set(metadata["extensions"]) == {"binary_tensor_data", "classification", "model_configuration", "statistics",
                                         "model_repository"}


def test_model_metadata_declares_the_tensors(client: httpclient.InferenceServerClient) -> None:
    metadata = client.get_model_metadata(MODEL)
    assert metadata == client.get_model_metadata(MODEL, "1")
    assert metadata["name"] == MODEL
    assert metadata["versions"] == ["1"]
    assert metadata["platform"] == "onnx_onnxv1"
    assert metadata["inputs"] == [
        {"name": "image", "datatype": "FP32", "shape": [-1, 28, 28, 1]},
        {"name": "image_file", "datatype": "BYTES", "shape": [-1, 1]},
    ]
    assert metadata["outputs"] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        {"name": "digit", "datatype": "INT64", "shape": [-1]},
    ]


@pytest.mark.parametrize("batch", [1, 64, 1024])
def test_binary_batches_give_the_models_answers(client: httpclient.InferenceServerClient, digits: RawSplit,
                                                batch: int) -> None:
    images = as_model_input(np.resize(digits.images, (batch, 28, 28)))
    labels = np.resize(digits.labels, batch)
    result = client.infer(MODEL, [image_input(images)], request_id=f"batch-{batch}")
    assert result.get_response()["id"] == f"batch-{batch}"
    assert result.get_response()["model_version"] == "1"
    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float32
    assert probabilities.shape == (batch, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities.argmax(axis=1) == labels).mean() > 0.97


def test_json_tensors_give_the_same_answer_as_binary(client: httpclient.InferenceServerClient,
                                                     digits: RawSplit) -> None:
    images = as_model_input(digits.images[:16])
    binary = client.infer(MODEL, [image_input(images)]).as_numpy("probabilities")
    as_json = client.infer(MODEL, [image_input(images, binary=False)],
                           outputs=[httpclient.InferRequestedOutput("probabilities", binary_data=False)])
    assert as_json.get_response()["outputs"][0]["data"]  # really sent back as JSON
    np.testing.assert_allclose(as_json.as_numpy("probabilities"), binary, atol=1e-6)


def test_digit_and_classification_outputs(client: httpclient.InferenceServerClient, digits: RawSplit) -> None:
    images = as_model_input(digits.images[:8])
    result = client.infer(MODEL, [image_input(images)], outputs=[
        httpclient.InferRequestedOutput("digit"),
        httpclient.InferRequestedOutput("probabilities", class_count=3),
    ])
    predicted = result.as_numpy("digit")
    assert predicted.dtype == np.int64
    assert predicted.tolist() == digits.labels[:8].tolist()
    top = result.as_numpy("probabilities")
    assert top.shape == (8, 3)
    # Triton's classification format, "<score>:<class>", best first.
    assert [int(entry.split(b":")[1]) for entry in top[:, 0]] == predicted.tolist()
    scores = np.array([[float(entry.split(b":")[0]) for entry in row] for row in top])
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_image_files_give_the_same_digits_as_predict(protocol_server: ProtocolServer,
                                                     client: httpclient.InferenceServerClient,
                                                     digits: RawSplit) -> None:
    # MNIST PNGs and rendered uploads (photos, scans, canvases), which need the real preprocessing.
    uploads = sorted(UPLOADS.glob("*.png"))[:6] + sorted(UPLOADS.glob("*.jpg"))[:6]
    files = [encode(image) for image in digits.images[:4]] + [path.read_bytes() for path in uploads]
    assert len(files) <= 16  # the native API's per-request file limit applies to image files too
    result = client.infer(MODEL, [files_input(files)], outputs=[httpclient.InferRequestedOutput("digit"),
                                                                httpclient.InferRequestedOutput("probabilities")])
    native = httpx.post(f"{protocol_server.base_url}/predict", params={"model": MODEL}, timeout=60,
                        files=[("file", (f"f{i}", data, "application/octet-stream")) for i, data in enumerate(files)])
    assert native.status_code == 200, native.text
    answers = native.json()
    assert result.as_numpy("digit").tolist() == [answer["digit"] for answer in answers]
    np.testing.assert_allclose(result.as_numpy("probabilities"), [a["probabilities"] for a in answers], atol=1e-6)


def test_errors_are_client_errors_with_the_message(client: httpclient.InferenceServerClient,
                                                   digits: RawSplit) -> None:
    images = as_model_input(digits.images[:2])
    with pytest.raises(InferenceServerException) as unknown:
        client.infer("no_such_model", [image_input(images)])
    assert unknown.value.status() == "404"
    assert "no model 'no_such_model'" in unknown.value.message()
    with pytest.raises(InferenceServerException) as version:
        client.infer(MODEL, [image_input(images)], model_version="9")
    assert version.value.status() == "404"
    assert version.value.message() == f"model '{MODEL}' has no version '9'; versions: 1"
    wrong_shape = httpclient.InferInput("image", [2, 784], "FP32")
    wrong_shape.set_data_from_numpy(images.reshape(2, 784))
    with pytest.raises(InferenceServerException) as shape:
        client.infer(MODEL, [wrong_shape])
    assert shape.value.status() == "400"
    assert shape.value.message() == "input 'image' must have shape [-1, 28, 28, 1] (N images), got [2, 784]"
    wrong_type = httpclient.InferInput("image", [2, 28, 28, 1], "FP64")
    wrong_type.set_data_from_numpy(images.astype(np.float64))
    with pytest.raises(InferenceServerException) as datatype:
        client.infer(MODEL, [wrong_type])
    assert datatype.value.status() == "400"
    assert datatype.value.message() == "input 'image' must be FP32, got FP64"
    assert not client.is_model_ready("no_such_model")


def test_a_batch_over_the_limit_is_413(client: httpclient.InferenceServerClient) -> None:
    images = np.zeros((1025, 28, 28, 1), dtype=np.float32)  # 3.2 MB: within the body limit, one image too many
    with pytest.raises(InferenceServerException) as error:
        client.infer(MODEL, [image_input(images)])
    assert error.value.status() == "413"
    assert error.value.message() == "batch of 1025 images; the limit is 1024 per request"


def test_a_body_over_the_limit_is_413(client: httpclient.InferenceServerClient) -> None:
    images = np.zeros((1400, 28, 28, 1), dtype=np.float32)  # 4.4 MB, over the server's 4 MiB
    with pytest.raises(InferenceServerException) as error:
        client.infer(MODEL, [image_input(images)])
    assert error.value.status() == "413"
    assert error.value.message() == "request body is larger than the limit of 4,194,304 bytes"
