"""The writers: test-split digits turned into high-resolution ink masks.

Every glyph is a float32 mask in [0, 1] (1 = ink), cropped tight to its ink, about 200 px tall, so that it can
be shrunk to any size on the page without showing the pixels of its source.
"""

from __future__ import annotations

import gzip
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

MNIST_DIR = Path(os.environ.get("RENDERER_B_MNIST", "/work/shared/datasets/mnist"))

# One face per handwriting family (Debian's fonts-* packages); the six "Because We ..." faces of fonts-bwht
# are six different hands, so each counts as a writer. Regular weights only: a bold face of the same hand
# would be the same writer with a thicker pen.
FONT_FILES: dict[str, str] = {
    "Breip": "truetype/breip/Breip.ttf",
    "Because We Build": "opentype/bwht/BecauseWeBuild-Regular.otf",
    "Because We Connect": "opentype/bwht/BecauseWeConnect-Regular.otf",
    "Because We Create": "opentype/bwht/BecauseWeCreate-Regular.otf",
    "Because We Learn": "opentype/bwht/BecauseWeLearn-Regular.otf",
    "Because We Mentor": "opentype/bwht/BecauseWeMentor-Regular.otf",
    "Because We Organize": "opentype/bwht/BecauseWeOrganize-Regular.otf",
    "Comic Neue": "opentype/comic-neue/ComicNeue-Regular.otf",
    "Dancing Script": "opentype/dancingscript/DancingScript-Regular.otf",
    "DkgHandwriting": "truetype/fifthhorseman/dkg.ttf",
    "Humor Sans": "truetype/humor-sans/Humor-Sans.ttf",
    "Kristi": "truetype/kristi/Kristi.ttf",
}
FONT_ROOT = Path("/usr/share/fonts")


@dataclass(frozen=True)
class Glyph:
    """One handwritten digit as an ink mask (1 = ink), cropped tight."""

    ink: F32
    label: int
    source: str  # "mnist", "uci" or "font"
    index: int  # index in the test split; for fonts, the digit
    font: str | None = None


def _crop(mask: F32, threshold: float = 0.05) -> F32:
    ys, xs = np.nonzero(mask > threshold)
    if len(ys) == 0:
        return mask
    return np.ascontiguousarray(mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


def _smoothstep(x: F32, lo: float, hi: float) -> F32:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return np.asarray(t * t * (3.0 - 2.0 * t), dtype=np.float32)


def _read_idx(path: Path) -> U8:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist_test() -> tuple[U8, U8]:
    """The 10,000 MNIST test images (28x28, white on black) and their labels."""
    images = _read_idx(MNIST_DIR / "t10k-images-idx3-ubyte.gz")
    labels = _read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    return images, labels


def mnist_glyph(image: U8, label: int, index: int) -> Glyph:
    """Upscale a 28x28 MNIST digit x8 with a cubic filter, then sharpen its anti-aliased rim into a pen edge.

    The cubic upscale alone looks like a blurry photo of a screen; the smoothstep around mid-grey gives the
    outline a 2-3 px soft edge at 224 px, which is what a pen line looks like once the page is photographed.
    """
    big = cv2.resize(image.astype(np.float32) / 255.0, (224, 224), interpolation=cv2.INTER_CUBIC)
    big = cv2.GaussianBlur(big, (0, 0), 2.5)
    return Glyph(_crop(_smoothstep(big, 0.30, 0.55)), label, "mnist", index)


def load_uci_test() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """The UCI 8x8 digits' test split: ``train_test_split(X, y, test_size=0.2, random_state=42)`` (360 digits)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    _, x_test, _, y_test = train_test_split(digits.data, digits.target, test_size=0.2, random_state=42)
    return np.asarray(x_test, dtype=np.float64), np.asarray(y_test, dtype=np.int64)


def uci_glyph(counts: npt.NDArray[np.float64], label: int, index: int) -> Glyph:
    """Turn an 8x8 block-count image (0-16: how many of a 4x4 block's 16 pixels were ink) into a stroke shape.

    Each count is the ink coverage of a block of the original 32x32 bitmap, so a smooth (cubic) upscale
    followed by a blur of about one block estimates the coverage field, and the 50% level set of that field is
    the outline a pen of the original width would have drawn.
    """
    img = np.pad(counts.reshape(8, 8).astype(np.float32) / 16.0, 1)
    big = cv2.resize(img, (200, 200), interpolation=cv2.INTER_CUBIC)
    big = cv2.GaussianBlur(big, (0, 0), 5.0)
    big = big / max(float(big.max()), 1e-6)
    return Glyph(_crop(_smoothstep(big, 0.47, 0.55)), label, "uci", index)


def available_fonts() -> dict[str, Path]:
    """The handwriting fonts installed here (missing ones are skipped with a warning on stderr)."""
    found: dict[str, Path] = {}
    for name, rel in FONT_FILES.items():
        path = FONT_ROOT / rel
        if path.exists():
            found[name] = path
        else:
            print(f"renderer_b: font {name!r} not installed ({path}); skipped", file=sys.stderr)
    return found


def font_glyph(path: Path, name: str, digit: int, rotate_deg: float, shear: float) -> Glyph:
    """Render one digit of a handwriting font, rotated and slanted a little (people do not write upright)."""
    size = 240
    font = ImageFont.truetype(str(path), size=size)
    canvas = Image.new("L", (size * 2, size * 2), 0)
    ImageDraw.Draw(canvas).text((size, size), str(digit), fill=255, font=font, anchor="mm")
    mask = np.asarray(canvas, dtype=np.float32) / 255.0
    c = size
    # Slant (shear along x about the centre) then rotation, as one affine map.
    shear_m = np.array([[1.0, -shear, shear * c], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    rot = cv2.getRotationMatrix2D((c, c), rotate_deg, 1.0)
    affine = (np.vstack([rot, [0.0, 0.0, 1.0]]) @ shear_m)[:2]
    warped = cv2.warpAffine(mask, affine, (size * 2, size * 2), flags=cv2.INTER_LINEAR)
    ink = _crop(np.asarray(warped, dtype=np.float32))
    # Bring every font to about 200 px tall, like the other sources.
    scale = 200.0 / max(ink.shape[0], 1)
    ink = np.asarray(
        cv2.resize(ink, (max(1, round(ink.shape[1] * scale)), 200), interpolation=cv2.INTER_AREA), dtype=np.float32
    )
    return Glyph(ink, digit, "font", digit, font=name)
