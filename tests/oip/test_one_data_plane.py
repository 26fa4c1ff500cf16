"""One image, sent every way the service takes it, gets the same probabilities (issue 23).

The live server runs with its default settings, so calibration is on: before the data plane was
one path, `/v2` tensors answered with the raw softmax and every other transport with temperature-
scaled probabilities (MNIST test digit #8 to `cnn`: 1.0 against 0.9696).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import numpy.typing as npt
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from PIL import Image

from digit_contract.calibration import apply_temperature
from digit_contract.card import ModelCard
from digit_contract.store import CARD_FILE, latest_version, version_dir
from service.inference_protocol.proto import open_inference_grpc_pb2 as pb
from tests.factories import encode
from training.data import RawSplit

from .conftest import MODEL, ProtocolServer

Transport = dict[str, npt.NDArray[np.float32]]


def _seen_by_the_model(server: ProtocolServer, png: bytes) -> npt.NDArray[np.float32]:
    """The 28x28 input the model read for `png` (`explain=true`), as FP32 [1, 28, 28, 1]."""
    answer = httpx.post(f"{server.base_url}/predict", params={"model": MODEL, "explain": "true"},
                        files={"file": ("digit.png", png, "image/png")}, timeout=60).json()
    picture = Image.open(io.BytesIO(base64.b64decode(answer["image"]["prepared_png"])))
    return (np.asarray(picture, dtype=np.float32) / np.float32(255.0))[np.newaxis, :, :, np.newaxis]


def _every_way(server: ProtocolServer, png: bytes, pixels: npt.NDArray[np.float32],
               parameters: dict[str, Any] | None) -> Transport:
    """The probabilities for one image from each transport; `parameters` go to each request."""
    query: dict[str, str] = {k: str(v).lower() for k, v in (parameters or {}).items()}
    native = httpx.Client(base_url=server.base_url, timeout=60)
    got: Transport = {}
    upload = native.post("/predict", params={"model": MODEL, **query}, files={"file": ("d.png", png, "image/png")})
    got["/predict file"] = np.float32(upload.json()["probabilities"])
    as_json = native.post("/predict", params={"model": MODEL, **query}, json={"images": pixels[..., 0].tolist()})
    got["/predict JSON pixels"] = np.float32(as_json.json()[0]["probabilities"])
    compared = native.post("/models/compare", params=query, files={"file": ("d.png", png, "image/png")})
    got["POST /models/compare"] = np.float32(
        next(p["probabilities"] for p in compared.json()["predictions"] if p["model"] == MODEL))
    for name, module, client in (("REST", httpclient, server.http()), ("gRPC", grpcclient, server.grpc())):
        tensor = module.InferInput("image", [1, 28, 28, 1], "FP32")
        tensor.set_data_from_numpy(pixels)
        got[f"/v2 {name} tensor"] = client.infer(MODEL, [tensor], parameters=parameters).as_numpy("probabilities")[0]
        files = module.InferInput("image_file", [1], "BYTES")
        files.set_data_from_numpy(np.array([png], dtype=np.object_))
        got[f"/v2 {name} image_file"] = client.infer(MODEL, [files], parameters=parameters).as_numpy("probabilities")[0]
    return got


@pytest.fixture(scope="module")
def digit_eight(protocol_server: ProtocolServer, digits: RawSplit) -> tuple[bytes, npt.NDArray[np.float32]]:
    png = encode(digits.images[8])
    return png, _seen_by_the_model(protocol_server, png)


@pytest.fixture(scope="module")
def card(oip_store: Path) -> ModelCard:
    store = oip_store
    version = latest_version(store, MODEL)
    assert version is not None
    return ModelCard.model_validate_json((version_dir(store, MODEL, version) / CARD_FILE).read_text())


def test_one_image_gets_the_same_calibrated_probabilities_every_way(
        protocol_server: ProtocolServer, digit_eight: tuple[bytes, npt.NDArray[np.float32]], card: ModelCard) -> None:
    png, pixels = digit_eight
    got = _every_way(protocol_server, png, pixels, None)
    reference = got["/predict file"]
    for transport, probabilities in got.items():
        np.testing.assert_array_equal(probabilities, reference, err_msg=transport)
    raw = _every_way(protocol_server, png, pixels, {"calibrated": False})
    for transport, probabilities in raw.items():
        np.testing.assert_array_equal(probabilities, raw["/predict file"], err_msg=f"raw, {transport}")
    # Calibrated really is the temperature applied to the raw softmax, not the raw softmax itself.
    assert card.calibration is not None and card.calibration.applied
    assert not np.array_equal(reference, raw["/predict file"])
    np.testing.assert_allclose(reference, apply_temperature(raw["/predict file"][np.newaxis], card.calibration.temperature)[0],
                               rtol=1e-6, atol=1e-7)


def test_the_model_metadata_says_what_the_probabilities_are(protocol_server: ProtocolServer, card: ModelCard) -> None:
    assert card.calibration is not None
    expected = {"probabilities": "calibrated", "raw_probabilities": "request parameter calibrated=false",
                "temperature": f"{card.calibration.temperature:.6g}"}
    assert protocol_server.http().get_model_metadata(MODEL)["properties"] == expected
    # tritonclient's messages have no `properties`: read the answer with the protocol's own.
    with grpc.insecure_channel(protocol_server.grpc_url) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelMetadata",
                                   request_serializer=pb.ModelMetadataRequest.SerializeToString,
                                   response_deserializer=pb.ModelMetadataResponse.FromString)
        assert dict(call(pb.ModelMetadataRequest(name=MODEL), timeout=30).properties) == expected


def test_a_calibrated_parameter_that_is_not_a_boolean_is_refused(protocol_server: ProtocolServer,
                                                                digit_eight: tuple[bytes, npt.NDArray[np.float32]]) -> None:
    _, pixels = digit_eight
    body = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 28, 28, 1], "data": pixels.ravel().tolist()}],
            "parameters": {"calibrated": "no"}}
    answer = httpx.post(f"{protocol_server.base_url}/v2/models/{MODEL}/infer", json=body, timeout=60)
    assert answer.status_code == 400
    assert answer.json()["error"] == "the request parameter 'calibrated' must be a boolean (false: the raw softmax)"
