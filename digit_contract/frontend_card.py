"""The cards of the front-end models: what each was trained on, its input and its validation.

The ink segmenter and the pair reader (two touching digits read at once) are not digit classifiers,
so each has its own card and the store's own corner (`model_store/frontend/<name>/<version>/`,
which the classifiers' listing ignores: its directory holds no version of its own). The trainer
writes the card; the service validates it at start-up and reports it beside the classifiers'.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

SEGMENTER_NAME = "ink_segmenter"
PAIR_READER_NAME = "pair_reader"
FRONTEND_DIR = "frontend"
"""The store's sub-directory for front-end models."""


class SegmenterMetrics(BaseModel):
    """Ink IoU (pixels > 0.5, pooled over the set) at one scale, and the export's parity with Keras."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    samples: int = Field(ge=1)
    iou: float = Field(ge=0.0, le=1.0)
    max_abs_diff_keras: float = Field(ge=0.0)


class SegmenterCard(BaseModel):
    """The segmenter's card (`card.json` beside its `model.onnx`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int = Field(ge=1)
    created_at: datetime
    parameters: int = Field(ge=1)
    coarse_side: int = Field(ge=8, multiple_of=8)
    fine_side: int = Field(ge=8, multiple_of=8)
    input_note: str
    trained_on: str
    validated_on: str
    validation: dict[str, SegmenterMetrics]
    history: list[dict[str, Any]]
    continued_from: str | None = None
    """The earlier weights this run started from (its version's card holds their history), if any."""
    data_sha256: dict[str, str]
    onnx_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class PairReaderMetrics(BaseModel):
    """The pair reader on held-out pairs: both digits right (of true pairs), two-or-one right (all)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    samples: int = Field(ge=1)
    pairs_read: float = Field(ge=0.0, le=1.0)
    pair_or_not: float = Field(ge=0.0, le=1.0)
    max_abs_diff_keras: float = Field(ge=0.0)


class PairReaderCard(BaseModel):
    """The pair reader's card (`card.json` beside its `model.onnx`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: int = Field(ge=1)
    created_at: datetime
    parameters: int = Field(ge=1)
    input_note: str
    output_note: str
    trained_on: str
    validated_on: str
    validation: PairReaderMetrics
    history: list[dict[str, Any]]
    data_sha256: dict[str, str]
    onnx_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


CardT = TypeVar("CardT", SegmenterCard, PairReaderCard)


def open_front_end_model(store: Path, name: str, card_type: type[CardT],
                         version: int | None = None) -> tuple[Path, CardT] | None:
    """The ONNX file and card of front-end model `name`'s latest (or given) version in
    `store/frontend/`, or None when it has none.

    Raises:
        ValueError: its card is invalid, or its ONNX file is not the one the card describes.
    """
    from digit_contract.store import CARD_FILE, MODEL_FILE, latest_version, version_dir

    frontend = store / FRONTEND_DIR
    version = version if version is not None else latest_version(frontend, name)
    if version is None:
        return None
    directory = version_dir(frontend, name, version)
    card = card_type.model_validate(json.loads((directory / CARD_FILE).read_text()))
    # These networks run in the request path: run only the file that was trained, validated and carded.
    digest = hashlib.sha256((directory / MODEL_FILE).read_bytes()).hexdigest()
    if digest != card.onnx_sha256:
        raise ValueError(f"{directory / MODEL_FILE} is not the file its card describes (SHA-256 {digest[:12]}...)")
    return directory / MODEL_FILE, card
