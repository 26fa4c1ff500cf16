"""Two touching digits read at once: the pair reader.

Handwriting joins neighbours ("00", "17", a 5's bowl round a 0's side) so that no cut through the
ink gives two readable digits (`bench.numbers.oracle` found 40 of 137 touching numbers on
validation with no readable division). The pair reader (`training.pair_reader`, in the store under
`frontend/pair_reader/<version>/`) is a small CNN that reads a candidate of the line as two digits
at once: the left digit, the right digit, and whether the candidate is two digits at all. The
numbers reader (`digit_frontend.numbers`) weighs that reading against cutting the candidate.

A candidate is framed as MNIST frames a digit, stretched for two: its mask scaled so that it is
`PAIR_HEIGHT` px tall (or `PAIR_WIDTH` px wide, if wider), centred in a 28 x 56 frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

FRAME = (28, 56)
"""(rows, columns) the pair reader takes: two MNIST frames side by side."""

PAIR_HEIGHT, PAIR_WIDTH = 20, 52
"""The pair's box is scaled to this height (MNIST's 20 px digits), or to this width if wider."""


def frame_pair(mask: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """A candidate's ink mask (0/1, cropped to its box) as the pair reader takes it: 28 x 56, [0, 1]."""
    height, width = mask.shape
    scale = min(PAIR_HEIGHT / height, PAIR_WIDTH / width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # INTER_AREA on 0/255: the anti-aliased edges MNIST's scans have, as frame_digit gives a digit.
    scaled = cv2.resize(mask.astype(np.uint8) * 255, size, interpolation=cv2.INTER_AREA)
    frame = np.zeros(FRAME, np.float32)
    top, left = (FRAME[0] - size[1]) // 2, (FRAME[1] - size[0]) // 2
    frame[top : top + size[1], left : left + size[0]] = scaled / 255.0
    return frame


@dataclass(frozen=True)
class PairReading:
    """What the pair reader made of candidates: per candidate, each side's probabilities and the
    probability that it is two digits at all."""

    left: npt.NDArray[np.float32]
    """(N, 10)"""
    right: npt.NDArray[np.float32]
    """(N, 10)"""
    pair: npt.NDArray[np.float32]
    """(N,)"""


class PairReader:
    """The store's pair reader under ONNX Runtime (one thread, as the segmenter)."""

    def __init__(self, model_path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.path = model_path

    @classmethod
    def from_store(cls, store: Path, version: int | None = None) -> PairReader | None:
        """The latest (or the given) published pair reader in `store/frontend/pair_reader/`, or None.

        Raises:
            ValueError: its card is invalid, or its ONNX file is not the one the card describes.
        """
        from digit_contract.frontend_card import PAIR_READER_NAME, PairReaderCard, open_front_end_model

        opened = open_front_end_model(store, PAIR_READER_NAME, PairReaderCard, version)
        return None if opened is None else cls(opened[0])

    def read(self, masks: list[npt.NDArray[np.uint8]]) -> PairReading:
        """Read candidates' masks (one batch)."""
        if not masks:
            empty = np.zeros((0, 10), np.float32)
            return PairReading(empty, empty, np.zeros(0, np.float32))
        batch = np.stack([frame_pair(mask) for mask in masks])[:, :, :, None]
        out: npt.NDArray[np.float32] = self.session.run(None, {"image": batch})[0]
        return PairReading(out[:, :10], out[:, 10:20], out[:, 20])
