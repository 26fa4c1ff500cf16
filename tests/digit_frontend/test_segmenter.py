"""The learned front end: the store's ink segmenter, its card, and what it finds and refuses."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import cv2
import numpy as np
import numpy.typing as npt
import pytest

import digit_frontend.segmenter as segmenter_module
from digit_contract.errors import NoInk
from digit_contract.frontend_card import FRONTEND_DIR, SEGMENTER_NAME, SegmenterCard
from digit_contract.store import CARD_FILE, MODEL_FILE, latest_version, version_dir
from digit_frontend.pipeline import front_end_in_use, prepare_image
from digit_frontend.segmenter import InkSegmenter, check_certainty, fine_digit
from tests.factories import encode
from tests.service.conftest import REPO

STORE = REPO / "model_store"


@pytest.fixture(scope="module")
def segmenter() -> InkSegmenter:
    found = InkSegmenter.from_store(STORE)
    assert found is not None, "the store should hold the ink segmenter (python -m training.ink_segmenter)"
    return found


@pytest.fixture
def learned(segmenter: InkSegmenter) -> Iterator[InkSegmenter]:
    """The learned front end for one test, then whatever was installed before."""
    with front_end_in_use(segmenter):
        yield segmenter


def test_the_committed_card_describes_the_committed_file() -> None:
    frontend = STORE / FRONTEND_DIR
    version = latest_version(frontend, SEGMENTER_NAME)
    assert version is not None
    directory = version_dir(frontend, SEGMENTER_NAME, version)
    card = SegmenterCard.model_validate(json.loads((directory / CARD_FILE).read_text()))
    assert card.onnx_sha256 == hashlib.sha256((directory / MODEL_FILE).read_bytes()).hexdigest()
    assert set(card.validation) == {"coarse", "fine"}
    assert all(m.max_abs_diff_keras <= 1e-4 for m in card.validation.values())


@pytest.mark.parametrize("side", [96, 128, 200])
def test_the_network_maps_any_multiple_of_8_to_a_probability_map_of_its_size(segmenter: InkSegmenter, side: int) -> None:
    side -= side % 8
    out = segmenter.ink(np.random.default_rng(0).integers(0, 256, (side, side + 16), dtype=np.uint8))
    assert out.shape == (side, side + 16) and float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def page_photo(digit: npt.NDArray[np.uint8] | None, *, desk: int = 40, angle: float = 6.0) -> bytes:
    """A white page on a dark desk, slightly rotated, with a dark digit in its middle (or none):
    the scene round 2's rules turned into a white page with a black hole, read as 0."""
    page = np.full((360, 280), 235, np.uint8)
    if digit is not None:
        ink = cv2.resize(digit, (100, 100), interpolation=cv2.INTER_CUBIC)
        page[130:230, 90:190] = np.minimum(page[130:230, 90:190], 255 - ink)
    frame = np.full((480, 480), desk, np.uint8)
    matrix = cv2.getRotationMatrix2D((140, 180), angle, 1.0)
    matrix[:, 2] += (100, 60)
    warped = cv2.warpAffine(page, matrix, (480, 480), borderValue=0)
    cover = cv2.warpAffine(np.ones_like(page), matrix, (480, 480), borderValue=0).astype(bool)
    frame[cover] = warped[cover]
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def test_a_page_on_a_dark_desk_is_read_for_its_digit_not_as_a_page(learned: InkSegmenter, mnist_test) -> None:  # type: ignore[no-untyped-def]
    found = 0
    for image in mnist_test.images[:20]:
        prepared = prepare_image(page_photo(image), max_pixels=10**7)
        assert prepared.method == "learned"
        _, _, w, h = prepared.box
        found += w < 200 and h < 200  # the digit's box, not the page's (280 x 360)
    assert found >= 18


@pytest.mark.parametrize("scene", ["blank page", "page edge", "desk"])
def test_no_digit_is_refused_with_the_reason(learned: InkSegmenter, scene: str) -> None:
    if scene == "blank page":
        data = page_photo(None)
    elif scene == "page edge":
        frame = np.full((400, 400), 50, np.uint8)
        frame[:, 250:] = 230
        data = encode(frame, "JPEG", quality=90)
    else:
        rng = np.random.default_rng(3)
        data = encode(cv2.GaussianBlur(rng.integers(40, 90, (300, 400), dtype=np.uint8), (0, 0), 3), "JPEG")
    # A flat desk goes to the classical rules ("no ink found"), a photo to the segmenter ("no digit found").
    with pytest.raises(NoInk, match=r"no (digit|ink) found"):
        prepare_image(data, max_pixels=10**7)


def test_ink_along_the_crop_border_is_refused_as_an_edge() -> None:
    ink = np.zeros((96, 96), np.uint8)
    ink[:, :30] = 1  # a band down the whole left side: a page edge, not a digit
    with pytest.raises(NoInk, match="run off the crop"):
        fine_digit(ink)


def test_strokes_the_network_half_believes_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    mask = np.zeros((96, 96), np.uint8)
    mask[30:66, 46:50] = 1
    monkeypatch.setattr(segmenter_module, "FINE_MIN_CERTAINTY", 0.8)
    check_certainty(np.where(mask > 0, 0.95, 0.0).astype(np.float32), mask)  # a pen's stroke: kept
    with pytest.raises(NoInk, match=r"unsure these are pen strokes \(certainty 0.60\)"):
        check_certainty(np.where(mask > 0, 0.6, 0.0).astype(np.float32), mask)


def test_a_transparent_canvas_keeps_its_alpha_as_the_ink(learned: InkSegmenter) -> None:
    rgba = np.zeros((300, 300, 4), np.uint8)
    rgba[60:240, 140:160] = (0, 0, 0, 255)
    assert prepare_image(encode(rgba), max_pixels=10**7).method == "mnist"  # the classical rules: alpha is ink


def test_a_faint_stretch_of_a_stroke_stays_with_the_digit() -> None:
    """Hysteresis: the weak ink that connects to a kept stroke is kept whole (a pencil's light
    pressure), weak ink on its own is not (a shadow's edge the network half believes)."""
    strong = np.zeros((96, 96), np.uint8)
    strong[30:66, 46:50] = 1  # the stem of a digit, through the crop's middle
    weak = strong.copy()
    weak[10:30, 46:50] = 1  # its faint top, only over the lower threshold
    weak[80:84, 5:20] = 1  # a faint mark far from it
    mask = fine_digit(strong, weak)
    assert mask[10:30, 46:50].all() and not mask[80:84, 5:20].any()
    assert not fine_digit(strong)[10:30, 46:50].any()  # without the weak view only the stem
