"""Renderer A: photos, scans and drawings of one handwritten digit, with the exact ink of the digit.

The ink segmenter (`training.ink_segmenter`) learns from these scenes which pixels of an upload are
the pen stroke of the digit and which are paper, ruling, page edges, desk, shadow or glare. Because
we draw the scene, the answer is known exactly: the digit's stroke mask after the same geometry as
the page. Everything is randomised independently (domain randomisation), so that no single rule of
the scene (which polarity, which edges are lines, where the digit sits) can be learned in place of
the ink itself.

A scene is built in the order the physics happens:

1. **the page** (`page_reflectance`): paper tone and grain (white, recycled, sticky note, a board),
   printed ruling, grid, dots, a margin line or a spiral binding, then the digit's ink on top;
2. **geometry** (`place_page`): the page rotated, in perspective, filling 25-100% of the frame or
   cut by it, onto a surface (plain, wood, cloth, gingham, a keyboard, clutter);
3. **light** (`light`): gradients, vignetting, soft and hard shadows, glare, flash, low light;
4. **the camera** (`camera`): defocus or motion blur, sensor noise, JPEG compression.

`render_scene(..., condition=...)` forces one of `CONDITIONS`, the failure modes an independent
evaluation found renderer A had drawn too rarely (issue 21): faint thin pencil, spiral-binding
loops, clean digits that fill the frame, small digits, hard shadows. Without a condition the
scene is drawn exactly as before (the same random draws), so earlier validation figures reproduce.

Scenes are greyscale at the front end's working size: the service decodes uploads to luma.
The digits come from writers the evaluation never uses: MNIST's training images (not its last
6,000, the validation split), the UCI training split and handwriting fonts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

Float = NDArray[np.float32]
Grey = NDArray[np.uint8]

SCENE_SIDES = (256, 512)
"""Longest side of a rendered scene: the range the front end's working images span."""

CONDITIONS = ("pencil", "spiral", "clean", "small", "shadow")
"""Conditions `render_scene` can force (see its docstring)."""

NO_DIGIT_CONDITIONS = ("desk", "edge")
"""Scenes without a page's writing that `render_scene` can force: a bare desk, or a page's edge or corner
alone (`render_empty`). The digit passed is ignored; the mask is empty. A blind evaluation found that
empty desks were answered instead of refused (issue 21)."""

DESKS = ("plain", "wood", "cloth", "gingham", "keyboard", "clutter", "white")
"""The surfaces `surface` draws (and `render_empty` can force)."""

EMPTY_KINDS = (*DESKS, "edge")
"""What `render_empty` draws: a bare desk of each surface, or a page's edge or corner on one."""

UCI_INK_GAIN = 1.6
"""An 8x8 digit's block counts are ink where count / 16 * gain > 0.5 (a thin stroke covers only part of
a block; `digit_frontend.pipeline.upscale_blocks` uses the same gain)."""

FONT_DIRS = ("/usr/share/fonts/truetype", "/usr/share/fonts/opentype")
"""Where Debian's handwriting font packages install (see `training.ink_writers`)."""


@dataclass(frozen=True)
class Scene:
    """One rendered upload (luma, as the front end decodes it) and its digit's exact ink."""

    image: Grey
    """(H, W) uint8, what the camera saw, after JPEG."""
    ink: Grey
    """(H, W) uint8 0/1: the digit's pen stroke."""
    label: int


# -- 1. the page -------------------------------------------------------------------------------


def smooth_noise(height: int, width: int, cell: float, rng: np.random.Generator) -> Float:
    """Smooth random field in about [-1, 1] with features of `cell` px."""
    small = rng.standard_normal((max(2, int(height / cell) + 2), max(2, int(width / cell) + 2))).astype(np.float32)
    field = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    smooth: Float = np.clip(field / 1.5, -1.0, 1.0).astype(np.float32)
    return smooth


def paper_tone(height: int, width: int, rng: np.random.Generator) -> tuple[Float, str]:
    """The bare page: its kind and reflectance, with grain and (for recycled paper) flecks."""
    kind = rng.choice(["white", "white", "recycled", "sticky", "grey", "board"], p=[0.35, 0.15, 0.15, 0.15, 0.1, 0.1])
    base = {"white": rng.uniform(0.82, 0.97), "recycled": rng.uniform(0.6, 0.8), "sticky": rng.uniform(0.7, 0.9),
            "grey": rng.uniform(0.5, 0.75), "board": rng.uniform(0.08, 0.3)}[str(kind)]
    page = np.full((height, width), base, np.float32)
    page += 0.02 * smooth_noise(height, width, rng.uniform(20, 80), rng)
    page += rng.normal(0.0, rng.uniform(0.003, 0.02), (height, width)).astype(np.float32)
    if kind == "recycled":
        flecks = rng.random((height, width)) < rng.uniform(0.001, 0.01)
        flecks = cv2.dilate(flecks.astype(np.uint8), np.ones((2, 2), np.uint8)).astype(bool)
        page[flecks] *= rng.uniform(0.5, 0.85)
    return page, str(kind)


def draw_printing(page: Float, rng: np.random.Generator, digit_height: float) -> None:
    """Printed structure that is not the digit: ruling, grid, dots, margin, spiral binding, holes."""
    height, width = page.shape
    pattern = rng.choice(["none", "ruled", "squared", "dotted"], p=[0.35, 0.3, 0.2, 0.15])
    spacing = max(4.0, digit_height * rng.uniform(0.3, 1.0))
    darkness = rng.uniform(0.1, 0.45)
    thickness = 1 if rng.random() < 0.7 else 2
    offset = rng.uniform(0, spacing)
    if pattern in ("ruled", "squared"):
        for y in np.arange(offset, height, spacing):
            cv2.line(page, (0, int(y)), (width, int(y)), float(1.0 - darkness) * float(page.mean()), thickness)
    if pattern == "squared":
        for x in np.arange(offset, width, spacing):
            cv2.line(page, (int(x), 0), (int(x), height), float(1.0 - darkness) * float(page.mean()), thickness)
    if pattern == "dotted":
        for y in np.arange(offset, height, spacing):
            for x in np.arange(offset, width, spacing):
                cv2.circle(page, (int(x), int(y)), thickness, float(1.0 - darkness) * float(page.mean()), -1)
    if rng.random() < 0.2:  # a margin line
        x = int(rng.uniform(0.05, 0.2) * width)
        cv2.line(page, (x, 0), (x, height), float(page.mean()) * rng.uniform(0.5, 0.8), thickness + 1)
    if rng.random() < 0.15:  # a spiral binding along the top or left edge: wire loops and punched holes
        step = max(6.0, min(height, width) * rng.uniform(0.03, 0.06))
        radius = step * 0.3
        along_top = rng.random() < 0.5
        for t in np.arange(step / 2, width if along_top else height, step):
            centre = (int(t), int(step * 0.6)) if along_top else (int(step * 0.6), int(t))
            cv2.circle(page, centre, max(1, int(radius)), 0.05, -1)  # hole (the surface shows through)
            end = (centre[0], 0) if along_top else (0, centre[1])
            cv2.line(page, centre, end, rng.uniform(0.15, 0.5), max(1, int(radius * 0.6)))  # the wire
    if rng.random() < 0.1:  # a line of print or a fold: straight dark marks far from the digit
        y = int(rng.uniform(0.02, 0.12) * height)
        cv2.line(page, (int(0.1 * width), y), (int(0.9 * width), y), rng.uniform(0.1, 0.5), int(rng.integers(1, 4)))


def draw_spiral(page: Float, rng: np.random.Generator) -> str:
    """A spiral binding along one edge of the page: punched holes and the wire loops through them.

    The loops are rings (ellipses) that cross the page's edge, dark or shiny metal, with a highlight;
    the surface shows through the holes. Returns the edge ("top", "bottom", "left" or "right").
    """
    height, width = page.shape
    edge = str(rng.choice(["top", "bottom", "left", "right"], p=[0.35, 0.15, 0.35, 0.15]))
    along = width if edge in ("top", "bottom") else height
    step = max(6.0, along * rng.uniform(0.04, 0.09))
    ring_long, ring_short = step * rng.uniform(0.7, 1.4), step * rng.uniform(0.25, 0.45)
    depth = step * rng.uniform(0.35, 0.8)  # how far the holes sit inside the edge
    wire = rng.uniform(0.05, 0.45)
    thickness = max(1, round(step * rng.uniform(0.06, 0.16)))
    hole = rng.uniform(0.02, 0.4)
    tilt = rng.uniform(-25, 25)
    for t in np.arange(rng.uniform(0.3, 1.0) * step, along - step * 0.3, step):
        at_edge = 0.0 if edge in ("top", "left") else float((height if edge == "bottom" else width) - 1)
        inside = depth if edge in ("top", "left") else -depth
        if edge in ("top", "bottom"):
            hole_xy, ring_xy, angle = (t, at_edge + inside), (t, at_edge + inside / 2), 90 + tilt
        else:
            hole_xy, ring_xy, angle = (at_edge + inside, t), (at_edge + inside / 2, t), tilt
        centre = (int(hole_xy[0]), int(hole_xy[1]))
        if rng.random() < 0.5:
            cv2.circle(page, centre, max(1, int(step * rng.uniform(0.12, 0.22))), hole, -1)
        else:
            half = max(1, int(step * 0.15))
            cv2.rectangle(page, (centre[0] - half, centre[1] - half), (centre[0] + half, centre[1] + half), hole, -1)
        axes = (max(2, int(ring_long / 2)), max(1, int(ring_short / 2)))
        ring = (int(ring_xy[0]), int(ring_xy[1]))
        cv2.ellipse(page, ring, axes, angle, 0, 360, wire, thickness)
        if rng.random() < 0.5:  # the metal's highlight along half the loop
            cv2.ellipse(page, ring, axes, angle, 200, 340, min(1.0, wire + rng.uniform(0.3, 0.6)), max(1, thickness // 2))
    return edge


def pen(rng: np.random.Generator, board: bool) -> tuple[str, float, float]:
    """A pen: its kind, how much light its ink lets through (0: opaque), and its grain."""
    if board:
        return "chalk", rng.uniform(0.5, 0.9), rng.uniform(0.2, 0.5)
    kind = str(rng.choice(["ballpoint", "marker", "gel", "red", "pencil", "faint"], p=[0.3, 0.15, 0.15, 0.15, 0.15, 0.1]))
    transmit = {"ballpoint": rng.uniform(0.1, 0.4), "marker": rng.uniform(0.0, 0.15), "gel": rng.uniform(0.05, 0.3),
                "red": rng.uniform(0.35, 0.6), "pencil": rng.uniform(0.4, 0.7), "faint": rng.uniform(0.55, 0.75)}[kind]
    grain = rng.uniform(0.15, 0.45) if kind == "pencil" else rng.uniform(0.0, 0.1)
    return kind, transmit, grain


def stroke(digit: Grey, height: int, width_frac: float) -> Float:
    """A white-on-black digit scaled to `height` px with its pen set to `width_frac` of the height (0-1)."""
    src_h, src_w = digit.shape
    scale = height / float(src_h)
    size = (max(1, round(src_w * scale)), max(1, height))
    grey = cv2.resize(digit.astype(np.float32) / 255.0, size, interpolation=cv2.INTER_CUBIC)
    solid = (cv2.GaussianBlur(grey, (0, 0), max(0.5, scale * 0.5)) > 0.45).astype(np.uint8)
    if not solid.any():
        return np.zeros(size[::-1], np.float32)
    # Thin to a skeleton-like ridge, then dilate to the pen's width: every writer gets every pen.
    distance = cv2.distanceTransform(solid, cv2.DIST_L2, 3)
    ridge = (distance >= max(1.0, 0.6 * float(distance.max()))).astype(np.uint8)
    ridge = cv2.bitwise_or(ridge, cv2.erode(solid, np.ones((3, 3), np.uint8), iterations=max(0, int(distance.max()) - 2)))
    target = max(1.0, width_frac * height)
    diameter = max(1, round(target))
    pen_disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))
    inked = cv2.dilate(ridge, pen_disc)
    blurred: Float = cv2.GaussianBlur(inked.astype(np.float32), (0, 0), 0.6)
    return blurred


def faint_pencil(ink: Float, rng: np.random.Generator) -> Float:
    """A light, broken graphite line along `ink`: grainy, with short gaps where the pencil skipped."""
    height, width = ink.shape
    skips = smooth_noise(height, width, rng.uniform(2.0, 6.0), rng) > rng.uniform(0.35, 0.7)
    faded = ink * np.where(skips, np.float32(rng.uniform(0.0, 0.35)), np.float32(1.0))
    grainy: Float = (faded * np.clip(1.0 - rng.uniform(0.3, 0.6) * rng.random((height, width)), 0.0, 1.0)).astype(np.float32)
    return grainy


# -- 2. geometry -------------------------------------------------------------------------------


def surface(height: int, width: int, rng: np.random.Generator, kind: str | None = None) -> Float:
    """What the page lies on: plain, wood grain, cloth, gingham, a keyboard or clutter (`kind`, one of
    `DESKS`, or drawn at random)."""
    if kind is None:  # drawn only when not given: unforced scenes keep their random draws
        kind = str(rng.choice(list(DESKS), p=[0.2, 0.2, 0.12, 0.12, 0.12, 0.12, 0.12]))
    level = rng.uniform(0.05, 0.7)
    base = np.full((height, width), level, np.float32)
    if kind == "white":
        base[:] = rng.uniform(0.75, 0.97)
    elif kind == "wood":
        grain = smooth_noise(height, max(2, width // 20), rng.uniform(2, 6), rng)
        base += 0.12 * cv2.resize(grain, (width, height), interpolation=cv2.INTER_LINEAR)
    elif kind == "cloth":
        base += 0.06 * rng.standard_normal((height, width)).astype(np.float32)
        base = cv2.GaussianBlur(base, (0, 0), 0.8)
    elif kind == "gingham":
        cell = int(rng.uniform(6, 30))
        ys, xs = np.mgrid[0:height, 0:width]
        checks = ((ys // cell) % 2).astype(np.float32) + ((xs // cell) % 2).astype(np.float32)
        base = np.float32(rng.uniform(0.3, 0.5)) + np.float32(rng.uniform(0.12, 0.25)) * checks
    elif kind == "keyboard":
        key = int(rng.uniform(12, 40))
        base[:] = rng.uniform(0.05, 0.3)
        for y in range(0, height, key):
            for x in range(int(rng.uniform(0, key)), width, key):
                cv2.rectangle(base, (x + 2, y + 2), (x + key - 3, y + key - 3), rng.uniform(0.1, 0.45), -1)
                if rng.random() < 0.6:  # a printed letter on the key
                    cv2.putText(base, chr(int(rng.integers(65, 91))), (x + key // 4, y + 3 * key // 4),
                                cv2.FONT_HERSHEY_SIMPLEX, key / 40.0, rng.uniform(0.6, 0.95), 1)
    elif kind == "clutter":
        for _ in range(int(rng.integers(3, 10))):
            centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
            axes = (int(rng.uniform(5, width / 3)), int(rng.uniform(3, height / 6)))
            cv2.ellipse(base, centre, axes, rng.uniform(0, 180), 0, 360, rng.uniform(0.0, 0.9), -1)
    return np.clip(base, 0.0, 1.0)


def place_page(page: Float, ink: Float, out_h: int, out_w: int, scale: float,
               rng: np.random.Generator, path: Float | None = None) -> tuple[Float, Float, Float, Float]:
    """The page, its ink and the pen's path (default: the ink) warped into an `out_h` x `out_w` frame
    (rotation, perspective, `scale`, position; possibly cut by the frame), with the page's coverage."""
    page_h, page_w = page.shape
    angle = rng.normal(0.0, 8.0) if rng.random() < 0.8 else rng.uniform(-40, 40)
    centre_x = out_w / 2 + rng.uniform(-0.25, 0.25) * out_w
    centre_y = out_h / 2 + rng.uniform(-0.25, 0.25) * out_h
    corners = np.array([[0, 0], [page_w, 0], [page_w, page_h], [0, page_h]], np.float32)
    rotation = cv2.getRotationMatrix2D((page_w / 2, page_h / 2), angle, scale)
    rotation[:, 2] += (centre_x - page_w / 2, centre_y - page_h / 2)
    moved = cv2.transform(corners[None], rotation)[0]
    jitter = rng.normal(0.0, rng.uniform(0.0, 0.06) * max(out_w, out_h), moved.shape).astype(np.float32)
    matrix = cv2.getPerspectiveTransform(corners, (moved + jitter).astype(np.float32))
    size = (out_w, out_h)

    def warp(plane: Float) -> Float:
        warped: Float = cv2.warpPerspective(plane, matrix, size, flags=cv2.INTER_LINEAR,
                                            borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        return warped

    return warp(page), warp(ink), warp(np.ones_like(page)), warp(ink if path is None else path)


# -- 3. light and 4. the camera ----------------------------------------------------------------


def light(height: int, width: int, rng: np.random.Generator,
          hard_through: tuple[float, float] | None = None) -> tuple[Float, Float]:
    """Multiplicative illumination and additive glare over the frame; with `hard_through`, a
    hard-edged shadow (a phone's or a hand's) whose edge runs near that point (x, y)."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    xs, ys = xs / width - 0.5, ys / height - 0.5
    theta = rng.uniform(0, 2 * math.pi)
    gain = 1.0 + rng.uniform(0.0, 0.6) * (xs * math.cos(theta) + ys * math.sin(theta))
    gain *= 1.0 - rng.uniform(0.0, 0.6) * (xs**2 + ys**2)  # vignetting
    if rng.random() < 0.35:  # a shadow: a hand or a phone, soft or hard-edged
        polygon = (rng.uniform(-0.3, 1.3, (int(rng.integers(3, 6)), 2)) * (width, height)).astype(np.int32)
        shade = np.zeros((height, width), np.float32)
        cv2.fillPoly(shade, [polygon], 1.0)
        softness = rng.choice([0.7, rng.uniform(0.01, 0.08) * max(height, width)])
        shade = cv2.GaussianBlur(shade, (0, 0), float(softness))
        gain *= 1.0 - rng.uniform(0.25, 0.65) * shade
    if hard_through is not None:
        # Down to 15% of the light in the shadow (v4; v3 saw 25%): hard shadows were read second worst.
        gain *= 1.0 - rng.uniform(0.3, 0.85) * hard_shadow(height, width, hard_through, rng)
    gain *= rng.uniform(0.25, 1.25) if rng.random() < 0.3 else rng.uniform(0.8, 1.1)  # low light / exposure
    glare = np.zeros((height, width), np.float32)
    if rng.random() < 0.25:  # glare or a flash's hot spot: washes out whatever it covers
        cx, cy = rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height
        radius = rng.uniform(0.05, 0.35) * max(height, width)
        spot = np.exp(-(((xs + 0.5) * width - cx) ** 2 + ((ys + 0.5) * height - cy) ** 2) / (2 * radius**2))
        glare = rng.uniform(0.3, 1.2) * spot.astype(np.float32)
    return gain.astype(np.float32), glare


def hard_shadow(height: int, width: int, through: tuple[float, float], rng: np.random.Generator) -> Float:
    """1 in the shadow, 0 in the light: a straight or angled edge near `through`, blurred by 0-2 px."""
    offset = rng.normal(0.0, 0.08) * min(height, width)
    theta = rng.uniform(0, 2 * math.pi)
    normal = np.array([math.cos(theta), math.sin(theta)])
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    side = (xs - through[0]) * normal[0] + (ys - through[1]) * normal[1] - offset
    shade = (side > 0).astype(np.float32)
    if rng.random() < 0.4:  # a corner (a phone's edge and end): a second edge cuts the shadow
        theta2 = theta + rng.uniform(0.5, 2.0)
        side2 = (xs - through[0]) * math.cos(theta2) + (ys - through[1]) * math.sin(theta2) - rng.normal(0.0, 0.2) * min(height, width)
        shade *= (side2 > 0).astype(np.float32)
    softness = float(rng.uniform(0.0, 2.0))
    blurred: Float = cv2.GaussianBlur(shade, (0, 0), softness) if softness > 0.3 else shade
    return blurred


def camera(scene: Float, rng: np.random.Generator, digit_height: float) -> Grey:
    """Blur, noise, tone curve and a real JPEG round trip."""
    if rng.random() < 0.3:
        sigma = rng.uniform(0.3, 0.12 * digit_height / 4.0 + 0.5)
        scene = cv2.GaussianBlur(scene, (0, 0), sigma)
    elif rng.random() < 0.15:
        length = int(rng.uniform(2, max(3.0, 0.15 * digit_height)))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0 / length
        rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(kernel, rotation, (length, length))
        scene = cv2.filter2D(scene, -1, kernel / max(float(kernel.sum()), 1e-6))
    noise = rng.uniform(0.002, 0.04) if rng.random() < 0.8 else rng.uniform(0.04, 0.09)
    scene = scene + rng.normal(0.0, noise, scene.shape).astype(np.float32)
    scene = np.clip(scene, 0.0, 1.0) ** rng.uniform(0.7, 1.3)
    pixels: Grey = np.clip(scene * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.85:
        ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, int(rng.uniform(30, 96))])
        decoded = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE) if ok else None
        if decoded is not None:
            pixels = np.asarray(decoded, np.uint8)
    return pixels


# -- the scene ---------------------------------------------------------------------------------


def render_scene(digit: Grey, label: int, rng: np.random.Generator, condition: str | None = None) -> Scene:
    """One upload of `digit` (white on black, any size; an 8x8 digit is drawn as blocks) and its exact ink mask.

    `condition` (one of `CONDITIONS`) forces: "pencil" a faint, thin, broken graphite line; "spiral"
    a spiral binding's loops and holes along an edge, the digit often near it; "clean" the digit
    filling most of a plain frame (`render_clean`); "small" a digit under 10% of the frame's height;
    "shadow" a hard-edged shadow whose edge crosses the digit. The mask is the pen's path, so a
    pencil's grain and gaps stay ink in it: the whole digit is the answer, not its visible fragments.

    Raises:
        ValueError: an unknown condition.
    """
    if condition is not None and condition not in CONDITIONS + NO_DIGIT_CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}: expected one of {', '.join(CONDITIONS + NO_DIGIT_CONDITIONS)}")
    if condition == "clean":
        return render_clean(digit, label, rng)
    if condition in NO_DIGIT_CONDITIONS:
        return render_empty(rng, "edge" if condition == "edge" else None, pen_share=0.0)
    long_side = int(rng.uniform(*SCENE_SIDES))
    aspect = rng.choice([1.0, 0.75, 4 / 3, 0.5625, 1.78]) if rng.random() < 0.9 else rng.uniform(0.4, 2.5)
    out_w, out_h = (long_side, max(32, int(long_side * aspect))) if aspect <= 1 else (max(32, int(long_side / aspect)), long_side)
    flat = rng.random() < 0.2  # a scan or a page that fills the frame: no geometry, no surface
    page_h, page_w = (out_h, out_w) if flat else (int(out_h * rng.uniform(0.8, 1.3)), int(out_w * rng.uniform(0.8, 1.3)))
    page, kind = paper_tone(page_h, page_w, rng)
    board = kind == "board"
    # How large the page appears (> 1: cut by the frame), and the digit's height in the frame: digits
    # under 10% of the frame are the hard case, so the height is sampled log-uniformly down to 4%.
    scale = 1.0 if flat else rng.uniform(0.3, 1.15) * min(out_w / page_w, out_h / page_h)
    seen_height = float(np.exp(rng.uniform(math.log(0.04), math.log(0.55))) * min(out_h, out_w))
    if condition == "small":  # under 10% of the frame, in the larger working images
        seen_height = float(np.exp(rng.uniform(math.log(0.03), math.log(0.1))) * min(out_h, out_w))
    digit_height = max(10.0, seen_height) / scale  # in page pixels
    draw_printing(page, rng, digit_height)
    binding = draw_spiral(page, rng) if condition == "spiral" else None
    kind_of_pen, transmit, grain = pen(rng, board)
    width_frac = {"marker": rng.uniform(0.08, 0.18), "chalk": rng.uniform(0.06, 0.14)}.get(kind_of_pen, rng.uniform(0.025, 0.1))
    if condition == "pencil":  # graphite: light grey, thin, and the contrast low
        # Up to 0.88 of the light through (v4; v3 saw up to 0.82): a blind set found pencil read worst.
        board, transmit, grain = False, rng.uniform(0.5, 0.88), 0.0
        # Thin, yet about a pixel of the frame at least: thinner, it is no line the camera could record.
        width_frac = max(rng.uniform(0.012, 0.035), rng.uniform(0.9, 1.4) / max(10.0, seen_height))
        if kind == "board":
            page[:] = np.clip(page + rng.uniform(0.5, 0.7), 0.0, 1.0)
    ink = stroke(digit, max(8, int(digit_height)), width_frac)
    # The pen's path is the answer: a thin line's blurred peak may stay under 0.5, a pencil's grain too.
    path = np.clip(ink / max(float(ink.max()), 1e-6), 0.0, 1.0)
    if condition == "pencil":
        ink = faint_pencil(ink, rng)
    # Where on the page: mostly near the middle of what will be seen, sometimes anywhere.
    spread = 0.15 if rng.random() < 0.7 else 0.4
    top = int(np.clip(page_h / 2 - ink.shape[0] / 2 + rng.normal(0, spread) * page_h, 0, max(0, page_h - ink.shape[0])))
    left = int(np.clip(page_w / 2 - ink.shape[1] / 2 + rng.normal(0, spread) * page_w, 0, max(0, page_w - ink.shape[1])))
    if binding is not None and rng.random() < 0.5:  # the digit written close to the binding
        gap = int(rng.uniform(0.05, 0.2) * min(page_h, page_w))
        if binding == "top":
            top = gap
        elif binding == "bottom":
            top = max(0, page_h - ink.shape[0] - gap)
        elif binding == "left":
            left = gap
        else:
            left = max(0, page_w - ink.shape[1] - gap)
    ink_page = np.zeros_like(page)
    path_page = np.zeros_like(page)
    h, w = min(ink.shape[0], page_h - top), min(ink.shape[1], page_w - left)
    ink_page[top : top + h, left : left + w] = ink[:h, :w]
    path_page[top : top + h, left : left + w] = path[:h, :w]
    if grain > 0:
        ink_page *= np.clip(1.0 - grain * rng.random(ink_page.shape).astype(np.float32) * 1.5, 0.0, 1.0)
    if board:  # chalk is lighter than the board
        reflect = (page + ink_page * (rng.uniform(0.55, 0.95) - page) * (1.0 - transmit * 0.5)).astype(np.float32)
    else:
        reflect = (page * (1.0 - ink_page * (1.0 - transmit))).astype(np.float32)
    if flat:
        scene_page, scene_path = reflect[:out_h, :out_w], path_page[:out_h, :out_w]
    else:
        scene_page, _, coverage, scene_path = place_page(reflect, ink_page, out_h, out_w, scale, rng, path_page)
        scene_page = scene_page + (1.0 - coverage) * surface(out_h, out_w, rng)
    through: tuple[float, float] | None = None
    if condition == "shadow":  # the shadow's edge across the digit (or the frame's middle on a blank page)
        points = cv2.findNonZero((scene_path > 0.5).astype(np.uint8))
        centre = points.reshape(-1, 2).mean(axis=0) if points is not None else np.array([out_w / 2, out_h / 2])
        through = (float(centre[0]), float(centre[1]))
    gain: Float
    glare: Float | float
    if through is not None:
        gain, glare = light(out_h, out_w, rng, hard_through=through)
    else:
        gain, glare = light(out_h, out_w, rng) if not flat or rng.random() < 0.3 else (np.ones((out_h, out_w), np.float32), 0.0)
    scene = scene_page * gain + glare
    if rng.random() < 0.1:  # white ink on a dark background, as a negative or a dark-mode canvas
        scene = 1.0 - scene
    image = camera(scene.astype(np.float32), rng, digit_height)
    mask = (scene_path > 0.5).astype(np.uint8)
    return Scene(image, mask, label)


def render_clean(digit: Grey, label: int, rng: np.random.Generator) -> Scene:
    """A clean digit filling 55-95% of a plain frame: an upscaled image as a user exports or scans it.

    An 8x8 digit (UCI block counts scaled to 0-255) is drawn as blocks, nearest or smoothed; any
    other digit as its own grey strokes. Dark on light, or (a third) light on dark.
    """
    long_side = int(rng.uniform(160, 448))
    aspect = 1.0 if rng.random() < 0.6 else rng.uniform(0.7, 1.4)
    out_w, out_h = (long_side, max(32, int(long_side * aspect))) if aspect <= 1 else (max(32, int(long_side / aspect)), long_side)
    height = int(rng.uniform(0.55, 0.95) * min(out_h, out_w))
    src_h, src_w = digit.shape
    size = (max(1, min(out_w, round(src_w * height / src_h))), max(1, height))
    blocky = digit.shape == (8, 8)
    resample = cv2.INTER_NEAREST if blocky and rng.random() < 0.6 else cv2.INTER_LINEAR if rng.random() < 0.5 else cv2.INTER_CUBIC
    grey = np.clip(cv2.resize(digit.astype(np.float32) / 255.0, size, interpolation=resample), 0.0, 1.0)
    # The mask: a block with a thin stroke through it is ink (the UCI gain); a smooth digit at half its level.
    truth = np.clip(cv2.resize(digit.astype(np.float32) / 255.0, size, interpolation=cv2.INTER_NEAREST if blocky else cv2.INTER_LINEAR)
                    * (UCI_INK_GAIN if blocky else 1.0), 0.0, 1.0)
    ink, path = np.zeros((out_h, out_w), np.float32), np.zeros((out_h, out_w), np.float32)
    top = int(rng.uniform(0, out_h - size[1] + 1))
    left = int(rng.uniform(0, out_w - size[0] + 1))
    ink[top : top + size[1], left : left + size[0]] = grey
    path[top : top + size[1], left : left + size[0]] = truth
    paper, dark = rng.uniform(0.8, 1.0), rng.uniform(0.0, 0.25)
    scene = paper - (paper - dark) * ink
    if rng.random() < 0.33:
        scene = 1.0 - scene
    scene = scene + rng.normal(0.0, rng.uniform(0.0, 0.02), scene.shape).astype(np.float32)
    pixels: Grey = np.clip(scene * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, int(rng.uniform(60, 96))])
        decoded = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE) if ok else None
        if decoded is not None:
            pixels = np.asarray(decoded, np.uint8)
    return Scene(pixels, (path > 0.5).astype(np.uint8), label)


def render_empty(rng: np.random.Generator, kind: str | None = None, pen_share: float = 0.3) -> Scene:
    """A photo with nothing written in it (label -1, an empty mask): a bare desk of `kind` (one of
    `DESKS`; default: drawn at random), or with `kind` "edge" a page's edge or corner lying on one.
    A pen or pencil lies in the frame in `pen_share` of them: a long bar is the hardest "1" that is no digit.
    (`render_scene`'s forced conditions draw none: a segmenter trained with them lost the round-2
    renderer's chalkboards, 90% -> 73%; light bars on dark desks look like chalk, the suspected cause,
    not proven.)

    Raises:
        ValueError: an unknown kind.
    """
    if kind is not None and kind not in EMPTY_KINDS:
        raise ValueError(f"unknown empty scene {kind!r}: expected one of {', '.join(EMPTY_KINDS)}")
    long_side = int(rng.uniform(*SCENE_SIDES))
    aspect = rng.choice([1.0, 0.75, 4 / 3, 0.5625, 1.78])
    out_w, out_h = (long_side, max(32, int(long_side * aspect))) if aspect <= 1 else (max(32, int(long_side / aspect)), long_side)
    scene = surface(out_h, out_w, rng, None if kind in (None, "edge") else kind)
    if kind == "edge":  # the page's region: one straight edge (a half plane) or a corner (two) inside the frame
        page, _ = paper_tone(out_h, out_w, rng)
        draw_printing(page, rng, rng.uniform(0.1, 0.4) * min(out_h, out_w))
        ys, xs = np.mgrid[0:out_h, 0:out_w].astype(np.float32)
        through = (rng.uniform(0.2, 0.8) * out_w, rng.uniform(0.2, 0.8) * out_h)
        theta = rng.uniform(0, 2 * math.pi)
        cover = ((xs - through[0]) * math.cos(theta) + (ys - through[1]) * math.sin(theta) > 0).astype(np.float32)
        if rng.random() < 0.5:  # a corner: a second edge at about a right angle
            theta2 = theta + math.pi / 2 + rng.normal(0.0, 0.15)
            cover *= ((xs - through[0]) * math.cos(theta2) + (ys - through[1]) * math.sin(theta2) > 0).astype(np.float32)
        cover = cv2.GaussianBlur(cover, (0, 0), 0.7)
        scene = scene * (1.0 - cover) + page * cover
    if rng.random() < pen_share:  # a pen or a pencil lying on the desk
        length = rng.uniform(0.3, 0.9) * max(out_h, out_w)
        centre = np.array([rng.uniform(0.2, 0.8) * out_w, rng.uniform(0.2, 0.8) * out_h])
        angle = rng.uniform(0, math.pi)
        half = 0.5 * length * np.array([math.cos(angle), math.sin(angle)])
        ends = [(int(p[0]), int(p[1])) for p in (centre - half, centre + half)]
        cv2.line(scene, ends[0], ends[1], rng.uniform(0.0, 0.9), max(2, int(rng.uniform(0.01, 0.04) * min(out_h, out_w))))
    gain, glare = light(out_h, out_w, rng)
    scene = scene * gain + glare
    if rng.random() < 0.1:  # as a negative or a dark-mode capture
        scene = 1.0 - scene
    image = camera(scene.astype(np.float32), rng, rng.uniform(0.1, 0.3) * min(out_h, out_w))
    return Scene(image, np.zeros((out_h, out_w), np.uint8), -1)


def uci_like(digit: Grey) -> Grey:
    """A white-on-black digit as the UCI set records it: its box fitted to 32x32, counted in 4x4 blocks
    (0-16), scaled to 0-255 as an 8x8 image. Validation digits drawn as UCI writers' blocks."""
    rows, cols = np.flatnonzero(digit.max(axis=1) > 60), np.flatnonzero(digit.max(axis=0) > 60)
    if not len(rows):
        return np.zeros((8, 8), np.uint8)
    box = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = 32.0 / max(box.shape)
    size = (max(1, min(32, round(box.shape[1] * scale))), max(1, min(32, round(box.shape[0] * scale))))
    bitmap = np.zeros((32, 32), np.float32)
    fitted = cv2.resize(box.astype(np.float32) / 255.0, size, interpolation=cv2.INTER_AREA) > 0.35
    top, left = (32 - size[1]) // 2, (32 - size[0]) // 2
    bitmap[top : top + size[1], left : left + size[0]] = fitted
    counts = bitmap.reshape(8, 4, 8, 4).sum(axis=(1, 3))
    blocks: Grey = np.clip(counts / 16.0 * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return blocks


# -- the writers -------------------------------------------------------------------------------


def font_files() -> list[Path]:
    """Handwriting fonts installed from Debian's packages (none: the scenes use MNIST and UCI only)."""
    from training.ink_writers import HANDWRITING_FONTS  # the list the evaluation uses too

    return [Path(font.path) for font in HANDWRITING_FONTS if Path(font.path).is_file()]


def font_digit(path: Path, digit: int, rng: np.random.Generator) -> Grey:
    """A digit in a font, white on black, slanted and rotated a little."""
    face = ImageFont.truetype(str(path), 96)
    canvas = Image.new("L", (200, 200), 0)
    ImageDraw.Draw(canvas).text((100, 100), str(digit), fill=255, font=face, anchor="mm")
    glyph = np.asarray(canvas)
    slant = rng.uniform(-0.2, 0.4)
    matrix = cv2.getRotationMatrix2D((100, 100), rng.uniform(-8, 8), 1.0)
    matrix[0, 1] -= slant
    matrix[0, 2] += slant * 100
    out = cv2.warpAffine(glyph, matrix, (200, 200))
    rows, cols = np.flatnonzero(out.max(axis=1) > 60), np.flatnonzero(out.max(axis=0) > 60)
    if not len(rows):
        return glyph
    return np.ascontiguousarray(out[max(0, rows[0] - 4) : rows[-1] + 5, max(0, cols[0] - 4) : cols[-1] + 5])
