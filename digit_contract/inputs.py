"""The one definition of a model's input, shared by training and serving.

Each card carries an `InputSpec` (below); the MNIST models of the first experiments take
MNIST-style tensors: float32 in [0, 1], shape (N, 28, 28, 1),
a white digit on a black background. Training normalises the IDX pixels with `normalize_pixels`
and the service normalises preprocessed uploads with the same function, so the two cannot drift.
"""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

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


# --- Input specifications -------------------------------------------------------------------
# The constants above describe the MNIST-shaped models of the first experiments. A zoo holds
# other inputs too (the UCI 8x8 digits); each card says which input its model takes, and the
# service prepares an upload, and checks a JSON array, against that specification.


class InputSpec(BaseModel):
    """The input one model takes: one white-on-black greyscale digit, scaled to [low, high].

    The ONNX graph input is `[N, height, width, 1]` (layout "nhwc") or `[N, height * width]`
    (layout "flat", row-major), float32, dynamic batch. `levels` is how many distinct values the
    training data had between low and high (256 for MNIST's bytes / 255, 17 for the UCI block
    counts 0-16 / 16). `encoding` names how an uploaded image becomes such an input:
    "mnist" frames the digit in 28x28 as MNIST did; "uci-8x8" normalises it into a 32x32 bitmap
    and counts ink pixels in 4x4 blocks, as the UCI set was made.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    height: int = Field(gt=0, le=512)
    width: int = Field(gt=0, le=512)
    channels: Literal[1] = 1
    layout: Literal["nhwc", "flat"] = "nhwc"
    low: float = 0.0
    high: float = 1.0
    levels: int = Field(default=256, ge=2)
    encoding: Literal["mnist", "uci-8x8"] = "mnist"

    @model_validator(mode="after")
    def _check_range(self) -> Self:
        if not self.low < self.high:
            raise ValueError(f"input range must have low < high, got [{self.low}, {self.high}]")
        return self

    @property
    def image_shape(self) -> tuple[int, int]:
        """(height, width) of the digit image the input is made from."""
        return (self.height, self.width)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one example as the ONNX graph takes it (no batch axis)."""
        if self.layout == "flat":
            return (self.height * self.width,)
        return (self.height, self.width, self.channels)

    def describe(self) -> str:
        """e.g. "8x8 flat, values in [0, 1] (17 levels)"."""
        return f"{self.height}x{self.width} {self.layout}, values in [{self.low:g}, {self.high:g}] ({self.levels} levels)"


MNIST_INPUT = InputSpec(height=IMAGE_SIDE, width=IMAGE_SIDE, layout="nhwc", levels=256, encoding="mnist")
"""The input of every Keras model on MNIST: [N, 28, 28, 1], pixel / 255."""

UCI_INPUT = InputSpec(height=8, width=8, layout="flat", levels=17, encoding="uci-8x8")
"""The input of the UCI 8x8 models (`digits8_*`, training/digits_8x8.py): [N, 64] row-major, block
counts 0-16 / 16."""


ENCODING_SHAPES: dict[str, tuple[int, int]] = {"mnist": (IMAGE_SIDE, IMAGE_SIDE), "uci-8x8": (8, 8)}
"""(height, width) of the image each encoding frames a digit into."""


def check_encoding(spec: InputSpec) -> str | None:
    """Why an upload cannot be prepared for `spec` (its size is not its encoding's), or None."""
    shape = ENCODING_SHAPES.get(spec.encoding)
    if shape is None:  # pragma: no cover - InputSpec allows only the encodings above
        return f"input encoding {spec.encoding!r} is not one this service can prepare"
    if spec.image_shape != shape:
        return (f"input encoding {spec.encoding!r} frames digits in {shape[0]}x{shape[1]}, "
                f"but the input is {spec.height}x{spec.width}")
    return None
