"""The MNIST recipe on uploads: modes, formats, orientation, inversion, cropping, centring, limits."""

from __future__ import annotations

import struct
import time
import zlib

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageDraw

from digit_contract.errors import InvalidImage, NoInk, TooManyPixels, UnsupportedImage
from digit_contract.inputs import IMAGE_SIDE, MNIST_INPUT
from digit_frontend.decode import SUPPORTED_FORMATS
from digit_frontend.framing import stroke_width
from digit_frontend.model_input import frame, model_input
from digit_frontend.pipeline import PreparedImage, prepare_image
from tests.factories import bar_digit, encode
from training.data import RawSplit

LIMIT = 6_000_000


def prepare(data: bytes, max_pixels: int = LIMIT) -> PreparedImage:
    return prepare_image(data, max_pixels=max_pixels)


def l_shape(size: int = 300) -> npt.NDArray[np.uint8]:
    """Dark "L" on white: a vertical stroke with a foot to the right (asymmetric, for orientation)."""
    page = np.full((size, size), 255, dtype=np.uint8)
    s = size // 10
    page[2 * s : 8 * s, 3 * s : 4 * s] = 0
    page[7 * s : 8 * s, 3 * s : 7 * s] = 0
    return page


def centre_of_mass(pixels: npt.NDArray[np.uint8]) -> tuple[float, float]:
    weights = pixels.astype(np.float64)
    rows, cols = np.mgrid[0:IMAGE_SIDE, 0:IMAGE_SIDE]
    return float((weights * rows).sum() / weights.sum()), float((weights * cols).sum() / weights.sum())


def ink_box(pixels: npt.NDArray[np.uint8]) -> tuple[int, int]:
    """(height, width) of the bounding box of non-zero pixels."""
    rows, cols = np.flatnonzero(pixels.any(axis=1)), np.flatnonzero(pixels.any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def assert_mnist_shaped(image: PreparedImage) -> None:
    """White digit on black, longest side about 20 px, centre of mass at (14, 14) within half a pixel."""
    pixels = image.pixels
    assert pixels.shape == (IMAGE_SIDE, IMAGE_SIDE) and pixels.dtype == np.uint8
    assert pixels.max() == 255
    assert pixels[0].max() == pixels[-1].max() == pixels[:, 0].max() == pixels[:, -1].max() == 0
    assert max(ink_box(pixels)) in (20, 21, 22)  # 20 px plus Lanczos ringing at the edges
    row, col = centre_of_mass(pixels)
    assert abs(row - 14) <= 0.5 and abs(col - 14) <= 0.5


# -- the recipe --------------------------------------------------------------------------------


def test_an_mnist_digit_passes_through_unchanged(mnist_test: RawSplit) -> None:
    for digit in mnist_test.images[:50]:
        prepared = prepare(encode(digit))
        assert prepared.method == "passthrough"
        assert np.array_equal(prepared.pixels, digit)


def test_dark_ink_on_light_paper_is_inverted() -> None:
    prepared = prepare(encode(bar_digit()))
    assert (prepared.method, prepared.inverted) == ("mnist", True)
    assert_mnist_shaped(prepared)


def test_light_ink_on_dark_paper_is_not_inverted() -> None:
    prepared = prepare(encode(bar_digit(ink=255, paper=0)))
    assert prepared.inverted is False
    assert_mnist_shaped(prepared)


def test_an_off_centre_digit_is_cropped_scaled_and_centred_by_mass() -> None:
    page = np.full((600, 800), 250, dtype=np.uint8)
    page[20:220, 600:780] = l_shape(200)[:, 10:190]  # top right corner
    prepared = prepare(encode(page))
    assert_mnist_shaped(prepared)
    centred = prepare(encode(l_shape(200)[:, 10:190]))
    assert np.abs(prepared.pixels.astype(int) - centred.pixels.astype(int)).mean() < 2


def test_aspect_ratio_is_kept() -> None:
    prepared = prepare(encode(bar_digit()))  # a tall, narrow stroke
    height, width = ink_box(prepared.pixels)
    assert height in (20, 21, 22) and width <= 5


def test_a_huge_image_is_reduced_quickly() -> None:
    page = np.full((2400, 2400), 255, dtype=np.uint8)
    page[400:2000, 1000:1300] = 0
    start = time.perf_counter()
    prepared = prepare(encode(page))
    assert time.perf_counter() - start < 2.0
    assert_mnist_shaped(prepared)


def test_a_tiny_image_is_scaled_up() -> None:
    page = np.full((7, 5), 255, dtype=np.uint8)
    page[1:6, 2] = 0
    prepared = prepare(encode(page))
    assert prepared.method == "mnist"
    assert ink_box(prepared.pixels)[0] in (20, 21, 22)


def test_thin_strokes_are_thickened_to_mnist_width() -> None:
    page = Image.new("L", (400, 400), 255)
    ImageDraw.Draw(page).line([(200, 60), (200, 340)], fill=0, width=2)  # a 2 px pen on a 400 px canvas
    prepared = prepare(encode(page))
    assert stroke_width(prepared.pixels / 255.0) >= 1.5


def test_several_prepared_images_become_one_normalised_batch(mnist_test: RawSplit) -> None:
    batch = model_input([frame(prepare(encode(digit)), "mnist") for digit in mnist_test.images[:3]], MNIST_INPUT)
    assert batch.shape == (3, 28, 28, 1) and batch.dtype == np.float32
    assert np.array_equal(batch[..., 0], mnist_test.images[:3] / np.float32(255.0))


# -- modes and formats -------------------------------------------------------------------------


def test_rgb_matches_greyscale() -> None:
    grey = bar_digit()
    assert np.array_equal(prepare(encode(np.stack([grey] * 3, axis=-1))).pixels, prepare(encode(grey)).pixels)


@pytest.mark.parametrize("ink", [0, 255], ids=["black-ink", "white-ink"])
def test_transparent_canvas_drawing_works_with_dark_or_light_ink(ink: int) -> None:
    alpha = 255 - bar_digit()  # the stroke is opaque, the rest fully transparent
    rgba = np.zeros((*alpha.shape, 4), dtype=np.uint8)
    rgba[..., :3] = ink
    rgba[..., 3] = alpha
    prepared = prepare(encode(rgba))
    assert prepared.mode == "RGBA"
    assert np.array_equal(prepared.pixels, prepare(encode(bar_digit())).pixels)


def test_opaque_rgba_is_read_as_rgb() -> None:
    grey = bar_digit()
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    assert np.array_equal(prepare(encode(rgba)).pixels, prepare(encode(grey)).pixels)


def test_palette_image_matches_greyscale() -> None:
    grey = bar_digit()
    palette = Image.fromarray(grey).convert("P")
    prepared = prepare(encode(palette))
    assert prepared.mode == "P"
    assert np.array_equal(prepared.pixels, prepare(encode(grey)).pixels)


def test_palette_with_transparency_is_composited() -> None:
    image = Image.new("P", (100, 100), 0)
    image.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    ImageDraw.Draw(image).rectangle([45, 15, 54, 84], fill=1)  # black stroke, index 1
    image.info["transparency"] = 0  # the white background is transparent
    prepared = prepare(encode(image))
    assert prepared.mode == "P"  # the ink is where the canvas is opaque, whatever its colour
    assert_mnist_shaped(prepared)


def test_sixteen_bit_greyscale_matches_eight_bit() -> None:
    grey = bar_digit()
    sixteen = grey.astype(np.uint16) * 257
    prepared = prepare(encode(Image.fromarray(sixteen)))
    assert prepared.mode.startswith("I;16")
    assert np.array_equal(prepared.pixels, prepare(encode(grey)).pixels)


@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_every_supported_format_decodes(fmt: str) -> None:
    prepared = prepare(encode(np.stack([bar_digit()] * 3, axis=-1), fmt))
    assert prepared.format == fmt
    assert_mnist_shaped(prepared)


def test_exif_orientation_is_applied() -> None:
    upright = Image.fromarray(l_shape())
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a camera held sideways stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    with_exif = prepare(encode(stored, "JPEG", exif=exif.tobytes(), quality=95)).pixels.astype(int)
    expected = prepare(encode(upright, "JPEG", quality=95)).pixels.astype(int)
    ignored = prepare(encode(stored, "JPEG", quality=95)).pixels.astype(int)
    assert np.abs(with_exif - expected).mean() < 3
    assert np.abs(ignored - expected).mean() > 20


# -- refusals ----------------------------------------------------------------------------------


def test_empty_file_is_refused() -> None:
    with pytest.raises(InvalidImage, match=r"^the image file is empty$"):
        prepare(b"")


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG not really" + bytes(range(256)),
        b"hello, world",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><text>7</text></svg>',
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n",  # EPS would run Ghostscript: never tried
    ],
    ids=["random-bytes", "text", "svg", "eps"],
)
def test_what_is_not_a_supported_image_is_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedImage) as caught:
        prepare(data)
    assert caught.value.status_code == 415
    assert caught.value.message == ("the file is not an image in a supported format (PNG, JPEG, BMP, GIF, WebP or TIFF): "
     "export or save it as a JPEG or PNG and send that")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_is_refused(fmt: str) -> None:
    rng = np.random.default_rng(0)
    data = encode(rng.integers(0, 255, (200, 200), dtype=np.uint8), fmt)
    with pytest.raises(InvalidImage) as caught:
        prepare(data[: len(data) // 2])
    assert (caught.value.status_code, caught.value.message) == (400, "the image data is truncated or corrupt")


def test_too_many_pixels_is_refused_from_the_header() -> None:
    with pytest.raises(TooManyPixels, match=r"^the image is 11x10 = 110 pixels; the limit is 100$"):
        prepare(encode(np.zeros((10, 11), dtype=np.uint8)), max_pixels=100)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares a huge canvas (a decompression bomb's signature)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = b"IDAT" + zlib.compress(b"\0" * 64)
    body += struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
    return b"\x89PNG\r\n\x1a\n" + body


@pytest.mark.parametrize(("width", "height"), [(3000, 3000), (100_000, 100_000)], ids=["over-limit", "bomb"])
def test_a_decompression_bomb_is_refused_without_decoding(width: int, height: int) -> None:
    start = time.perf_counter()
    with pytest.raises(TooManyPixels) as caught:
        prepare(png_declaring(width, height))
    assert time.perf_counter() - start < 0.5
    assert caught.value.status_code == 413


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.full((100, 100), 255, dtype=np.uint8), "no ink found: the image is blank or has too little contrast to hold a digit"),
        (np.full((28, 28), 0, dtype=np.uint8), "no ink found: the image is blank"),
        (np.zeros((50, 50, 4), dtype=np.uint8), "no ink found: the image is fully transparent"),
        (np.full((100, 100), 200, dtype=np.uint8) - np.eye(100, dtype=np.uint8) * 20, "no ink found: the image is blank or has too little contrast to hold a digit"),
    ],
    ids=["white-page", "black-28x28", "transparent", "faint-scratch"],
)
def test_an_image_without_ink_is_refused(image: npt.NDArray[np.uint8], message: str) -> None:
    with pytest.raises(NoInk) as caught:
        prepare(encode(image))
    assert (caught.value.status_code, caught.value.message) == (422, message)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 2), (3, 60), (60, 3), (5, 5), (29, 27)])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_tiny_and_thin_images_answer_or_refuse_cleanly(shape: tuple[int, int], fmt: str) -> None:
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    for pixels in (rng.integers(0, 256, shape, dtype=np.uint8), np.zeros(shape, np.uint8),
                   np.full(shape, 255, np.uint8)):
        try:
            prepared = prepare(encode(pixels, fmt))
        except NoInk:
            continue  # the one refusal an image this small may get
        assert prepared.pixels.shape == (IMAGE_SIDE, IMAGE_SIDE) and prepared.pixels.dtype == np.uint8


def test_greyscale_with_premultiplied_alpha_is_read() -> None:
    """Mode `La` (a TIFF with associated alpha), which Pillow cannot convert to RGBA."""
    plane = np.zeros((64, 64, 2), np.uint8)
    plane[10:50, 30:36] = 255
    data = bytearray(encode(Image.fromarray(plane, "LA"), "TIFF"))
    tag = data.find(struct.pack("<HHI", 338, 3, 1))  # ExtraSamples: 2 (unassociated) -> 1 (associated)
    data[tag + 8 : tag + 10] = struct.pack("<H", 1)
    prepared = prepare(bytes(data))
    assert prepared.mode == "La"
    assert_mnist_shaped(prepared)


@pytest.mark.parametrize("bad", [np.nan, -np.inf, np.inf])
def test_float_images_with_non_finite_pixels_are_read_as_finite(bad: float) -> None:
    page = np.full((64, 64), 1.0, np.float32)
    page[10:50, 30:36] = 0.0
    page[2, 2] = bad
    prepared = prepare(encode(Image.fromarray(page, "F"), "TIFF"))
    assert_mnist_shaped(prepared)
