"""Weights travel back from an exported ONNX file into the variant's Keras model intact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.data import Mnist
from training.export import convert_to_onnx
from training.onnx_to_keras import keras_model_from_onnx
from training.trainer import parity_images
from training.variants import VARIANTS_BY_NAME, build_model


@pytest.mark.parametrize("name", ["mlp_noise", "cnn_dropout"])
def test_rebuilt_model_computes_what_the_original_did(name: str, tmp_path: Path, sample: Mnist) -> None:
    import keras

    keras.utils.set_random_seed(11)
    original = build_model(VARIANTS_BY_NAME[name])
    # Non-zero biases, as after training (the exporter folds away all-zero ones).
    rng = np.random.default_rng(0)
    original.set_weights([w + rng.normal(0, 0.05, w.shape).astype(np.float32) for w in original.get_weights()])
    convert_to_onnx(original, tmp_path / "model.onnx")
    keras.utils.set_random_seed(12)  # different initial weights: only the transfer can make them equal
    rebuilt = keras_model_from_onnx(VARIANTS_BY_NAME[name], tmp_path / "model.onnx")
    x = parity_images(sample, 200)
    np.testing.assert_array_equal(rebuilt(x, training=False).numpy(), original(x, training=False).numpy())


def test_an_onnx_file_of_another_architecture_is_refused(tmp_path: Path) -> None:
    convert_to_onnx(build_model(VARIANTS_BY_NAME["mlp"]), tmp_path / "model.onnx")
    with pytest.raises(ValueError, match=r"0 initializers of shape \(32, 1, 3, 3\)"):
        keras_model_from_onnx(VARIANTS_BY_NAME["cnn"], tmp_path / "model.onnx")
