"""Every model of the store has a Triton `config.pbtxt` that Triton's own schema parses and that
matches the model's ONNX graph (so `tritonserver --model-repository` can serve the store as is)."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from digit_contract.store import latest_version, list_models, version_dir
from service.inference_protocol.plane import MAX_BATCH
from service.inference_protocol.triton_config import CONFIG_FILE, model_spec, render_config
from tests.service.conftest import MODEL_NAMES


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_config_parses_and_matches_the_graph(oip_store: Path, name: str) -> None:
    text = (oip_store / name / CONFIG_FILE).read_text()
    assert text == render_config(name, spec=model_spec(oip_store, name)), "stale: run python -m service.inference_protocol.triton_config"
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.name == name
    assert config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == MAX_BATCH
    version = latest_version(oip_store, name)
    assert version is not None
    session = ort.InferenceSession(str(version_dir(oip_store, name, version) / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    for declared, actual in ((config.input, session.get_inputs()), (config.output, session.get_outputs())):
        assert len(declared) == len(actual) == 1
        assert declared[0].name == actual[0].name
        assert model_config_pb2.DataType.Name(declared[0].data_type) == "TYPE_FP32" and actual[0].type == "tensor(float)"
        # Triton's dims leave out the batch dimension, which max_batch_size stands for.
        assert list(declared[0].dims) == list(actual[0].shape[1:])


def test_every_model_has_one(oip_store: Path) -> None:
    assert sorted(list_models(oip_store)) == sorted(MODEL_NAMES)
    assert all((oip_store / name / CONFIG_FILE).is_file() for name in MODEL_NAMES)


def test_configs_follow_each_models_input_spec(tmp_path: Path) -> None:
    from service.inference_protocol.triton_config import write_configs
    from tests.service.inference.conftest import UCI_FLAT, UCI_NHWC, linear_softmax, publish

    for name, spec in (("digits8_flat", UCI_FLAT), ("digits8_nhwc", UCI_NHWC)):
        publish(tmp_path, name, linear_softmax(spec)[0], spec)
    written = write_configs(tmp_path)
    assert [p.parent.name for p in written] == ["digits8_flat", "digits8_nhwc"]
    for path, dims in zip(written, ([64], [8, 8, 1]), strict=True):
        config = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
        assert list(config.input[0].dims) == dims
        session = ort.InferenceSession(str(path.parent / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
        assert list(session.get_inputs()[0].shape[1:]) == dims
