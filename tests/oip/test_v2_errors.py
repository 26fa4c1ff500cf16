"""Bad inference requests over REST: each a 400/404/413 with the protocol's `{"error": ...}` body, never a 5xx."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from .conftest import MODEL

INFER = f"/v2/models/{MODEL}/infer"
HEADER = "Inference-Header-Content-Length"


def image_input(shape: list[int], **extra: Any) -> dict[str, Any]:
    return {"name": "image", "datatype": "FP32", "shape": shape, **extra}


def binary_request(inputs: list[dict[str, Any]], data: bytes, **document: Any) -> tuple[bytes, dict[str, str]]:
    header = orjson.dumps({"inputs": inputs, **document})
    return header + data, {HEADER: str(len(header))}


ONE_IMAGE = np.full((1, 28, 28, 1), 0.5, dtype=np.float32)

CASES: list[tuple[str, bytes, dict[str, str], int, str]] = [
    ("not JSON", b"{nope", {}, 400, "the body: not a JSON inference request (unexpected character, expected a string key)"),
    ("not an object", b"[1, 2]", {}, 400, "the inference request must be a JSON object with `inputs`"),
    ("no inputs", b"{}", {}, 400, "`inputs` must be a non-empty list of input tensors"),
    ("unknown datatype", orjson.dumps({"inputs": [{"name": "image", "datatype": "FLOAT", "shape": [1], "data": [0]}]}),
     {}, 400, "input 'image': unknown datatype 'FLOAT'; the protocol's are BOOL, UINT8, UINT16, UINT32, UINT64, "
     "INT8, INT16, INT32, INT64, FP16, FP32, FP64, BYTES, BF16"),
    ("wrong datatype", orjson.dumps({"inputs": [image_input([1, 28, 28, 1]) | {"datatype": "INT32",
                                                                               "data": [0] * 784}]}),
     {}, 400, "input 'image' must be FP32, got INT32"),
    ("wrong shape", orjson.dumps({"inputs": [image_input([1, 784], data=[0.5] * 784)]}),
     {}, 400, "input 'image' must have shape [-1, 28, 28, 1] (N images), got [1, 784]"),
    ("negative dimension", orjson.dumps({"inputs": [image_input([-1, 28, 28, 1], data=[0.5])]}),
     {}, 400, "input 'image': shape must be a list of non-negative integers"),
    ("element count", orjson.dumps({"inputs": [image_input([2, 28, 28, 1], data=[0.5] * 784)]}),
     {}, 400, "input 'image': shape [2, 28, 28, 1] needs 1568 elements, data has 784"),
    ("not numbers", orjson.dumps({"inputs": [image_input([1, 28, 28, 1], data=[{"a": 1}] * 784)]}),
     {}, 400, "input 'image': data is not a (nested) list of FP32 numbers"),
    ("empty batch", orjson.dumps({"inputs": [image_input([0, 28, 28, 1], data=[])]}),
     {}, 400, "the batch is empty: send at least one image"),
    ("binary data missing", orjson.dumps({"inputs": [image_input([1025, 28, 28, 1],
                                                                  parameters={"binary_data_size": 0})]}),
     {}, 400, "input 'image': 0 bytes of data, but shape [1025, 28, 28, 1] of FP32 needs 3214400 "
     "(803600 elements of 4 bytes)"),
    # `image` and `image_file` together are answered from `image` (tests/oip/test_triton_extensions.py).
    ("two inputs", orjson.dumps({"inputs": [image_input([1, 28, 28, 1], data=[0.5] * 784),
                                            image_input([1, 28, 28, 1], data=[0.5] * 784)]}),
     {}, 400, "send exactly one input, 'image' (FP32 [N, 28, 28, 1]) or 'image_file' (BYTES [N], image files); "
     "got 'image', 'image'"),
    ("unknown output", orjson.dumps({"inputs": [image_input([1, 28, 28, 1], data=[0.5] * 784)],
                                     "outputs": [{"name": "logits"}]}),
     {}, 400, "unknown output 'logits'; the outputs are probabilities, digit"),
    ("classification range", orjson.dumps({"inputs": [image_input([1, 28, 28, 1], data=[0.5] * 784)],
                                           "outputs": [{"name": "probabilities", "parameters": {"classification": 11}}]}),
     {}, 400, "`classification` applies to 'probabilities' and must be 1 to 10"),
    ("binary too short", *binary_request([image_input([1, 28, 28, 1], parameters={"binary_data_size": 3136})],
                                         ONE_IMAGE.tobytes()[:-4]),
     400, "input 'image': binary_data_size is 3136 but only 3132 bytes of binary data are left"),
    ("binary sizes do not add up", *binary_request([image_input([1, 28, 28, 1], parameters={"binary_data_size": 3136})],
                                                   ONE_IMAGE.tobytes() + b"\0" * 8),
     400, "the body has 3144 bytes of binary data after the JSON, but the inputs' binary_data_size add up to 3136"),
    ("binary size against the shape", *binary_request([image_input([2, 28, 28, 1], parameters={"binary_data_size": 3136})],
                                                      ONE_IMAGE.tobytes()),
     400, "input 'image': 3136 bytes of data, but shape [2, 28, 28, 1] of FP32 needs 6272 (1568 elements of 4 bytes)"),
    ("data and binary", *binary_request([image_input([1, 28, 28, 1], data=[0.5], parameters={"binary_data_size": 3136})],
                                        ONE_IMAGE.tobytes()),
     400, "input 'image' has both `data` and binary_data_size: send one"),
    ("header length past the body", b"{}", {HEADER: "99"}, 400,
     "inference-header-content-length is 99 but the body has only 2 bytes"),
    ("header length not a number", b"{}", {HEADER: "ten"}, 400,
     "inference-header-content-length must be a byte count, got 'ten'"),
    ("raw binary request", ONE_IMAGE.tobytes(), {HEADER: "0"}, 400,
     "inference-header-content-length: 0 (a body without a JSON request) is not supported: send the JSON "
     "inference request before the binary data"),
    ("BYTES elements do not add up", *binary_request(
        [{"name": "image_file", "datatype": "BYTES", "shape": [2], "parameters": {"binary_data_size": 11}}],
        struct.pack("<I", 5) + b"abcde" + b"\x01\x00"),
     400, "input 'image_file': BYTES data ends inside an element's 4-byte length"),
    ("BYTES element longer than the data", *binary_request(
        [{"name": "image_file", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 8}}],
        struct.pack("<I", 50) + b"abcd"),
     400, "input 'image_file': a BYTES element says 50 bytes, only 4 are left"),
    ("BYTES that is not an image", *binary_request(
        [{"name": "image_file", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 9}}],
        struct.pack("<I", 5) + b"hello"),
     400, ("the file is not an image in a supported format (PNG, JPEG, BMP, GIF, WebP or TIFF): "
          "export or save it as a JPEG or PNG and send that")),
    ("BYTES base64 that is not base64", orjson.dumps({"inputs": [{
        "name": "image_file", "datatype": "BYTES", "shape": [1], "data": ["#!"],
        "parameters": {"content_type": "base64"}}]}), {}, 400, "input 'image_file': element 0 is not valid base64"),
]


@pytest.mark.parametrize(("case", "body", "headers", "status", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_request_gets_the_protocol_error(v2_client: TestClient, case: str, body: bytes, headers: dict[str, str],
                                             status: int, message: str) -> None:
    response = v2_client.post(INFER, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.json() == {"error": message}


def test_a_body_over_the_limit_is_413(v2_client: TestClient) -> None:
    images = np.zeros((400, 28, 28, 1), dtype=np.float32)  # 1.25 MB, over this app's 1 MiB body limit
    body, headers = binary_request([image_input([400, 28, 28, 1], parameters={"binary_data_size": images.nbytes})],
                                   images.tobytes())
    response = v2_client.post(INFER, content=body, headers=headers)
    assert response.status_code == 413
    assert response.json() == {"error": "request body is larger than the limit of 1,048,576 bytes"}


def test_too_many_image_files_is_413(v2_client: TestClient) -> None:
    body = orjson.dumps({"inputs": [{"name": "image_file", "datatype": "BYTES", "shape": [17], "data": ["x"] * 17}]})
    response = v2_client.post(INFER, content=body)
    assert response.status_code == 413
    assert response.json() == {"error": "too many images in one request: 17; the limit is 16"}


@pytest.mark.parametrize(("path", "message"), [
    ("/v2/models/nope/infer", "no model 'nope'; available: cnn, cnn_augmented, cnn_dropout, cnn_noise, mlp, "
                              "mlp_dropout, mlp_noise"),
    (f"/v2/models/{MODEL}/versions/2/infer", f"model '{MODEL}' has no version '2'; versions: 1"),
    (f"/v2/models/{MODEL}/versions/1.0/infer", f"model '{MODEL}' has no version with that number; versions: 1"),
])
def test_unknown_model_or_version_is_404(v2_client: TestClient, path: str, message: str) -> None:
    response = v2_client.post(path, content=b"{}")
    assert response.status_code == 404
    assert response.json()["error"] == message
    metadata = v2_client.get(path.removesuffix("/infer"))
    assert metadata.status_code == 404
    assert metadata.json()["error"] == message


def test_json_image_files_as_base64_and_the_request_id(v2_client: TestClient) -> None:
    import base64

    from tests.factories import bar_digit, encode

    png = base64.b64encode(encode(bar_digit())).decode()
    body = orjson.dumps({"id": "req-7", "inputs": [{"name": "image_file", "datatype": "BYTES", "shape": [1, 1],
                                                    "data": [[png]], "parameters": {"content_type": "base64"}}],
                         "outputs": [{"name": "digit"}]})
    response = v2_client.post(INFER, content=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"model_name": MODEL, "model_version": "1", "id": "req-7", "outputs": [
        {"name": "digit", "datatype": "INT64", "shape": [1], "data": [1]}]}


def test_an_overlong_model_name_is_400_not_422(v2_client: TestClient) -> None:
    response = v2_client.get("/v2/models/" + "a" * 65 + "/ready")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid request: path.model_name: String should have at most 64 characters"


def test_the_v2_routes_are_in_the_services_openapi_with_their_errors(v2_client: TestClient) -> None:
    schema = v2_client.get("/openapi.json").json()
    operations = {(path, method): op for path, item in schema["paths"].items() for method, op in item.items()
                  if path.startswith("/v2")}
    assert set(operations) == {
        ("/v2", "get"), ("/v2/health/live", "get"), ("/v2/health/ready", "get"),
        ("/v2/models/{model_name}", "get"), ("/v2/models/{model_name}/versions/{model_version}", "get"),
        ("/v2/models/{model_name}/ready", "get"), ("/v2/models/{model_name}/versions/{model_version}/ready", "get"),
        ("/v2/models/{model_name}/infer", "post"), ("/v2/models/{model_name}/versions/{model_version}/infer", "post"),
        # Triton's extensions (service/inference_protocol/rest_extensions.py)
        ("/v2/models/stats", "get"), ("/v2/models/{model_name}/stats", "get"),
        ("/v2/models/{model_name}/versions/{model_version}/stats", "get"),
        ("/v2/models/{model_name}/config", "get"), ("/v2/models/{model_name}/versions/{model_version}/config", "get"),
        ("/v2/repository/index", "post"), ("/v2/repository/models/{model_name}/load", "post"),
        ("/v2/repository/models/{model_name}/unload", "post"),
    }
    for op in operations.values():
        assert op["summary"] and op["description"]
    infer = operations[("/v2/models/{model_name}/infer", "post")]
    assert set(infer["responses"]) == {"200", "400", "404", "413", "503", "default"}
    assert set(infer["responses"]["200"]["content"]) == {"application/json", "application/octet-stream"}
    assert set(infer["requestBody"]["content"]) == {"application/json", "application/octet-stream"}


def test_tensor_predictions_are_counted_per_digit(v2_client: TestClient) -> None:
    metrics = v2_client.app.state.metrics

    def counted(digit: int) -> float:
        return metrics.registry.get_sample_value("digits_predictions_total", {"model": MODEL, "digit": str(digit)}) or 0.0

    confidences_before = metrics.registry.get_sample_value("digits_prediction_confidence_count", {"model": MODEL}) or 0.0
    before = [counted(d) for d in range(10)]
    images = np.zeros((5, 28, 28, 1), dtype=np.float32)
    images[:, 4:24, 13:15, 0] = 1.0  # five drawn "1"s
    body, headers = binary_request([image_input([5, 28, 28, 1], parameters={"binary_data_size": images.nbytes})],
                                   images.tobytes(), outputs=[{"name": "digit"}])
    response = v2_client.post(INFER, content=body, headers=headers)
    assert response.json()["outputs"][0]["data"] == [1] * 5
    assert [counted(d) - b for d, b in enumerate(before)] == [0, 5, 0, 0, 0, 0, 0, 0, 0, 0]
    assert metrics.registry.get_sample_value("digits_prediction_confidence_count", {"model": MODEL}) == confidences_before + 5
