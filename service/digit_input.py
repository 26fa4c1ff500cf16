"""The one definition of a model's input, shared by training and serving.

Every model in the store takes MNIST-style tensors: float32 in [0, 1], shape (N, 28, 28, 1),
a white digit on a black background. Training normalises the IDX pixels with `normalize_pixels`
and the service normalises preprocessed uploads with the same function, so the two cannot drift.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IMAGE_SIDE = 28
"""Height and width of a model input, in pixels."""

NUM_CLASSES = 10
"""Digits 0-9."""

INPUT_NAME = "image"
"""Name of the ONNX graph input: float32 [N, 28, 28, 1], dynamic batch."""

OUTPUT_NAME = "probabilities"
"""Name of the ONNX graph output: float32 [N, 10], softmax probabilities."""

INPUT_SHAPE = (IMAGE_SIDE, IMAGE_SIDE, 1)
"""Shape of one image, channels last."""


def normalize_pixels(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Turn uint8 greyscale digits (white on black) into model input.

    Args:
        pixels: uint8 array of shape (28, 28), (N, 28, 28) or (N, 28, 28, 1).

    Returns:
        float32 array of shape (N, 28, 28, 1) with values x / 255 in [0, 1].
    """
    if pixels.dtype != np.uint8:
        raise TypeError(f"expected uint8 pixels, got {pixels.dtype}")
    if pixels.shape[-2:] == (IMAGE_SIDE, IMAGE_SIDE):
        pixels = pixels[..., np.newaxis]
    if pixels.ndim == 3:
        pixels = pixels[np.newaxis]
    if pixels.ndim != 4 or pixels.shape[1:] != INPUT_SHAPE:
        raise ValueError(f"expected (N, 28, 28[, 1]) pixels, got shape {pixels.shape}")
    # Multiplying by a float32 reciprocal would differ from x / 255 in the last bit for some
    # values; divide, as the seed did, so training and serving see identical floats.
    return pixels.astype(np.float32) / np.float32(255.0)
