"""The pair reader (issue 26): two touching digits read at once, where no cut through the ink parts them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bench.numbers.reading import onnx_reader
from digit_contract.frontend_card import PairReaderCard
from digit_frontend.numbers import Slot, Strip, choose_digits, read_number_image
from digit_frontend.pairs import FRAME, PAIR_HEIGHT, PairReader, frame_pair
from digit_frontend.pipeline import front_end_in_use, use_front_end

STORE = Path(__file__).resolve().parents[2] / "model_store"


@pytest.fixture(scope="module")
def pair_reader() -> PairReader:
    reader = PairReader.from_store(STORE)
    assert reader is not None, "the store ships a pair reader"
    return reader


@pytest.fixture
def with_pairs(pair_reader: PairReader) -> Iterator[PairReader]:
    """The classical rules find the ink (deterministic), the pair reader reads touching digits."""
    with front_end_in_use(None, pair_reader):
        yield pair_reader


def test_a_candidate_is_framed_twenty_pixels_tall_and_centred() -> None:
    mask = np.zeros((48, 60), np.uint8)
    mask[:, 5:55] = 1
    framed = frame_pair(mask[:, 5:55])
    assert framed.shape == FRAME and framed.dtype == np.float32
    rows, cols = np.flatnonzero(framed.max(axis=1) > 0.5), np.flatnonzero(framed.max(axis=0) > 0.5)
    assert len(rows) == PAIR_HEIGHT
    assert abs((rows[0] + rows[-1]) / 2 - (FRAME[0] - 1) / 2) <= 1
    assert abs((cols[0] + cols[-1]) / 2 - (FRAME[1] - 1) / 2) <= 1


def test_a_very_wide_candidate_is_framed_to_the_frames_width() -> None:
    framed = frame_pair(np.ones((10, 200), np.uint8))
    cols = np.flatnonzero(framed.max(axis=0) > 0.5)
    assert len(cols) <= FRAME[1] and framed.max() == pytest.approx(1.0)


def test_the_stored_reader_has_a_valid_card_and_reads_two_distributions(pair_reader: PairReader) -> None:
    card = PairReaderCard.model_validate(json.loads((pair_reader.path.parent / "card.json").read_text()))
    assert card.validation.pairs_read > 0.8
    reading = pair_reader.read([np.ones((20, 40), np.uint8), np.ones((20, 20), np.uint8)])
    assert reading.left.shape == reading.right.shape == (2, 10) and reading.pair.shape == (2,)
    np.testing.assert_allclose(reading.left.sum(axis=1), 1.0, atol=1e-4)


def test_a_reader_file_its_card_does_not_describe_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(STORE / "frontend" / "pair_reader", store / "frontend" / "pair_reader")
    model = next((store / "frontend" / "pair_reader").glob("*/model.onnx"))
    model.write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="is not the file its card describes"):
        PairReader.from_store(store)


def test_without_a_reader_in_the_store_there_is_none(tmp_path: Path) -> None:
    assert PairReader.from_store(tmp_path) is None


def _strip(widths: list[int]) -> Strip:
    """Primitives side by side, each `width` px wide and a digit's height; candidates of one or two."""
    height, left, primitives = 48, 0, []
    for width in widths:
        primitives.append(Slot(np.zeros(0, bool), np.ones((height, width), np.uint8), (left, 0, width, height),
                               float(left), float(left + width - 1)))
        left += width + 10
    candidates = [(i, i + 1, p, 0.0) for i, p in enumerate(primitives)]
    return Strip(primitives, candidates, 0.0, float(height))


def test_a_pair_reading_wins_only_where_it_reads_better_than_the_digit_alone() -> None:
    strip = _strip([30, 60])
    singles = np.log(np.array([0.9, 0.4]))
    assert choose_digits(strip, singles) == [(0, False), (1, False)]
    sure_pair = np.array([-np.inf, np.log(0.95)])
    assert choose_digits(strip, singles, sure_pair) == [(0, False), (1, True)]
    unsure_pair = np.array([-np.inf, np.log(0.2)])
    assert choose_digits(strip, singles, unsure_pair) == [(0, False), (1, False)]


TOUCHING = Path(__file__).resolve().parents[1] / "data" / "numbers" / "touching-1000.png"
"""MNIST test digits "1000" as a grey scan, the 1's stroke running into the first 0 (bench.numbers.compose)."""


def test_a_one_run_into_a_zero_is_read_as_a_pair_where_cuts_misread_it(with_pairs: PairReader) -> None:
    reader = onnx_reader()
    found = read_number_image(TOUCHING.read_bytes(), max_pixels=6_000_000, read=reader)
    assert found.probabilities is not None
    assert "".join(str(int(d)) for d in found.probabilities.argmax(axis=1)) == "1000"
    assert found.paired == (True, True, False, False)
    # Each side of the pair has its own box, left to right, inside the pair's ink.
    (x0, _, w0, _), (x1, _, w1, _) = found.digits[0].box, found.digits[1].box
    assert x0 < x1 and x0 + w0 <= x1 + w1
    use_front_end(None, None)
    cut = read_number_image(TOUCHING.read_bytes(), max_pixels=6_000_000, read=reader)
    assert cut.probabilities is not None and not cut.paired
    assert "".join(str(int(d)) for d in cut.probabilities.argmax(axis=1)) != "1000"
