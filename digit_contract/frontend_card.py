"""The cards of the front-end models: what each was trained on, its input and its validation.

The ink segmenter and the pair reader (two touching digits read at once) are not digit classifiers,
so each has its own card and the store's own corner (`model_store/frontend/<name>/<version>/`,
which the classifiers' listing ignores: its directory holds no version of its own). The trainer
writes the card; the service validates it at start-up and reports it beside the classifiers'.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
