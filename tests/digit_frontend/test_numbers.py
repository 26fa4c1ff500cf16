"""Numbers, not only digits (issue 26): every digit of one line, in reading order, in groups, touching
digits split, a slanted line followed; each digit framed as /predict frames one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from bench.numbers.compose import Layout, compose_number
from bench.numbers.reading import onnx_reader
from digit_contract.errors import NoInk
from digit_frontend import numbers
from digit_frontend.decode import decode_image
from digit_frontend.numbers import (
    FEATURES,
    VERIFIER,
    FoundNumber,
    Reader,
    candidate_features,
    choose_number,
    find_number_in,
    number_candidates,
    read_number_image,
    text_of,
    verifier_for,
)
from digit_frontend.pipeline import PreparedImage, front_end_in_use
from tests.factories import encode
from training.data import RawSplit

LIMIT = 6_000_000


@pytest.fixture(scope="module", autouse=True)
def classical() -> Iterator[None]:
    """The classical rules find the ink here (the learned front end has its own tests): deterministic."""
    with front_end_in_use(None):
        yield


@pytest.fixture(scope="module")
def reader() -> Reader:
    return onnx_reader()


def first_of(mnist: RawSplit, text: str) -> list[npt.NDArray[np.uint8]]:
    """The first sample image of each digit of `text` (clear, upright writers of the test sample)."""
    return [mnist.images[int(np.flatnonzero(mnist.labels == int(c))[0])] for c in text if c != " "]


def scan(number: npt.NDArray[np.uint8], height: int = 60, pad: int = 40) -> bytes:
    """A white-on-black number as a grey scan: dark ink on white paper, digits `height` px tall."""
    scale = height / 20.0
    big = cv2.resize(number, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return encode(255 - np.pad(big, pad))


def read(data: bytes, reader: Reader) -> tuple[str, FoundNumber]:
    found = read_number_image(data, max_pixels=LIMIT, read=reader)
    assert found.probabilities is not None
    return text_of([int(d) for d in found.probabilities.argmax(axis=1)], found.groups), found


def test_digits_come_in_reading_order_each_framed_as_predict_frames_one(mnist_test: RawSplit, reader: Reader) -> None:
    number = compose_number(first_of(mnist_test, "2047"), Layout(), np.random.default_rng(0))
    text, found = read(scan(number), reader)
    assert text == "2047"
    lefts = [d.box[0] for d in found.digits]
    assert lefts == sorted(lefts)
    assert all(d.pixels.shape == (28, 28) and d.pixels.max() == 255 for d in found.digits)


def test_a_wide_gap_starts_a_new_group(mnist_test: RawSplit, reader: Reader) -> None:
    number = compose_number(first_of(mnist_test, "12500"), Layout(groups=(2, 3)), np.random.default_rng(1))
    text, found = read(scan(number), reader)
    assert text == "12 500"
    assert found.groups == [0, 0, 1, 1, 1]


def test_touching_digits_are_split(mnist_test: RawSplit, reader: Reader) -> None:
    number = compose_number(first_of(mnist_test, "300"), Layout(touching=frozenset({1})), np.random.default_rng(2))
    # The two zeros really are one stroke: one connected piece of ink.
    count, _ = cv2.connectedComponents((number > 127).astype(np.uint8))
    assert count - 1 <= 2
    text, _ = read(scan(number), reader)
    assert text == "300"


@pytest.mark.parametrize(("slant", "angle"), [(0.35, 0.0), (0.0, 20.0), (-0.2, -15.0)])
def test_a_slanted_line_or_slanted_writing_is_followed(mnist_test: RawSplit, reader: Reader, slant: float,
                                                      angle: float) -> None:
    number = compose_number(first_of(mnist_test, "4721"), Layout(slant=slant, angle=angle), np.random.default_rng(3))
    text, found = read(scan(number), reader)
    assert text == "4721"
    assert abs(found.angle - angle) < 6.0


def test_no_digit_is_no_ink() -> None:
    with pytest.raises(NoInk, match="no ink found"):
        read_number_image(encode(np.full((200, 300), 255, np.uint8)), max_pixels=LIMIT)


def test_a_lone_digit_is_a_one_digit_number(mnist_test: RawSplit, reader: Reader) -> None:
    text, found = read(scan(compose_number(first_of(mnist_test, "7"), Layout(), np.random.default_rng(4))), reader)
    assert (text, len(found.digits)) == ("7", 1)
    # An MNIST image as it is stays one digit, passed through as /predict passes it.
    text, found = read(encode(mnist_test.images[0]), reader)
    assert (text, found.digits[0].method) == (str(mnist_test.labels[0]), "passthrough")


def test_of_several_lines_the_one_nearest_the_centre_is_read(mnist_test: RawSplit, reader: Reader) -> None:
    rng = np.random.default_rng(5)
    lines = [compose_number(first_of(mnist_test, t), Layout(), rng) for t in ("19", "2047", "53")]
    width = max(line.shape[1] for line in lines)
    page = np.concatenate([np.pad(line, ((6, 6), (0, width - line.shape[1]))) for line in lines])
    text, found = read(scan(page), reader)
    assert text == "2047"
    assert found.other_digits == 4


def test_text_joins_groups_with_one_space() -> None:
    assert text_of([1, 2, 5, 0, 0], [0, 0, 1, 1, 1]) == "12 500"
    assert text_of([7], [0]) == "7"


def test_a_touching_pair_no_wider_than_one_digit_is_split(mnist_test: RawSplit, reader: Reader) -> None:
    # A "1" joined to a "7" makes one piece less than a digit's height wide: the old rules never cut
    # such a piece and read "7"; a seam through the junction, judged by the model, finds both.
    number = compose_number(first_of(mnist_test, "17"), Layout(touching=frozenset({0})), np.random.default_rng(1))
    count, _ = cv2.connectedComponents((number > 127).astype(np.uint8))
    assert count - 1 == 1
    text, _ = read(scan(number), reader)
    assert text == "17"


def test_candidates_found_once_serve_every_reader(mnist_test: RawSplit, reader: Reader) -> None:
    # POST /models/compare?read=true finds the line once and lets each model choose its cuts: the
    # two halves give what find_number_in gives, and a second reader sees the same candidates.
    data = scan(compose_number(first_of(mnist_test, "300"), Layout(touching=frozenset({1})), np.random.default_rng(2)))
    whole = find_number_in(decode_image(data, max_pixels=LIMIT), reader)
    candidates = number_candidates(decode_image(data, max_pixels=LIMIT))
    seen: list[int] = []

    def counting(images: Sequence[PreparedImage]) -> npt.NDArray[np.float32]:
        seen.append(len(images))
        return reader(images)

    for _ in range(2):
        found = choose_number(candidates, counting, verifier=VERIFIER)
        assert found.probabilities is not None and whole.probabilities is not None
        assert text_of([int(d) for d in found.probabilities.argmax(axis=1)], found.groups) == "300"
        assert [d.box for d in found.digits] == [d.box for d in whole.digits]
        np.testing.assert_allclose(found.probabilities, whole.probabilities, atol=1e-6)
    assert seen == [int(candidates.framed.sum())] * 2


def test_the_verifier_weighs_every_feature_of_every_candidate(mnist_test: RawSplit, reader: Reader) -> None:
    data = scan(compose_number(first_of(mnist_test, "35"), Layout(touching=frozenset({0})), np.random.default_rng(2)))
    candidates = number_candidates(decode_image(data, max_pixels=LIMIT))
    assert candidates.strip is not None
    probabilities = reader(candidates.images)
    features = candidate_features(candidates.strip, probabilities)
    assert features.shape == (len(candidates.images), len(FEATURES)) == (len(candidates.images), VERIFIER.size)
    assert np.isfinite(features).all()


def test_a_digit_cut_into_confident_pieces_is_read_whole(mnist_test: RawSplit, reader: Reader,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # A touching "35" whose 3 the seams cut in two: the model reads the pieces as an 8 and a 4, surely
    # enough that the model's readings alone choose "845"; the verifier, which sees that both pieces
    # are narrow and cut from their neighbours, chooses the whole 3.
    data = scan(compose_number(first_of(mnist_test, "35"), Layout(touching=frozenset({0})), np.random.default_rng(2)))
    assert read(data, reader)[0] == "35"
    monkeypatch.setattr(numbers, "VERIFIER", np.zeros_like(VERIFIER))
    assert read(data, reader)[0] == "845"


def test_only_the_model_the_verifier_was_fitted_on_is_weighed_by_it(mnist_test: RawSplit, reader: Reader) -> None:
    # The verifier learnt cnn_augmented's readings; another model's candidates are chosen by their
    # readings alone (with it, cnn and mlp read fewer validation numbers right).
    assert verifier_for("cnn_augmented") is VERIFIER
    assert verifier_for("cnn") is None and verifier_for("mlp") is None
    data = scan(compose_number(first_of(mnist_test, "35"), Layout(touching=frozenset({0})), np.random.default_rng(2)))
    candidates = number_candidates(decode_image(data, max_pixels=LIMIT))
    texts = {}
    for model in ("cnn_augmented", "another"):
        found = choose_number(candidates, reader, verifier=verifier_for(model))
        assert found.probabilities is not None
        texts[model] = text_of([int(d) for d in found.probabilities.argmax(axis=1)], found.groups)
    assert texts == {"cnn_augmented": "35", "another": "845"}
