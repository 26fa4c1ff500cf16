"""What a photo looks like, as a list of choices (``PhotoSpec``), and the named conditions that force one choice.

A condition starts from a random everyday photo (``everyday``: any desk, paper, pen, light and camera, mostly
mild) and forces one factor hard, as real photos combine a problem with a little of everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bench.renderer_b.materials import PAPER_KINDS

Rng = np.random.Generator


@dataclass
class PhotoSpec:
    """Every choice behind one phone photo of a page."""

    surface: str = "wood"
    keyboard: bool = False
    paper: str = "white"
    sheet_mm: float = 148.0  # width of the sheet (A4 210, A5 148, A6 105, sticky 76)
    landscape_page: bool = False
    pen: str = "ballpoint"
    # Geometry
    rotation_deg: float = 0.0  # of the page in the frame
    tilt_deg: tuple[float, float] = (0.0, 0.0)  # camera tilt about the page's x and y axes
    page_area: float = 0.6  # page area / frame area, before perspective
    page_cut: bool = False  # push part of the page out of the frame
    digit_share: float = 0.25  # digit height / frame height
    digit_offset: tuple[float, float] = (0.0, 0.0)  # where the digit sits, as a fraction of the frame from its centre
    # Light
    exposure: float = 0.95
    gradient: float = 0.1
    vignette: float = 0.15
    shadow: str = "none"  # none | soft | hard
    glare: bool = False
    flash: bool = False
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)
    low_light: bool = False
    # Camera
    blur_px: float = 0.6  # the lens and demosaicing at the working resolution
    defocus: float = 0.0  # disk radius as a fraction of the digit's height
    motion: float = 0.0  # motion streak length as a fraction of the digit's height
    noise: float = 0.012  # sensor noise (std at mid grey)
    sharpen: float = 0.3
    megapixels: float = 1.5
    aspect: float = 4 / 3
    portrait: bool = True
    fmt: str = "JPEG"
    quality: int = 88
    exif_orientation: int | None = None  # None: no EXIF; 1: upright tag; 3/6/8: pixels stored rotated


def _pick(rng: Rng, options: dict[str, float]) -> str:
    names = list(options)
    p = np.asarray(list(options.values()), dtype=np.float64)
    return str(names[int(rng.choice(len(names), p=p / p.sum()))])


def everyday(rng: Rng) -> PhotoSpec:
    """A random, ordinary phone photo of a page with one digit: a little of everything, nothing extreme."""
    s = PhotoSpec()
    s.surface = _pick(rng, {"wood": 3, "laminate": 1.5, "granite": 1, "white_desk": 1.5, "cloth": 1,
                            "gingham": 0.5, "dark_desk": 1.5})  # fmt: skip
    s.keyboard = bool(rng.random() < 0.08)
    s.paper = _pick(rng, {"white": 3.5, "recycled": 1, "sticky": 1, "ruled": 1.5, "squared": 1.5, "dotted": 0.5,
                          "spiral": 1})  # fmt: skip
    s.sheet_mm = float(rng.choice([210.0, 148.0, 148.0, 105.0]))
    s.landscape_page = bool(rng.random() < 0.3)
    s.pen = _pick(rng, {"ballpoint": 4, "gel": 1.5, "marker": 1.5, "red": 1, "pencil": 1.5})
    s.rotation_deg = float(np.clip(rng.normal(0, 4), -12, 12))
    s.tilt_deg = (float(rng.uniform(-12, 12)), float(rng.uniform(-8, 8)))
    s.page_area = float(rng.uniform(0.35, 0.85))
    s.digit_share = float(np.exp(rng.uniform(np.log(0.12), np.log(0.42))))
    s.digit_offset = (float(rng.uniform(-0.08, 0.08)), float(rng.uniform(-0.08, 0.08)))
    s.exposure = float(rng.uniform(0.8, 1.05))
    s.gradient = float(rng.uniform(0.0, 0.25))
    s.vignette = float(rng.uniform(0.0, 0.3))
    u = rng.random()
    s.shadow = "soft" if u < 0.18 else "hard" if u < 0.25 else "none"
    s.glare = bool(rng.random() < 0.07)
    s.flash = bool(rng.random() < 0.07)
    if rng.random() < 0.35:
        s.cast = tuple(float(g) for g in rng.uniform(0.92, 1.08, 3))  # type: ignore[assignment]
    s.low_light = False
    s.blur_px = float(rng.uniform(0.3, 1.0))
    s.defocus = float(rng.uniform(0.0, 0.02)) if rng.random() < 0.15 else 0.0
    s.motion = float(rng.uniform(0.0, 0.025)) if rng.random() < 0.1 else 0.0
    s.noise = float(rng.uniform(0.006, 0.02))
    s.sharpen = float(rng.uniform(0.0, 0.7))
    s.megapixels = float(np.exp(rng.uniform(np.log(0.5), np.log(3.0))))
    s.aspect = float(rng.choice([4 / 3, 4 / 3, 4 / 3, 16 / 9, 1.0]))
    s.portrait = bool(rng.random() < 0.6)
    s.fmt = "JPEG"
    s.quality = int(rng.integers(70, 96))
    s.exif_orientation = 1 if rng.random() < 0.5 else None
    return s


def _sign(rng: Rng) -> float:
    return 1.0 if rng.random() < 0.5 else -1.0


def _surface(kind: str) -> Callable[[PhotoSpec, Rng], None]:
    def apply(s: PhotoSpec, rng: Rng) -> None:
        s.surface = kind

    return apply


def _paper(kind: str) -> Callable[[PhotoSpec, Rng], None]:
    def apply(s: PhotoSpec, rng: Rng) -> None:
        s.paper = kind

    return apply


def _pen(kind: str) -> Callable[[PhotoSpec, Rng], None]:
    def apply(s: PhotoSpec, rng: Rng) -> None:
        s.pen = kind

    return apply


def _desk_coloured(s: PhotoSpec, rng: Rng) -> None:
    s.surface = "laminate" if rng.random() < 0.55 else "granite"


def _keyboard(s: PhotoSpec, rng: Rng) -> None:
    s.keyboard = True
    if s.surface in ("cloth", "gingham"):
        s.surface = "laminate"


def _dark_desk_rotated(s: PhotoSpec, rng: Rng) -> None:
    s.surface, s.paper, s.keyboard = "dark_desk", "white", False
    s.rotation_deg = _sign(rng) * float(rng.uniform(3, 12))
    s.tilt_deg = (float(rng.uniform(-6, 6)), float(rng.uniform(-4, 4)))
    s.shadow, s.glare, s.flash = "none", False, False


def _rotated(s: PhotoSpec, rng: Rng) -> None:
    s.rotation_deg = _sign(rng) * float(rng.uniform(12, 35))


def _perspective(s: PhotoSpec, rng: Rng) -> None:
    s.tilt_deg = (_sign(rng) * float(rng.uniform(22, 35)), float(rng.uniform(-15, 15)))


def _page_cut(s: PhotoSpec, rng: Rng) -> None:
    s.page_cut = True
    s.page_area = float(rng.uniform(0.6, 1.1))


def _fill_small(s: PhotoSpec, rng: Rng) -> None:
    s.page_area = float(rng.uniform(0.30, 0.42))


def _fill_large(s: PhotoSpec, rng: Rng) -> None:
    s.page_area = float(rng.uniform(0.85, 0.95))
    s.aspect = 4 / 3
    s.landscape_page = not s.portrait  # the sheet turned the way the frame is, as one frames a page to fill it
    s.rotation_deg = float(rng.uniform(-3, 3))
    s.tilt_deg = (float(rng.uniform(-5, 5)), float(rng.uniform(-4, 4)))


def _glare(s: PhotoSpec, rng: Rng) -> None:
    s.glare = True


def _flash(s: PhotoSpec, rng: Rng) -> None:
    s.flash, s.low_light = True, False


def _shadow(kind: str) -> Callable[[PhotoSpec, Rng], None]:
    def apply(s: PhotoSpec, rng: Rng) -> None:
        s.shadow = kind

    return apply


def _low_light(s: PhotoSpec, rng: Rng) -> None:
    s.low_light, s.flash = True, False


def _colour_cast(s: PhotoSpec, rng: Rng) -> None:
    casts = [(1.25, 1.0, 0.68), (1.15, 1.0, 0.8), (0.8, 0.95, 1.25), (0.9, 1.12, 0.88), (1.1, 0.9, 1.1)]
    base = casts[int(rng.integers(len(casts)))]
    s.cast = tuple(float(c * rng.uniform(0.95, 1.05)) for c in base)  # type: ignore[assignment]


def _defocus(s: PhotoSpec, rng: Rng) -> None:
    s.defocus = float(rng.uniform(0.03, 0.07))


def _motion(s: PhotoSpec, rng: Rng) -> None:
    s.motion = float(rng.uniform(0.05, 0.12))


def _jpeg_low(s: PhotoSpec, rng: Rng) -> None:
    s.fmt, s.quality = "JPEG", int(rng.integers(40, 56))


def _size_small(s: PhotoSpec, rng: Rng) -> None:
    s.megapixels = float(rng.uniform(0.3, 0.5))


def _size_large(s: PhotoSpec, rng: Rng) -> None:
    s.megapixels = float(rng.uniform(8.0, 12.0))
    s.aspect = 4 / 3


def _exif(s: PhotoSpec, rng: Rng) -> None:
    s.fmt = "JPEG"
    s.exif_orientation = int(rng.choice([6, 6, 6, 8, 3]))


def _small_digit(s: PhotoSpec, rng: Rng) -> None:
    # Half of them under 7% of the frame's height, the rest 7-10%.
    s.digit_share = float(rng.uniform(0.04, 0.07) if rng.random() < 0.5 else rng.uniform(0.07, 0.10))
    s.page_area = float(rng.uniform(0.3, 0.8))


def _off_centre(s: PhotoSpec, rng: Rng) -> None:
    r = float(rng.uniform(0.22, 0.34))
    ang = float(rng.uniform(0, 2 * np.pi))
    s.digit_offset = (r * np.cos(ang), r * np.sin(ang))
    s.digit_share = float(rng.uniform(0.12, 0.25))


def _fmt(fmt: str) -> Callable[[PhotoSpec, Rng], None]:
    def apply(s: PhotoSpec, rng: Rng) -> None:
        s.fmt = fmt
        s.quality = int(rng.integers(60, 91))
        s.exif_orientation = None

    return apply


# Each photo condition: its name and the one factor it forces on top of an everyday photo.
PHOTO_CONDITIONS: dict[str, Callable[[PhotoSpec, Rng], None]] = {
    "desk_wood": _surface("wood"),
    "desk_coloured": _desk_coloured,
    "desk_white": _surface("white_desk"),
    "cloth_plain": _surface("cloth"),
    "cloth_gingham": _surface("gingham"),
    "keyboard_edge": _keyboard,
    "dark_desk_rotated": _dark_desk_rotated,
    "page_rotated": _rotated,
    "perspective": _perspective,
    "page_cut": _page_cut,
    "page_fill_small": _fill_small,
    "page_fill_large": _fill_large,
    **{f"paper_{k}": _paper(k) for k in PAPER_KINDS},
    "pen_ballpoint": _pen("ballpoint"),
    "pen_marker": _pen("marker"),
    "pen_red": _pen("red"),
    "pen_pencil": _pen("pencil"),
    "glare": _glare,
    "flash": _flash,
    "shadow_soft": _shadow("soft"),
    "shadow_hard": _shadow("hard"),
    "low_light": _low_light,
    "colour_cast": _colour_cast,
    "defocus": _defocus,
    "motion_blur": _motion,
    "jpeg_low_quality": _jpeg_low,
    "size_small": _size_small,
    "size_large": _size_large,
    "exif_rotated": _exif,
    "digit_small": _small_digit,
    "digit_off_centre": _off_centre,
    "photo_png": _fmt("PNG"),
    "photo_webp": _fmt("WEBP"),
}
