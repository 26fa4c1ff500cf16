"""Load the image front end's model with the classifiers: the ink segmenter, or the classical rules.

The segmenter lives in the store beside the classifiers (`frontend/ink_segmenter/<version>/`, with
its card) and loads, like them, when the models load. A store without one, or with one that fails
to load or to pass its check, serves with the classical rules and says so in the log: finding
digits less well is better than serving none.
"""

from __future__ import annotations

import logging

import numpy as np

from digit_frontend.segmenter import InkSegmenter
from service.settings import Settings

log = logging.getLogger(__name__)


def load_front_end(settings: Settings) -> InkSegmenter | None:
    """The segmenter to find digits with, or None for the classical rules."""
    if settings.front_end == "classical":
        log.info("front end: the classical rules (DIGITS_FRONT_END=classical)")
        return None
    try:
        segmenter = InkSegmenter.from_store(settings.model_store)
        if segmenter is None:
            log.warning("front end: no ink segmenter in %s/frontend; using the classical rules", settings.model_store)
            return None
        check_segmenter(segmenter)
    except Exception as exc:  # a broken file or card: keep serving, with the rules
        log.error("front end: the ink segmenter failed to load (%s); using the classical rules", exc)
        return None
    log.info("front end: the ink segmenter %s", segmenter.path)
    return segmenter


def check_segmenter(segmenter: InkSegmenter) -> None:
    """Run the network once at each of its sizes: the output must be a probability map of the input's size.

    Raises:
        ValueError: it is not.
    """
    for side in (segmenter.coarse_side, segmenter.fine_side):
        out = segmenter.ink(np.full((side, side), 200, np.uint8))
        if out.shape != (side, side) or not np.isfinite(out).all() or out.min() < 0 or out.max() > 1:
            raise ValueError(f"the segmenter's output at {side} px is not a probability map of that size")
