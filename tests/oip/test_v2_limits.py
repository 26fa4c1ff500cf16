"""Issue 22 on the protocol's transports: refuse on what a request declares before parsing or
splitting it, parse large bodies off the event loop, bound the echoed `id`, accept ASCII versions
and byte counts only, and give gRPC the REST side's gates.

Each test fails on the code before the issue (a 500, an accepted request, or work done before the
refusal).
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from digit_contract.store import list_versions
from service.inference_protocol import rest, tensors
from service.inference_protocol.proto import open_inference_grpc_pb2 as pb

from .conftest import MODEL

INFER = f"/v2/models/{MODEL}/infer"


def binary_request(inputs: list[dict[str, Any]], data: bytes) -> tuple[bytes, dict[str, str]]:
    header = orjson.dumps({"inputs": inputs})
    return header + data, {"Inference-Header-Content-Length": str(len(header)),
                           "Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def grpc_server(v2_client: TestClient) -> Any:
    """One gRPC server object on the in-process app's plane (its request counter registers once)."""
    from service.inference_protocol.grpc_server import GrpcInferenceServer

    plane = v2_client.app.state.inference_plane  # type: ignore[attr-defined]
    return GrpcInferenceServer(plane, host="127.0.0.1", port=0, max_message_bytes=8 << 20)


def never_split(*args: Any) -> Any:
    raise AssertionError("the BYTES data was split before the declared shape was checked")


# -- 9. Unicode digits -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"/v2/models/{MODEL}/versions/%C2%B2", f"/v2/models/{MODEL}/versions/%C2%B2/ready"])
def test_a_unicode_digit_version_is_no_such_version(v2_client: TestClient, path: str) -> None:
    response = v2_client.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == ("model version '²' is not a version number: versions are ASCII digits, "
                                        "at most 18")


def test_a_unicode_digit_version_is_no_such_version_for_inference(v2_client: TestClient) -> None:
    response = v2_client.post(f"/v2/models/{MODEL}/versions/%C2%B2/infer", json={"inputs": []})
    assert response.status_code == 404


@pytest.mark.parametrize("length", ["²", "1¹", "1" * 5000])
def test_a_header_length_of_unicode_or_many_digits_is_a_400(length: str) -> None:
    """uvicorn reads header bytes as Latin-1, so b"\\xb2" arrives as "²" (the test client cannot send it)."""
    from service.inference_protocol.errors import InvalidInferRequest
    from service.inference_protocol.rest_codec import parse_header_length

    with pytest.raises(InvalidInferRequest, match="must be a byte count"):
        parse_header_length(length, 10_000)


def test_a_header_length_of_5000_digits_is_a_400_over_http(v2_client: TestClient) -> None:
    body, headers = binary_request([{"name": "image", "datatype": "FP32", "shape": [1, 28, 28, 1],
                                     "parameters": {"binary_data_size": 4}}], b"\x00" * 4)
    headers["Inference-Header-Content-Length"] = "1" * 5000
    response = v2_client.post(INFER, content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"].startswith("inference-header-content-length must be a byte count")


def test_grpc_versions_of_unicode_digits_are_not_found(grpc_server: Any) -> None:
    from service.inference_protocol.errors import VersionNotFound

    server = grpc_server
    for call in (server._model_ready(pb.ModelReadyRequest(name=MODEL, version="²")),
                 server._model_metadata(pb.ModelMetadataRequest(name=MODEL, version="²")),
                 server._model_infer(pb.ModelInferRequest(model_name=MODEL, model_version="1" * 5000))):
        with pytest.raises(VersionNotFound):
            asyncio.run(call)


# -- 2. refuse on the declared shape, parse off the loop, bound JSON ------------------------------------------


def test_two_million_empty_bytes_elements_are_refused_before_splitting(v2_client: TestClient,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tensors, "split_bytes", never_split)
    count = 200_000  # the body limit of this app is 1 MiB: 800 KB of empty elements
    body, headers = binary_request([{"name": "image_file", "datatype": "BYTES", "shape": [count],
                                     "parameters": {"binary_data_size": 4 * count}}], b"\x00\x00\x00\x00" * count)
    response = v2_client.post(INFER, content=body, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"] == (f"input 'image_file': shape [{count}] declares {count:,} BYTES elements; "
                                        "at most 1,024 per request")


def test_json_of_a_million_tiny_arrays_is_refused_before_parsing(v2_client: TestClient,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[bool] = []
    real_loads = orjson.loads
    monkeypatch.setattr("service.inference_protocol.rest_codec.orjson.loads",
                        lambda data: parsed.append(True) or real_loads(data))
    arrays = 150_000  # 750 KB, under this app's 1 MiB body limit
    body = (b'{"inputs":[{"name":"image_file","datatype":"BYTES","shape":[1],"data":['
            + b",".join([b'[""]'] * arrays) + b"]}]}")
    response = v2_client.post(INFER, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == (f"the JSON request has {arrays + 3:,} arrays; at most 65,536 are accepted: "
                                        "send tensor data flat, or as binary data")
    assert parsed == []


def test_large_bodies_are_parsed_off_the_event_loop(v2_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    on_loop: list[bool] = []
    real = rest.decode_request

    def recording(body: bytes, header_length: int | None) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return real(body, header_length)

    monkeypatch.setattr(rest, "decode_request", recording)
    images = 100  # 313 KB of binary FP32
    body, headers = binary_request([{"name": "image", "datatype": "FP32", "shape": [images, 28, 28, 1],
                                     "parameters": {"binary_data_size": images * 784 * 4}}],
                                   struct.pack("<f", 0.5) * (images * 784))
    assert v2_client.post(INFER, content=body, headers=headers).status_code == 200
    small = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 28, 28, 1], "data": [0.5] * 784}]}
    assert v2_client.post(INFER, json=small).status_code == 200
    assert on_loop == [False, True]


def test_grpc_bytes_contents_are_refused_on_their_declared_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.inference_protocol.errors import BatchTooLarge
    from service.inference_protocol.grpc_server import decode_request

    monkeypatch.setattr(tensors, "split_bytes", never_split)
    count = 2_000_000
    message = pb.ModelInferRequest(model_name=MODEL, raw_input_contents=[b"\x00\x00\x00\x00" * count])
    message.inputs.add(name="image_file", datatype="BYTES", shape=[count])
    with pytest.raises(BatchTooLarge, match="declares 2,000,000 BYTES elements"):
        decode_request(message)


# -- 6. the echoed id is bounded ---------------------------------------------------------------------------


def test_a_long_request_id_is_refused(v2_client: TestClient) -> None:
    pixels = [{"name": "image", "datatype": "FP32", "shape": [1, 28, 28, 1], "data": [0.5] * 784}]
    ok = v2_client.post(INFER, json={"id": "x" * 256, "inputs": pixels})
    long = v2_client.post(INFER, json={"id": "x" * 257, "inputs": pixels})
    assert ok.status_code == 200 and ok.json()["id"] == "x" * 256
    assert long.status_code == 400
    assert long.json() == {"error": "`id` has 257 characters; at most 256 are accepted"}


def test_a_long_grpc_request_id_is_refused() -> None:
    from service.inference_protocol.errors import InvalidInferRequest
    from service.inference_protocol.grpc_server import decode_request

    message = pb.ModelInferRequest(model_name=MODEL, id="x" * 10_000)
    message.inputs.add(name="image", datatype="FP32", shape=[1, 28, 28, 1]).contents.fp32_contents.extend([0.5] * 784)
    with pytest.raises(InvalidInferRequest, match="at most 256"):
        decode_request(message)


# -- 3. gRPC: a concurrency cap and the REST side's gates ----------------------------------------------------


def test_grpc_caps_concurrent_calls(grpc_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import grpc.aio

    seen: dict[str, Any] = {}
    real_server = grpc.aio.server

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        return real_server(*args, **kwargs)

    monkeypatch.setattr(grpc.aio, "server", recording)

    async def start_and_stop() -> None:
        await grpc_server.start()
        await grpc_server.stop(0)

    asyncio.run(start_and_stop())
    assert seen.get("maximum_concurrent_rpcs") == 8  # Settings.grpc_max_concurrent_rpcs' default
    assert ("grpc.max_concurrent_streams", 4) in seen["options"]


def test_a_large_grpc_message_waits_for_an_upload_slot(grpc_server: Any) -> None:
    from service.server.limits import BodyBudget

    images = 400  # 1.25 MB of raw FP32: over the 1 MiB that takes a slot
    message = pb.ModelInferRequest(model_name=MODEL, raw_input_contents=[struct.pack("<f", 0.5) * (images * 784)])
    message.inputs.add(name="image", datatype="FP32", shape=[images, 28, 28, 1])

    async def scenario() -> tuple[bool, int, int]:
        server = grpc_server
        slots, budget = asyncio.Semaphore(1), BodyBudget(64 << 20)
        server.share_gates(budget, slots, None)
        await slots.acquire()  # every slot taken
        call = asyncio.create_task(server._model_infer(message))
        await asyncio.sleep(0.2)
        waited = not call.done()
        held = budget.used
        slots.release()
        answer = await asyncio.wait_for(call, 30)
        return waited, held, len(answer.outputs) + budget.used

    waited, held, after = asyncio.run(scenario())
    assert waited
    # No bytes reserved while it waits for a slot: REST takes the slot, then the bytes, and the other
    # order deadlocked the worker (REST holding every slot waiting for bytes, gRPC the reverse).
    assert held == 0
    assert after == 1  # one output, and the budget is back to 0


def test_refused_grpc_calls_leave_no_message_behind(oip_store: Any) -> None:
    """An aborted call's traceback (which grpc keeps in a cycle) held every refused 8 MiB message until a
    full collection: sequential refused calls grew a worker by ~180 MiB."""
    import gc

    import grpc

    from bench.toolkit import free_port
    from service.server.app import create_app
    from tests.service.conftest import make_settings

    port = free_port()
    images = 1100  # over the batch limit: refused (RESOURCE_EXHAUSTED) after decoding
    message = pb.ModelInferRequest(model_name=MODEL, raw_input_contents=[b"\x00" * (images * 784 * 4)])
    message.inputs.add(name="image", datatype="FP32", shape=[images, 28, 28, 1])
    payload = message.SerializeToString()
    del message
    with TestClient(create_app(make_settings(oip_store, grpc_port=port, warmup_runs=1))):
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 16 << 20)]) as channel:
            call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                       request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw)
            for _ in range(5):
                with pytest.raises(grpc.RpcError) as caught:
                    call(payload, timeout=30)
                assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        left = [o for o in gc.get_objects() if isinstance(o, pb.ModelInferRequest)]
    # An idle decode thread keeps its last job's arguments until its next job: one message per thread.
    assert len(left) <= 2  # Settings.work_threads


def test_a_unicode_digit_version_is_not_found_on_every_version_route(v2_client: TestClient) -> None:
    # str.isdigit() takes "²", int() does not: every route that reads a version must answer 404, not 500.
    for suffix in ("", "/ready", "/config", "/stats"):
        response = v2_client.get(f"/v2/models/cnn/versions/%C2%B2{suffix}")
        assert response.status_code == 404, (suffix, response.text)


def test_a_store_directory_named_with_a_unicode_digit_is_no_version(tmp_path: Path) -> None:
    (tmp_path / "cnn" / "²").mkdir(parents=True)
    (tmp_path / "cnn" / "1").mkdir()
    assert list_versions(tmp_path, "cnn") == [1]
