"""Images that already are a UCI digit (8x8, or a blocky upscale of one) reach the 8x8 models unchanged."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest
from PIL import Image

from digit_contract.errors import NoInk
from digit_frontend.pipeline import prepare_image
from tests.factories import encode
from tests.service.conftest import REPO
from training.data import RawSplit
from training.ink_writers import uci_split

STORE = REPO / "model_store"


@pytest.fixture(scope="module")
def uci_test() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    return uci_split("test")


def as_png(counts: npt.NDArray[np.floating], *, scale: int = 1, dark_ink: bool = False) -> bytes:
    """The counts as an 8-bit greyscale PNG, ink white (or dark on light), blown up by `scale` with nearest."""
    grey = np.rint(np.asarray(counts) * 255.0 / 16.0).astype(np.uint8)
    if dark_ink:
        grey = 255 - grey
    image = Image.fromarray(grey).resize((8 * scale, 8 * scale), Image.Resampling.NEAREST)
    return encode(image)


@pytest.mark.parametrize(("scale", "dark_ink"), [(1, False), (1, True), (4, False), (16, True)])
def test_an_8x8_digit_keeps_its_counts(uci_test: tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]],
                                       scale: int, dark_ink: bool) -> None:
    images, _ = uci_test
    for counts in images[:20]:
        prepared = prepare_image(as_png(counts, scale=scale, dark_ink=dark_ink), max_pixels=10**7)
        assert prepared.method == "uci-passthrough"
        np.testing.assert_array_equal(prepared.uci_blocks, counts.astype(np.uint8))
        assert prepared.pixels.shape == (28, 28) and prepared.pixels.max() == 255  # the MNIST models get a digit too


def test_a_smooth_image_of_8x8_sides_is_no_uci_digit() -> None:
    # A 64x64 drawing that is not made of constant 8x8 blocks goes through the normal front end.
    page = np.full((64, 64), 255, np.uint8)
    page[10:54, 30:35] = 0
    page[10:14, 22:35] = 40
    assert prepare_image(encode(page), max_pixels=10**7).method != "uci-passthrough"


def test_a_blank_8x8_image_is_refused() -> None:
    with pytest.raises(NoInk, match="8x8 image is blank"):
        prepare_image(encode(np.zeros((8, 8), np.uint8)), max_pixels=10**7)


def test_the_8x8_models_read_their_own_test_digits_sent_as_png_at_their_raw_accuracy(
    uci_test: tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]],
) -> None:
    images, labels = uci_test
    for name in ("digits8_sklearn_mlp", "digits8_keras_mlp"):
        session = ort.InferenceSession(str(STORE / name / "1" / "model.onnx"))
        raw = session.run(None, {"image": (images.reshape(-1, 64) / 16.0).astype(np.float32)})[0].argmax(axis=1)
        blocks = np.stack([prepare_image(as_png(c), max_pixels=10**7).uci_blocks for c in images])
        served = session.run(None, {"image": (blocks.reshape(-1, 64) / 16.0).astype(np.float32)})[0].argmax(axis=1)
        np.testing.assert_array_equal(served, raw)
        assert (served == labels).mean() > 0.95


UPSCALES = {
    "nearest to 300 px (37.5 px blocks)": (300, Image.Resampling.NEAREST),
    "bilinear to 256 px": (256, Image.Resampling.BILINEAR),
    "bicubic to 256 px": (256, Image.Resampling.BICUBIC),
    "lanczos to 200 px": (200, Image.Resampling.LANCZOS),
}


@pytest.mark.parametrize("upscale", sorted(UPSCALES))
def test_an_8x8_digit_upscaled_by_any_factor_or_smoothly_keeps_nearly_its_counts(upscale: str) -> None:
    # Before, only whole-number nearest upscales were recognised: 300 px nearest and every smooth
    # upscale went to the photo path, which read 4-15 of 60 such digits (training split, 8x8 model).
    side, resample = UPSCALES[upscale]
    images, _ = uci_split("train")
    for counts in images[:20]:
        grey = Image.fromarray(255 - np.rint(counts * 255.0 / 16.0).astype(np.uint8))
        prepared = prepare_image(encode(grey.resize((side, side), resample)), max_pixels=10**7)
        assert prepared.method == "uci-passthrough"
        assert np.abs(prepared.uci_blocks.astype(int) - counts.astype(int)).max() <= 1


def test_an_mnist_digit_upscaled_smoothly_is_no_uci_digit(mnist_test: RawSplit) -> None:
    # A 28x28 digit holds more than 8x8 can: its smooth upscale is not mistaken for an 8x8 one.
    for digit in mnist_test.images[:20]:
        big = Image.fromarray(255 - digit).resize((224, 224), Image.Resampling.BICUBIC)
        assert prepare_image(encode(big), max_pixels=10**7).method != "uci-passthrough"
