"""Load the image front end's models with the classifiers: the ink segmenter (or the classical
rules) and the pair reader of numbers' touching digits.

Both live in the store beside the classifiers (`frontend/<name>/<version>/`, with their cards) and
load, like them, when the models load. A store without one, or with one that fails to load or to
pass its check, serves without it and says so in the log (the classical rules find the ink; numbers
are only cut into digits): reading less well is better than serving none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from digit_frontend.pairs import FRAME, PairReader
from digit_frontend.segmenter import InkSegmenter
from service.settings import Settings

log = logging.getLogger(__name__)

Model = TypeVar("Model", InkSegmenter, PairReader)


def load_front_end(settings: Settings) -> tuple[InkSegmenter | None, PairReader | None]:
    """The segmenter to find digits with (None for the classical rules) and the pair reader (None:
    numbers are only cut)."""
    return load_segmenter(settings), load_pair_reader(settings)


def load_segmenter(settings: Settings) -> InkSegmenter | None:
    """The segmenter to find digits with, or None for the classical rules."""
    if settings.front_end == "classical":
        log.info("front end: the classical rules (DIGITS_FRONT_END=classical)")
        return None
    return _load("ink segmenter", settings, InkSegmenter.from_store, check_segmenter, "using the classical rules")


def _load(what: str, settings: Settings, open_model: Callable[[Path], Model | None], check: Callable[[Model], None],
          without: str) -> Model | None:
    """A front-end model from the store, checked; None (and a log line saying `without` what the
    service serves) when the store has none or it fails to load or to pass its check."""
    try:
        model = open_model(settings.model_store)
        if model is None:
            log.warning("front end: no %s in %s/frontend; %s", what, settings.model_store, without)
            return None
        check(model)
    except Exception as exc:  # a broken file or card: keep serving without it
        log.error("front end: the %s failed to load (%s); %s", what, exc, without)
        return None
    log.info("front end: the %s %s", what, model.path)
    return model


def check_segmenter(segmenter: InkSegmenter) -> None:
    """Run the network once at each of its sizes: the output must be a probability map of the input's size.

    Raises:
        ValueError: it is not.
    """
    for side in (segmenter.coarse_side, segmenter.fine_side):
        out = segmenter.ink(np.full((side, side), 200, np.uint8))
        if out.shape != (side, side) or not np.isfinite(out).all() or out.min() < 0 or out.max() > 1:
            raise ValueError(f"the segmenter's output at {side} px is not a probability map of that size")


def load_pair_reader(settings: Settings) -> PairReader | None:
    """The pair reader of numbers' touching digits, or None (numbers are then only cut into digits)."""
    return _load("pair reader", settings, PairReader.from_store, check_pair_reader, "touching digits are only cut")


def check_pair_reader(reader: PairReader) -> None:
    """Read one blank candidate: each side's output must be a probability distribution, the pair's a probability.

    Raises:
        ValueError: it is not.
    """
    reading = reader.read([np.ones((FRAME[0] - 8, FRAME[1] - 8), np.uint8)])
    sides = np.concatenate([reading.left, reading.right])
    if (sides.shape != (2, 10) or not np.isfinite(sides).all() or not np.allclose(sides.sum(axis=1), 1.0, atol=1e-3)
            or not 0.0 <= float(reading.pair[0]) <= 1.0):
        raise ValueError("the pair reader's output is not two distributions over ten digits and a probability")
