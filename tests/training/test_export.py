"""ONNX export: signature, parity with Keras, no random operators, refusal of bad exports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from digit_contract.inputs import INPUT_NAME, OUTPUT_NAME
from training.data import Mnist
from training.export import OPSET, ExportMismatch, convert_to_onnx, verify_export
from training.trainer import parity_images
from training.variants import VARIANTS, VARIANTS_BY_NAME, VariantSpec, build_model


@pytest.fixture(scope="module")
def images(sample: Mnist) -> np.ndarray:
    return parity_images(sample, 1000)


@pytest.mark.parametrize("spec", VARIANTS, ids=lambda s: s.name)
def test_export_matches_keras_and_is_deterministic(spec: VariantSpec, tmp_path: Path, images: np.ndarray) -> None:
    import keras

    keras.utils.set_random_seed(3)
    model = build_model(spec)  # untrained weights are as good as trained ones for parity
    path = tmp_path / "model.onnx"
    convert_to_onnx(model, path)
    report = verify_export(model, path, images)
    assert report.opset == OPSET
    assert report.max_abs_diff <= 1e-5
    assert report.images_checked == 1000

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape[1:]) == (INPUT_NAME, "tensor(float)", [28, 28, 1])
    assert isinstance(inp.shape[0], str)  # dynamic batch
    assert (out.name, out.shape[1]) == (OUTPUT_NAME, 10)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert not ops & {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Dropout"}
    first = session.run(None, {INPUT_NAME: images[:64]})[0]
    np.testing.assert_array_equal(first, session.run(None, {INPUT_NAME: images[:64]})[0])


def test_export_from_other_weights_is_refused(tmp_path: Path, images: np.ndarray) -> None:
    import keras

    spec = VARIANTS_BY_NAME["mlp"]
    keras.utils.set_random_seed(1)
    exported = build_model(spec)
    keras.utils.set_random_seed(2)
    other = build_model(spec)
    path = tmp_path / "model.onnx"
    convert_to_onnx(exported, path)
    with pytest.raises(ExportMismatch, match=r"^model\.onnx: ONNX differs from its framework by .* > 1e-05$"):
        verify_export(other, path, images)


def test_graph_with_a_random_operator_is_refused(tmp_path: Path, images: np.ndarray) -> None:
    spec = VARIANTS_BY_NAME["cnn_noise"]
    model = build_model(spec)
    path = tmp_path / "model.onnx"
    convert_to_onnx(model, path)
    proto = onnx.load(str(path))
    # What a leaked GaussianNoise would look like: noise shaped like the input, added to it.
    noisy = "image_noisy"
    proto.graph.node.insert(0, helper.make_node("RandomNormalLike", [INPUT_NAME], ["noise"], scale=0.2))
    proto.graph.node.insert(1, helper.make_node("Add", [INPUT_NAME, "noise"], [noisy]))
    for node in proto.graph.node[2:]:
        node.input[:] = [noisy if name == INPUT_NAME else name for name in node.input]
    onnx.save(proto, str(path))
    with pytest.raises(ExportMismatch, match=r"graph contains random operators \['RandomNormalLike'\]"):
        verify_export(model, path, images)


def test_parity_needs_a_thousand_images(tmp_path: Path, images: np.ndarray) -> None:
    model = build_model(VARIANTS_BY_NAME["mlp"])
    path = tmp_path / "model.onnx"
    convert_to_onnx(model, path)
    with pytest.raises(ValueError, match="parity needs at least 1000 images, got 999"):
        verify_export(model, path, images[:999])
