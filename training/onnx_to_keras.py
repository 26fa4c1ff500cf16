"""Rebuild the Keras model of a variant from its exported ONNX weights.

The store keeps only ONNX files. Benchmarks (and the naive Keras baseline server) need the
Keras model with the very same weights; the variant's builder gives the architecture and the
ONNX initializers give the weights, matched by shape (unique within each of our models).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from training.variants import VariantSpec, build_model

if TYPE_CHECKING:
    import keras


def keras_model_from_onnx(spec: VariantSpec, onnx_path: Path) -> keras.Model:
    """The variant's Keras model carrying the weights of `onnx_path`.

    Raises:
        ValueError: a Keras weight has no ONNX initializer of matching shape (not our export).
    """
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(onnx_path))
    by_shape: dict[tuple[int, ...], list[np.ndarray]] = {}
    for initializer in proto.graph.initializer:
        array = numpy_helper.to_array(initializer)
        by_shape.setdefault(array.shape, []).append(array)

    model = build_model(spec)
    for layer in model.layers:
        weights = []
        for variable in layer.weights:
            shape = tuple(variable.shape)
            # ONNX Conv weights are OIHW; Keras Conv2D kernels are HWIO.
            onnx_shape = (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 else shape
            candidates = by_shape.get(onnx_shape, [])
            if len(candidates) != 1:
                raise ValueError(f"{onnx_path}: {len(candidates)} initializers of shape {onnx_shape} for {variable.path}")
            array = candidates[0]
            weights.append(array.transpose(2, 3, 1, 0) if len(shape) == 4 else array)
        if weights:
            layer.set_weights(weights)
    return model
