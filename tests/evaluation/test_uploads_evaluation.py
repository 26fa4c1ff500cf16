"""The user-style upload generator: reproducible, every condition a real file of the right kind.

Fast checks of evaluation only; how well the service reads these uploads is tested with the
preprocessing (the shipped files in tests/data/uploads are for those tests).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("cv2")  # the generator draws with OpenCV, as the pipeline it tests does

from PIL import Image, ImageOps

from evaluation import sources
from evaluation.render import (
    CANVAS_CONDITIONS,
    CONDITIONS,
    EXIF_ORIENTATION,
    FORMATS,
    MODES,
    PHOTO_CONDITIONS,
    TWELVE_MP,
    Upload,
    render_upload,
)
from training.data import TRAIN_IMAGES, TRAIN_LABELS, load_split

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "mnist-sample"
UPLOADS = Path(__file__).resolve().parents[1] / "data" / "uploads"
FAST_CONDITIONS = [c for c in CONDITIONS if c != "photo_12mp"]


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """A few MNIST training digits from the sample: the generator's input, not a model's test."""
    split, _ = load_split(SAMPLE, TRAIN_IMAGES, TRAIN_LABELS)
    return split.images[:40], split.labels[:40]


def render(digits: tuple[np.ndarray, np.ndarray], condition: str, seed: int) -> Upload:
    return render_upload(digits[0][seed % 40], condition, np.random.default_rng(seed))


def decode(upload: Upload) -> Image.Image:
    image = Image.open(io.BytesIO(upload.data))
    image.load()
    return image


def test_condition_names_are_unique_short_snake_case() -> None:
    assert len(set(CONDITIONS)) == len(CONDITIONS) >= 25
    assert all(c.replace("_", "").isalnum() and c.islower() and len(c) <= 20 for c in CONDITIONS)
    assert set(FORMATS) == set(MODES) == set(CONDITIONS)


@pytest.mark.parametrize("condition", ["canvas_black", "scan_grey", "photo_desk", "photo_exif", "chalkboard"])
def test_same_seed_gives_the_same_bytes(digits: tuple[np.ndarray, np.ndarray], condition: str) -> None:
    first, again, other = render(digits, condition, 3), render(digits, condition, 3), render(digits, condition, 4)
    assert first == again
    assert other.data != first.data


@pytest.mark.parametrize("condition", FAST_CONDITIONS)
def test_every_condition_renders_a_real_upload(digits: tuple[np.ndarray, np.ndarray], condition: str) -> None:
    upload = render(digits, condition, CONDITIONS.index(condition))
    image = decode(upload)
    assert upload.condition == condition
    assert image.format == upload.format == FORMATS[condition]
    assert image.mode == upload.mode == MODES[condition]
    upright = ImageOps.exif_transpose(image)
    assert upright.size == (upload.width, upload.height)
    pixels = upload.width * upload.height
    if condition in CANVAS_CONDITIONS:
        assert 300 <= upload.width <= 600 and 300 <= upload.height <= 600
    elif condition in PHOTO_CONDITIONS or condition in ("chalkboard", "white_on_black", "whiteboard"):
        assert 1_000_000 <= pixels <= 3_200_000
    x, y, w, h = upload.digit_box
    # Inside, and not cut off by the image's edge (a user frames what they wrote).
    assert x > 0 and y > 0 and x + w < upload.width and y + h < upload.height
    assert h >= 0.1 * upload.height or w >= 0.1 * upload.width  # a realistic size, not a speck


@pytest.mark.parametrize("condition", [c for c in CANVAS_CONDITIONS if c != "canvas_opaque"])
def test_canvas_alpha_carries_the_stroke(digits: tuple[np.ndarray, np.ndarray], condition: str) -> None:
    upload = render(digits, condition, 11)
    alpha = np.asarray(decode(upload))[..., 3]
    x, y, w, h = upload.digit_box
    # The box holds the ink of >= 25% coverage; only the anti-aliased fringe lies just outside.
    margin = 4 + max(w, h) // 10
    outside = np.ones_like(alpha, dtype=bool)
    outside[max(0, y - margin) : y + h + margin, max(0, x - margin) : x + w + margin] = False
    assert alpha[outside].max() == 0  # transparent everywhere but the stroke
    assert alpha[y : y + h, x : x + w].max() == 255


def test_the_digit_is_where_the_box_says(digits: tuple[np.ndarray, np.ndarray]) -> None:
    """Dark ink on light paper: the box is darker on average than the rest of a scan."""
    upload = render(digits, "scan_grey", 5)
    grey = np.asarray(decode(upload), dtype=np.float32)
    x, y, w, h = upload.digit_box
    assert grey[y : y + h, x : x + w].mean() < grey.mean() - 5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_photo_exif_stores_rotated_pixels_and_the_tag(digits: tuple[np.ndarray, np.ndarray], seed: int) -> None:
    upload = render(digits, "photo_exif", seed)
    image = decode(upload)
    orientation = image.getexif().get(EXIF_ORIENTATION)
    assert orientation == upload.exif_orientation
    assert orientation in (3, 6, 8)
    if orientation in (6, 8):
        assert image.size == (upload.height, upload.width)


def test_photo_12mp_is_a_full_size_phone_photo(digits: tuple[np.ndarray, np.ndarray]) -> None:
    upload = render(digits, "photo_12mp", 1)
    image = decode(upload)
    assert image.format == "JPEG" and image.size == TWELVE_MP == (upload.width, upload.height)
    assert 1_500_000 <= len(upload.data) <= 5_000_000


def test_render_refuses_an_unknown_condition_and_an_empty_digit(digits: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="unknown condition"):
        render_upload(digits[0][0], "photo_moon", np.random.default_rng(0))
    with pytest.raises(ValueError, match="no ink"):
        render_upload(np.zeros((28, 28), np.uint8), "scan_grey", np.random.default_rng(0))


def test_any_size_of_digit_image_renders(digits: tuple[np.ndarray, np.ndarray]) -> None:
    big = np.kron(digits[0][0], np.ones((5, 3), np.uint8))  # 140x84, not square
    upload = render_upload(big, "canvas_opaque", np.random.default_rng(0))
    assert decode(upload).size == (upload.width, upload.height)


def test_the_sample_is_not_the_validation_split() -> None:
    """The sample's training images are the models' training data: refusing them as validation
    keeps tuning honest."""
    with pytest.raises(sources.SourceUnavailable, match="not MNIST's validation split"):
        sources.mnist_split(SAMPLE, "validation", 5, seed=0)
    images, labels = sources.mnist_split(SAMPLE, "test", 5, seed=0)
    assert len(images) == len(labels) == 5 and images[0].shape == (28, 28)


def test_uci_digits_are_upscaled_white_on_black() -> None:
    pytest.importorskip("sklearn")
    images, labels = sources.uci_digits(20, seed=0)
    assert len(images) == 20 and set(labels.tolist()) <= set(range(10))
    assert images[0].shape == (40, 40) and images[0].dtype == np.uint8
    assert images[0][0].max() < 20 and images[0].max() > 200  # dark margin, bright ink


def test_font_digits_or_a_clear_message() -> None:
    if not sources.installed_fonts():
        with pytest.raises(sources.SourceUnavailable, match="apt-get install -y fonts-"):
            sources.font_digits()
        return
    images, labels = sources.font_digits()
    per_font = 10 * len(sources.FONT_SLANTS) * len(sources.FONT_ROTATIONS)
    assert len(images) == len(labels) == per_font * len(sources.installed_fonts())
    assert sorted(set(labels.tolist())) == list(range(10))


def test_shipped_uploads_match_their_manifest() -> None:
    manifest = json.loads((UPLOADS / "manifest.json").read_text())
    entries = manifest["uploads"]
    shipped = [c for c in CONDITIONS if c not in manifest["not_shipped"]]
    assert sorted({e["condition"] for e in entries}) == sorted(shipped)
    assert all(sum(e["condition"] == c for e in entries) == 3 for c in shipped)
    for entry in entries:
        image = Image.open(UPLOADS / entry["file"])
        assert image.format == entry["format"] == FORMATS[entry["condition"]]
        assert ImageOps.exif_transpose(image).size == (entry["width"], entry["height"])
        assert 0 <= entry["digit"] <= 9
    total = sum(path.stat().st_size for path in UPLOADS.iterdir())
    assert total < 1_600_000


# -- recording the validation figures for the service ------------------------------------------


def test_a_validation_run_is_recorded_where_the_service_reads_it(tmp_path: Path) -> None:
    from digit_contract.store import read_upload_accuracy
    from evaluation.evaluate import record_upload_accuracy

    report = {"split": "validation", "seed": 0, "per_condition": 10, "created": "now",
              "sources": {"mnist": {"count": 250, "accuracy": {"cnn": 0.97, "mlp": 0.93}}}}
    record_upload_accuracy(report, tmp_path)
    assert read_upload_accuracy(tmp_path) == {"cnn": 0.97, "mlp": 0.93}


def _outcome(source: str, label: int, prepared: Any = None, error: str | None = None) -> Any:
    from evaluation.evaluate import Outcome

    return Outcome(source, "scan_grey", label, prepared, error, 1.0, 100)


def test_a_run_with_its_results_records_which_uploads_each_model_read_right(tmp_path: Path) -> None:
    from digit_contract.store import read_upload_evaluation
    from evaluation.evaluate import Results, record_upload_accuracy

    # Three MNIST uploads (the third refused), then a font digit that is not part of the record.
    outcomes = [_outcome("mnist", 3), _outcome("mnist", 5), _outcome("mnist", 7, error="NoInk"), _outcome("fonts", 1)]
    results = Results(outcomes, ["cnn", "mlp"], "cnn", onnx_sha256={"cnn": "a" * 64, "mlp": "b" * 64})
    results.predictions = {"cnn": np.array([3, 5, 7, 1]), "mlp": np.array([3, 6, 0, 1])}
    report = {"split": "validation", "seed": 0, "per_condition": 1, "created": "now",
              "sources": {"mnist": {"count": 3, "accuracy": {"cnn": 2 / 3, "mlp": 1 / 3}}}}
    record_upload_accuracy(report, tmp_path, results)
    evaluation = read_upload_evaluation(tmp_path)
    assert evaluation is not None and evaluation.uploads == 3
    # A refused upload is never right, even where the blank input happened to get its label.
    assert {name: bits.tolist() for name, bits in evaluation.correct.items()} == {
        "cnn": [True, True, False], "mlp": [True, False, False]}
    assert evaluation.onnx_sha256 == {"cnn": "a" * 64, "mlp": "b" * 64}


def test_recorded_bits_of_the_wrong_length_are_refused() -> None:
    from digit_contract.store import pack_correct, unpack_correct

    bits = np.array([True, False, True, True, False, False, True, False, True])
    assert unpack_correct(pack_correct(bits), 9).tolist() == bits.tolist()
    with pytest.raises(ValueError, match="16 bits recorded for 20 uploads"):
        unpack_correct(pack_correct(bits), 20)


def test_every_model_gets_the_uploads_as_its_card_says(tmp_path: Path) -> None:
    from digit_contract.inputs import InputSpec
    from digit_frontend.pipeline import prepare_image
    from evaluation.evaluate import model_inputs

    entry = json.loads((UPLOADS / "manifest.json").read_text())["uploads"][0]
    prepared = prepare_image((UPLOADS / entry["file"]).read_bytes(), max_pixels=40_000_000)
    outcomes = [_outcome("mnist", entry["digit"], prepared), _outcome("mnist", 0, error="NoInk")]
    (nhwc, framed), (flat, _), (blocks, _) = (model_inputs(outcomes, spec) for spec in (
        InputSpec(height=28, width=28), InputSpec(height=28, width=28, layout="flat"),
        InputSpec(height=8, width=8, layout="flat", levels=17, encoding="uci-8x8")))
    assert (nhwc.shape, flat.shape, blocks.shape) == ((2, 28, 28, 1), (2, 784), (2, 64))
    assert np.array_equal(nhwc[0].reshape(784), flat[0]) and nhwc[0].max() == 1.0
    # The 8x8 input is the UCI block counts / 16, as the service frames it.
    assert np.array_equal(blocks[0] * 16, prepared.uci_blocks.reshape(64).astype(np.float32))
    # A refused upload gets a blank input and is marked unframed.
    assert framed.tolist() == [True, False]
    assert not nhwc[1].any() and not flat[1].any() and not blocks[1].any()


def test_a_test_run_is_never_recorded(tmp_path: Path) -> None:
    from evaluation.evaluate import record_upload_accuracy

    report = {"split": "test", "sources": {"mnist": {"count": 1, "accuracy": {"cnn": 1.0}}}}
    with pytest.raises(ValueError, match="only a validation run may be recorded"):
        record_upload_accuracy(report, tmp_path)
    assert not list(tmp_path.iterdir())
