"""A found digit as a model takes it: framed for the model's input encoding, batched for its spec.

The last two steps of every upload's path, shared by the service (`service.inference.preparation`),
the evaluations and the benchmarks, so that all of them feed a model exactly the same numbers:

- **frame** (`frame`): "mnist" frames the digit as MNIST framed its digits (28x28 bytes), "uci-8x8"
  as the UCI set was made (32x32 bitmap, ink counted in 4x4 blocks: 8x8 counts 0-16);
- **batch** (`model_input`): stack one encoding's frames into the float32 tensor of one model's
  `InputSpec`, scaled to its value range and laid out as its graph takes it (nhwc or flat).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from digit_contract.inputs import InputSpec, normalize_pixels
from digit_frontend.pipeline import PreparedImage

Encoding = str
"""An `InputSpec.encoding`: "mnist" or "uci-8x8"."""

ENCODING_LEVELS: Mapping[Encoding, int] = {"mnist": 255, "uci-8x8": 16}
"""The largest value of an encoding's frame (bytes; block counts), which maps to the spec's `high`."""


def frame(image: PreparedImage, encoding: Encoding) -> npt.NDArray[np.uint8]:
    """A found digit framed for one encoding.

    Raises:
        NoInk: the digit is too small to frame.
    """
    if encoding == "uci-8x8":
        return image.uci_blocks
    return image.pixels


def model_input(frames: Sequence[npt.NDArray[np.uint8]], spec: InputSpec) -> npt.NDArray[np.float32]:
    """Frames of `spec`'s encoding as that model's input: (N, *spec.sample_shape) float32 in [low, high]."""
    stacked = np.stack(frames)
    if spec.encoding == "mnist":
        values = normalize_pixels(stacked)  # the training normalisation, bit for bit
    else:
        values = stacked.astype(np.float32) / np.float32(ENCODING_LEVELS[spec.encoding])
    return to_spec(values, spec)


def to_spec(values: npt.NDArray[np.float32], spec: InputSpec) -> npt.NDArray[np.float32]:
    """Values in [0, 1], one image per row, scaled to the spec's range and laid out as its graph takes them."""
    if (spec.low, spec.high) != (0.0, 1.0):
        values = np.float32(spec.low) + values * np.float32(spec.high - spec.low)
    return np.ascontiguousarray(values.reshape(len(values), *spec.sample_shape), dtype=np.float32)
