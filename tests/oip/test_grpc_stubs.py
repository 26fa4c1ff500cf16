"""The committed gRPC messages are what the vendored .proto generates (regenerated here, offline)."""

from __future__ import annotations

from pathlib import Path

from service.inference_protocol.proto import regenerate


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    for generated in regenerate.generate(tmp_path):
        committed = regenerate.HERE / generated.name
        assert committed.read_text() == generated.read_text(), (
            f"{committed.name} is stale: run python -m service.inference_protocol.proto.regenerate"
        )


def test_the_messages_live_in_a_private_pool_beside_tritonclients() -> None:
    # Both define `inference.ModelInferRequest`; in protobuf's default pool one would refuse the other.
    import tritonclient.grpc.service_pb2 as triton

    from service.inference_protocol.proto import open_inference_grpc_pb2 as ours

    request = ours.ModelInferRequest(model_name="cnn", raw_input_contents=[b"\0" * 4])
    request.inputs.add(name="image", datatype="FP32", shape=[1])
    decoded = triton.ModelInferRequest.FromString(request.SerializeToString())
    assert (decoded.model_name, decoded.inputs[0].name, decoded.raw_input_contents[0]) == ("cnn", "image", b"\0" * 4)
