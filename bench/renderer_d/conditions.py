"""The evaluation set as data: one row per condition (what is forced; everything else varies)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.renderer_d.camera import PhotoSpec

PHOTO_N = 36
FLAT_N = 40
NONE_N = 20
NUMBER_N = 60  # per kind; lengths 2..6 take turns, so 12 of each length per kind


@dataclass(frozen=True)
class Condition:
    """One group of uploads that share what the condition forces."""

    name: str
    family: str  # digit | none | number
    kind: str  # photo | canvas | scan | clean
    source: str  # mnist | uci | font | none
    count: int
    photo: PhotoSpec | None = None
    options: dict[str, object] = field(default_factory=dict)


def photo(name: str, n: int = PHOTO_N, source: str = "mnist", **spec: object) -> Condition:
    """A photo condition of single digits."""
    return Condition(name, "digit", "photo", source, n, PhotoSpec(**spec))  # type: ignore[arg-type]


def nothing(name: str, kind: str, n: int = NONE_N, spec: PhotoSpec | None = None, **options: object) -> Condition:
    """A condition with no digit in it: the right answer is a refusal."""
    return Condition(name, "none", kind, "none", n, spec, dict(options))


CONDITIONS: tuple[Condition, ...] = (
    # Phone photos of an MNIST digit written on paper.
    photo("photo_desk_wood", surfaces=("wood",)),
    photo("photo_desk_laminate", surfaces=("laminate",)),
    photo("photo_desk_stone", surfaces=("stone",)),
    photo("photo_desk_white", surfaces=("white",)),
    photo("photo_cloth", surfaces=("cloth",)),
    photo("photo_gingham", surfaces=("gingham",)),
    photo("photo_keyboard_edge", keyboard_edge=True),
    photo("photo_page_rotated", rot=(12.0, 30.0)),
    photo("photo_perspective", tilt_min=22.0, tilt=35.0),
    photo("photo_page_cut", fill=(1.1, 1.8), page_cut=True),
    photo("photo_paper_recycled", papers=("recycled",)),
    photo("photo_paper_sticky", papers=("sticky",)),
    photo("photo_paper_ruled", papers=("ruled",)),
    photo("photo_paper_squared", papers=("squared",)),
    photo("photo_paper_dotted", papers=("dotted",)),
    photo("photo_paper_spiral", papers=("spiral",)),
    photo("photo_pen_marker", pens=("marker_black", "marker_blue")),
    photo("photo_pen_red", pens=("red_pen",)),
    photo("photo_pen_pencil", pens=("pencil",)),
    photo("photo_glare", effects=("glare",)),
    photo("photo_flash", effects=("flash",)),
    photo("photo_shadow_soft", effects=("soft_shadow",)),
    photo("photo_shadow_hard", effects=("hard_shadow",)),
    photo("photo_low_light", effects=("low_light",)),
    photo("photo_colour_cast", effects=("cast",)),
    photo("photo_defocus", effects=("defocus",)),
    photo("photo_motion_blur", effects=("motion",)),
    photo("photo_jpeg_low", jpeg_q=(40, 55)),
    photo("photo_12mp", n=12, mp=(11.8, 12.2)),
    photo("photo_exif_rotated", exif_rotate=True),
    photo("photo_small_digit", small=True, fill=(0.3, 0.7)),
    photo("photo_off_centre", off_centre=True, digit_frac=(0.18, 0.3)),
    photo("photo_webp", n=10, fmt="webp"),
    photo("photo_png", n=10, fmt="png"),
    # Flat MNIST uploads.
    Condition("canvas_white", "digit", "canvas", "mnist", FLAT_N, options={"transparent": False}),
    Condition("canvas_transparent", "digit", "canvas", "mnist", FLAT_N, options={"transparent": True}),
    Condition("scan_mnist", "digit", "scan", "mnist", FLAT_N),
    # Other writers (UCI 8x8, test split) and handwriting fonts.
    photo("uci_photo", source="uci", n=FLAT_N),
    Condition("uci_scan", "digit", "scan", "uci", FLAT_N),
    Condition("uci_clean", "digit", "clean", "uci", FLAT_N),
    photo("font_photo", source="font", n=FLAT_N),
    Condition("font_scan", "digit", "scan", "font", FLAT_N),
    # No digit at all.
    nothing("none_blank_page", "photo", spec=PhotoSpec(papers=("white", "recycled", "ruled", "squared", "dotted", "sticky"))),
    nothing("none_page_edge", "photo", spec=PhotoSpec(scene="page_edge", fill=(0.5, 1.2))),
    nothing("none_spiral_binding", "photo", spec=PhotoSpec(scene="spiral_closeup", papers=("spiral",), page_sizes=("a5", "a6"), fill=(2.0, 5.0))),
    nothing("none_gingham", "photo", spec=PhotoSpec(scene="desk_only", surfaces=("gingham",))),
    nothing("none_empty_desk", "photo", n=30, spec=PhotoSpec(scene="desk_only", surfaces=("wood", "laminate", "stone", "white", "cloth"))),
    nothing("none_keyboard", "photo", spec=PhotoSpec(scene="keyboard")),
    nothing("none_blank_canvas", "canvas", transparent=False),
    nothing("none_blank_canvas_transparent", "canvas", transparent=True),
    nothing("none_blank_scan", "scan"),
    # Numbers of MNIST digits for POST /read.
    Condition("numbers_canvas", "number", "canvas", "mnist", NUMBER_N),
    Condition("numbers_scan", "number", "scan", "mnist", NUMBER_N),
    Condition("numbers_photo", "number", "photo", "mnist", NUMBER_N, PhotoSpec(digit_frac=(0.12, 0.3), fill=(0.4, 0.95), page_sizes=("a4", "a5"))),
)
