"""A classifier outside the service, as `digit_frontend.numbers` reads digits with: for the numbers
evaluation and its tests, which read in-process along the path `POST /read` takes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from digit_contract.inputs import normalize_pixels
from digit_frontend.numbers import Reader
from digit_frontend.pipeline import PreparedImage

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "model_store" / "cnn_augmented" / "1" / "model.onnx"
"""The upload default model of the committed store, as the service would choose it."""


def onnx_reader(path: Path = DEFAULT_MODEL) -> Reader:
    """Probabilities (N, 10) of an MNIST-input ONNX classifier for prepared digits, in one batch."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name, shape = session.get_inputs()[0].name, session.get_inputs()[0].shape

    def read(images: Sequence[PreparedImage]) -> npt.NDArray[np.float32]:
        pixels = normalize_pixels(np.stack([image.pixels for image in images]))
        out: npt.NDArray[np.float32] = session.run(None, {name: pixels.reshape(len(images), *shape[1:])})[0]
        return out

    return read
