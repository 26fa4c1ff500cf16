"""Stages 2-5 of the classical front end: hand-written rules that find a digit's ink in a decoded image.

2. **ink map** (`ink_map`): a transparent canvas's alpha channel *is* the ink. Otherwise greyscale,
   then the polarity (dark ink on light paper or chalk on a board) from which of the two
   morphological hats (black-hat: thin dark structures; top-hat: thin light ones) is stronger,
   then the illumination: the paper's brightness is estimated at a coarse scale by a closing
   (which erases strokes but keeps shadow edges and the page border) and each pixel is divided by
   it, so shadows, gradients and vignetting vanish and a desk around the page reads as no ink.
3. **binarise** (`binarise`): a threshold relative to the strongest ink found and to the noise
   of the paper, so pencil and chalk count and paper grain does not.
4. **lines** (`remove_lines`): ruling, grid lines and page edges are long, thin and straight;
   probabilistic Hough finds them and they are erased, and digit strokes they crossed are rejoined.
5. **the digit** (`find_digit`): connected components; specks, filled blobs and regions touching
   the border are dropped or discounted, pieces of one digit are merged by proximity, and the most
   central and largest group wins; other digit-sized groups are counted and reported.

OpenCV does the per-pixel work: its morphology, resizing, Hough and component labelling are
vectorised C++ and run in well under a millisecond at the working size, where the same steps in
NumPy cost several.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from digit_contract.errors import NoInk
from digit_frontend.decode import Box, DecodedImage, shrink
from digit_frontend.framing import outer_ring, stroke_width

COARSE_SIDE = 96
"""Longest side of the image the paper's illumination is estimated on."""

POLARITY_SIDE = 192
"""Longest side of the image the polarity (dark ink or light ink) is decided on."""

POLARITY_SHARE = 0.02
"""The strongest 2% of thin-structure responses vote on the polarity: about a digit's share of a photo."""

BACKGROUND_KERNEL = 0.12
"""Closing kernel for the illumination, as a fraction of the coarse side: wider than any stroke
(a thick marker on a canvas is up to ~12% of the side), narrower than shadows and lighting."""

MIN_CONTRAST = 0.16
"""Ink must darken the paper by this fraction of its brightness (light ink: brighten the board by
this fraction of the headroom), or there is no digit. Pencil on paper is ~0.3-0.5, ballpoint ~0.7."""

INK_RELATIVE = 0.4
"""Pixels darker than this fraction of the strongest ink are ink: faint ruling and paper grain stay out."""


# -- 2. the ink map ----------------------------------------------------------------------------




def ink_map(decoded: DecodedImage) -> tuple[npt.NDArray[np.float32], bool, npt.NDArray[np.uint8] | None]:
    """Per-pixel ink in [0, 1] (1: full ink) at working size, whether the ink was dark on light, and
    the page (1 on it) when the photo shows one on a darker surface."""
    if decoded.grey is None:
        assert decoded.alpha is not None
        alpha = decoded.alpha.astype(np.float32) / 255.0
        if float(alpha.max()) < MIN_CONTRAST:
            raise NoInk("no ink found: the image is fully transparent")
        return alpha, False, None  # whatever colour the strokes are, a canvas's ink is where it is opaque
    grey = decoded.grey
    level = uniform_surround(grey)
    if level is not None:
        # A scan or a canvas export: the flat surround is the paper, one level, and says the
        # polarity, however bold the digit (a closing would take a blot of ink wider than its
        # kernel for paper, and a bold digit can fill the middle of the frame).
        dark_ink = level >= 128
        if not dark_ink:
            grey, level = 255 - grey, 255 - level
        ink = np.clip(1.0 - grey.astype(np.float32) / max(level, 1.0), 0.0, 1.0)
        return ink, dark_ink, None
    coarse = shrink(grey, COARSE_SIDE)
    dark_ink = _dark_ink_wins(grey)
    if not dark_ink:
        grey, coarse = 255 - grey, 255 - coarse
    # The paper as it would look without ink: strokes closed over at the coarse scale, then a median
    # to drop what the closing left of specks, back at working size.
    kernel = _kernel(BACKGROUND_KERNEL * max(coarse.shape))
    paper = cv2.medianBlur(cv2.morphologyEx(coarse, cv2.MORPH_CLOSE, kernel), 3)
    paper = cv2.resize(paper, (grey.shape[1], grey.shape[0]), interpolation=cv2.INTER_LINEAR)
    # Division, not subtraction: ink in a shadow darkens the paper by the same ratio as in the light.
    ratio = grey.astype(np.float32) / np.maximum(paper.astype(np.float32), 1.0)
    ink = np.clip(1.0 - ratio, 0.0, 1.0)
    # Where the "paper" itself is near black (a desk, a board's frame), ratios are noise.
    ink[paper < 24] = 0.0
    page = page_mask(coarse, grey.shape)
    if page is not None:
        ink[page == 0] = 0.0
    return ink, dark_ink, page


UNIFORM_SPREAD = 16
"""Grey levels between the 5th and 95th percentile of the image's outer ring under which the
surround is one flat paper (a scan, a canvas export), not a photo's light, desk or shadow."""


def uniform_surround(grey: npt.NDArray[np.uint8]) -> float | None:
    """The surround's grey level when the image's outer ring is flat and most of the image is at
    that level, else None."""
    height, width = grey.shape
    ring = max(2, round(0.03 * min(height, width)))
    if height <= 2 * ring or width <= 2 * ring:
        return None
    low, median, high = np.percentile(outer_ring(grey, ring), (5, 50, 95))
    if high - low > UNIFORM_SPREAD:
        return None
    # And it must be what most of the image is: a flat desk around a sheet of paper is not the paper.
    if abs(float(np.median(grey[::4, ::4])) - median) > UNIFORM_SPREAD:
        return None
    return float(median)


PAGE_MIN_SHARE, PAGE_MAX_SHARE = 0.12, 0.97
"""A bright region covering this share of the image, with darker surroundings, is the page."""

PAGE_MIN_STEP = 40
"""Grey levels between the page and what surrounds it (a white sheet on a wooden desk: ~80-150)."""

PAGE_RIM = 0.03
"""Ink within this share of the side of the page's outline touches the page's edge."""

RIM_SHARE = 0.3
"""A component with more than this share of its pixels in the page's rim lies along the page's edge."""

PAGE_MIN_EDGE = 30
"""Median grey-level step across the page's outline, over 3 coarse pixels: paper has an edge, glare does not."""


def page_mask(coarse: npt.NDArray[np.uint8], shape: tuple[int, ...]) -> npt.NDArray[np.uint8] | None:
    """1 on the page and 0 around it, at working size, when the photo shows a page on a darker surface.

    The page is the largest bright region of the coarse image (Otsu's threshold), filled as its
    convex hull (so a shadow or the digit itself cannot cut holes in it) and shrunk a little, so
    the page's edge, the desk's texture and whatever lies on the desk are not ink. None when the
    whole image is the page (a scan, a canvas, a close-up).
    """
    _, bright = cv2.threshold(coarse, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if not bright.any() or bright.all():
        return None
    if float(coarse[bright > 0].mean()) - float(coarse[bright == 0].mean()) < PAGE_MIN_STEP:
        return None
    # An opening first, so bright things on the desk that touch the page do not join it.
    bright = cv2.morphologyEx(bright, cv2.MORPH_OPEN, _kernel(0.06 * max(coarse.shape)))
    if not bright.any():
        return None
    _, labels, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=4)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    contours, _ = cv2.findContours((labels == largest).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(np.concatenate(contours))
    filled = np.zeros_like(bright)
    cv2.fillConvexPoly(filled, hull, 1)
    share = float(filled.mean())
    if not PAGE_MIN_SHARE <= share <= PAGE_MAX_SHARE:
        return None
    # A sheet of paper ends in a sharp edge; glare on a whiteboard or a vignetted scan fades out.
    # Measure the step across the region's outline (inside the frame: the image edge is no edge).
    rim = (cv2.dilate(filled, _kernel(3)) - cv2.erode(filled, _kernel(3))).astype(bool)
    rim[[0, -1], :] = False
    rim[:, [0, -1]] = False
    step = cv2.dilate(coarse, _kernel(3)) - cv2.erode(coarse, _kernel(3))
    if not rim.any() or float(np.median(step[rim])) < PAGE_MIN_EDGE:
        return None
    # Shrink by ~1.5% of the side: the page edge's own shading and the closing's halo stay outside.
    filled = cv2.erode(filled, _kernel(max(3.0, 0.03 * max(coarse.shape))))
    mask: npt.NDArray[np.uint8] = cv2.resize(filled, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return mask


def _dark_ink_wins(grey: npt.NDArray[np.uint8]) -> bool:
    """Whether the strongest departures from the background are darker or lighter than it.

    The background is the median of the middle of the frame, measured at `POLARITY_SIDE`, where a
    pencil line is still a couple of pixels wide: people put the digit in the middle and writing is
    a minority of any region, so the median there is the paper or the board, however thick the pen;
    the desk around a page and its edge (which depart both ways) are mostly outside it. The
    strongest `POLARITY_SHARE` of departures vote. Morphological hats do not work here: the paper
    between two close strokes is as much a "thin light structure" as the strokes are thin dark ones.
    """
    mid = shrink(grey, POLARITY_SIDE).astype(np.int16)
    h, w = mid.shape
    middle = mid[h // 5 : h - h // 5, w // 5 : w - w // 5]
    darker, lighter = _strongest_departures(middle - np.int16(np.median(middle)))
    if max(darker, lighter) < 20:  # nothing written in the middle: the whole frame decides
        darker, lighter = _strongest_departures(mid - np.int16(np.median(mid)))
    return darker >= lighter


def _strongest_departures(departure: npt.NDArray[np.int16]) -> tuple[float, float]:
    """Mean of the strongest `POLARITY_SHARE` darker and lighter departures, in grey levels."""
    flat = departure.ravel()
    if flat.size < 2:  # a one-pixel image: nothing to partition
        value = float(flat[0]) if flat.size else 0.0
        return max(0.0, -value), max(0.0, value)
    k = min(flat.size - 1, max(1, round(POLARITY_SHARE * flat.size)))
    darker = -float(np.partition(flat, k)[:k].astype(np.int64).sum()) / k
    lighter = float(np.partition(flat, flat.size - k)[-k:].astype(np.int64).sum()) / k
    return darker, lighter



def _kernel(diameter: float) -> npt.NDArray[np.uint8]:
    size = max(3, round(diameter) | 1)
    kernel: npt.NDArray[np.uint8] = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    return kernel


# -- 3. binarisation ---------------------------------------------------------------------------


def binarise(ink: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """Stroke mask (0/1) of an ink map: ink stronger than the paper's noise and than a share of the peak."""
    # The peak after a 3x3 blur, so one hot pixel of JPEG noise cannot set the scale.
    peak = float(cv2.blur(ink, (3, 3)).max())
    if peak < MIN_CONTRAST:
        raise NoInk("no ink found: the image is blank or has too little contrast to hold a digit")
    # Paper grain: the spread of the ink map where it is not ink (most pixels), robustly.
    sample = ink[::4, ::4]
    median = float(np.median(sample))
    spread = float(np.median(np.abs(sample - median))) * 1.4826
    threshold = max(MIN_CONTRAST * 0.75, INK_RELATIVE * peak, median + 6.0 * spread)
    if threshold >= peak:
        raise NoInk("no ink found: nothing stands out from the paper's texture")
    return (ink > threshold).astype(np.uint8)


# -- 4. ruling, grids, page edges --------------------------------------------------------------

LINE_MIN_LENGTH = 0.45
"""A straight line at least this fraction of the image's side it runs along is ruling or an edge."""

LINE_MAX_TILT = 12.0
"""Degrees from horizontal or vertical that a ruled line on a slightly rotated photo may have."""

LINE_MAX_THICKNESS = 0.025
"""Thicker than this share of the image's short side, a straight stroke is writing, not ruling."""

LINE_CAP = 40
"""At most this many lines are erased (a squared page at working size has ~30)."""


def remove_lines(strokes: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.uint8], int]:
    """Erase long thin straight lines near horizontal or vertical; rejoin strokes they crossed.

    What is erased: segments at least `LINE_MIN_LENGTH` of the side they run along, thin (a ruled
    line is a fraction of a millimetre), and either one of several parallel ones (ruling, a grid),
    very long, or near the image's edge (a page edge). A digit's own stroke is rarely that long and
    is never one of a family, so a big "1" filling a canvas survives.
    """
    height, width = strokes.shape
    shortest = min(height, width)
    thin = max(4, round(LINE_MAX_THICKNESS * shortest))
    # Only thin ink can be ruling: an opening wider than a ruled line keeps the thick strokes,
    # and what it removed is all Hough has to look at (fewer pixels, and no "lines" inside a stroke).
    wide = cv2.morphologyEx(strokes, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (thin + 1, thin + 1)))
    hairlines = strokes - wide
    if cv2.countNonZero(hairlines) < LINE_MIN_LENGTH * shortest:
        return strokes, 0
    found = cv2.HoughLinesP(
        hairlines,
        rho=1,
        theta=np.pi / 180,
        threshold=max(20, int(0.3 * shortest)),
        minLineLength=int(LINE_MIN_LENGTH * shortest),
        maxLineGap=max(3, shortest // 60),
    )
    if found is None:
        return strokes, 0
    candidates: list[tuple[bool, tuple[int, int, int, int], int, bool]] = []
    for x1, y1, x2, y2 in found[:LINE_CAP * 4, 0, :]:
        segment = (int(x1), int(y1), int(x2), int(y2))
        dx, dy = float(x2 - x1), float(y2 - y1)
        angle = abs(np.degrees(np.arctan2(dy, dx))) % 180.0
        horizontal = min(angle, 180.0 - angle) <= LINE_MAX_TILT
        if not horizontal and abs(angle - 90.0) > LINE_MAX_TILT:
            continue
        span, side = (abs(dx), width) if horizontal else (abs(dy), height)
        if span < LINE_MIN_LENGTH * side:
            continue
        run = _line_run(strokes, segment, horizontal)
        if run > thin:
            continue  # a thick stroke: writing, not ruling
        middle = (y1 + y2) / 2.0 if horizontal else (x1 + x2) / 2.0
        at_edge = min(middle, side - middle) < 0.12 * (height if horizontal else width) or span >= 0.7 * side
        candidates.append((horizontal, segment, run, at_edge))
    families = {orientation: sum(1 for c in candidates if c[0] == orientation) for orientation in (True, False)}
    line_mask = np.zeros_like(strokes)
    erased = 0
    for horizontal, segment, run, at_edge in candidates:
        if families[horizontal] < 2 and not at_edge:
            continue
        x1, y1, x2, y2 = segment
        cv2.line(line_mask, (x1, y1), (x2, y2), 1, thickness=run + 2)
        erased += 1
        if erased >= LINE_CAP:
            break
    if not erased:
        return strokes, 0
    kept = strokes & (1 - line_mask)
    # Where a stroke crossed a line, the erased band cut it: close across the band, inside it only.
    bridge = cv2.morphologyEx(kept, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5)))
    return kept | (bridge & line_mask), erased


def _line_run(strokes: npt.NDArray[np.uint8], segment: tuple[int, int, int, int], horizontal: bool) -> int:
    """How many ink pixels run across a found segment at its middle: the line's thickness."""
    x1, y1, x2, y2 = segment
    mx, my = (x1 + x2) // 2, (y1 + y2) // 2
    height, width = strokes.shape
    if horizontal:
        column = strokes[max(0, my - 8) : min(height, my + 9), mx]
        run = int(column.sum())
    else:
        row = strokes[my, max(0, mx - 8) : min(width, mx + 9)]
        run = int(row.sum())
    return max(run, 1)


# -- 5. which ink is the digit -----------------------------------------------------------------

SPECK = 0.015
"""Components smaller than this share of the largest are specks (paper grain, dust, JPEG blocks)."""

BLOB_STROKE_RATIO = 0.42
"""A component whose stroke is wider than this share of its longest side is a filled blob, not writing
(a solid disc scores 0.5; MNIST digits 0.06-0.2; a thick marker "1" about 0.25, a bold "0" 0.35)."""

LINE_STROKE_RATIO = 0.04
"""A component this thin for its length (and long) is a line, not a stroke of writing."""

MERGE_REACH = 0.2
"""Pieces within this share of a group's size of it are parts of the same digit (a "5"'s flag, a "4")."""

ABSORB_MAX = 1.5
"""A group takes in nearby pieces up to this multiple of its own ink: the rest of a broken stroke,
not a shadow's corner or another digit that happens to be larger."""

INK_MATCH = 0.7
"""A piece joins a group only if its ink is at least this share as strong: one pen wrote a digit."""

DIGIT_SIZED = 0.3
"""Another group with at least this share of the chosen one's ink counts as another digit."""


@dataclass(frozen=True)
class FoundDigit:
    mask: npt.NDArray[np.uint8]
    """The chosen group's pixels (0/1) inside its box."""
    box: Box
    """Its bounding box at working size."""
    others: int


@dataclass
class _Group:
    labels: list[int]
    area: int
    x0: int
    y0: int
    x1: int
    y1: int
    border: bool
    ink: float
    """Sum of the ink map over the group's pixels."""

    def strength(self) -> float:
        return self.ink / max(self.area, 1)

    def reach(self) -> float:
        return MERGE_REACH * max(self.x1 - self.x0, self.y1 - self.y0)

    def near(self, other: _Group) -> bool:
        r = self.reach()
        return not (
            other.x0 > self.x1 + r or other.x1 < self.x0 - r or other.y0 > self.y1 + r or other.y1 < self.y0 - r
        )

    def absorb(self, other: _Group) -> None:
        self.labels += other.labels
        self.area += other.area
        self.ink += other.ink
        self.x0, self.y0 = min(self.x0, other.x0), min(self.y0, other.y0)
        self.x1, self.y1 = max(self.x1, other.x1), max(self.y1, other.y1)


def find_digit(
    strokes: npt.NDArray[np.uint8],
    page: npt.NDArray[np.uint8] | None = None,
    ink: npt.NDArray[np.float32] | None = None,
) -> FoundDigit:
    """The most central, largest group of stroke-like components, and how many others there were.

    Components that touch the edge of the image, or of the `page` when there is one, are writing
    cut off by the frame, or the frame itself: they count a fifth, and are never merged into a
    group that does not touch it. With the `ink` map, pieces are weighed by their ink, and a piece
    much fainter than a group (a shadow's corner next to pen strokes) does not join it.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(strokes, connectivity=8)
    if count <= 1:
        raise NoInk("no ink found: the image holds no strokes")
    height, width = strokes.shape
    areas = stats[1:, cv2.CC_STAT_AREA]
    largest = int(areas.max())
    # The page's rim: pixels of the page near its outside (the coarse page outline is a staircase
    # of 4 px steps at working size, and the desk shows between it and the true edge).
    edge = None if page is None else (cv2.dilate(1 - page, _kernel(PAGE_RIM * max(page.shape))) & page).astype(bool)
    groups: list[_Group] = []
    # The 16 largest components are plenty: a digit is a handful of pieces, the rest is dust.
    for index in np.argsort(-areas)[:16]:
        label = int(index) + 1
        x, y, w, h, area = (int(v) for v in stats[label])
        if area < max(3, SPECK * largest):
            break
        touches_border = x <= 0 or y <= 0 or x + w >= width or y + h >= height
        if edge is not None and not touches_border:
            # Lying along the page's edge: much of it in the rim (a digit written near the edge of
            # the sheet only reaches into the rim; desk showing past the outline lies all in it).
            rim = edge[y : y + h, x : x + w]
            touches_border = int((rim & (labels[y : y + h, x : x + w] == label)).sum()) > RIM_SHARE * area
        if touches_border and (w > 0.8 * width or h > 0.8 * height):
            continue  # a page edge, a desk's shadow, a frame: not a digit
        if max(w, h) >= 6:
            ratio = _stroke_ratio((labels[y : y + h, x : x + w] == label).astype(np.uint8), area)
            if ratio > BLOB_STROKE_RATIO:
                continue  # a filled blob: a shadow, an object, a thumb
            straight = min(w, h) < 0.15 * max(w, h)
            near_edge = min(x, y, width - x - w, height - y - h) < 0.1 * min(width, height)
            if ratio < LINE_STROKE_RATIO and straight and near_edge and max(w, h) > 0.3 * min(width, height):
                continue  # a long straight hairline by the edge: what is left of a page edge

        # The 90th percentile, not the mean: a thin stroke is mostly soft edge, a shadow is flat.
        strength = _percentile_90(ink[y : y + h, x : x + w][labels[y : y + h, x : x + w] == label]) if ink is not None else 1.0
        groups.append(_Group([label], area, x, y, x + w, y + h, border=touches_border, ink=strength * area))
    if not groups:
        raise NoInk("no ink found: nothing in the image looks like writing")
    centre = np.array([width / 2.0, height / 2.0])
    diagonal = float(np.hypot(width, height))

    def score(group: _Group) -> float:
        # Central and large wins; regions touching the border count a fifth (cut-off writing, edges).
        middle = np.array([(group.x0 + group.x1) / 2.0, (group.y0 + group.y1) / 2.0])
        offset = float(np.linalg.norm(middle - centre)) / diagonal
        return group.ink * float(np.exp(-((offset / 0.3) ** 2))) * (0.2 if group.border else 1.0)

    grown = _grow(sorted(groups, key=score, reverse=True), labels)
    chosen = max(grown, key=score)
    others = sum(1 for g in grown if g is not chosen and g.area >= DIGIT_SIZED * chosen.area)
    window = labels[chosen.y0 : chosen.y1, chosen.x0 : chosen.x1]
    mask = np.isin(window, chosen.labels).astype(np.uint8)
    box = (chosen.x0, chosen.y0, chosen.x1 - chosen.x0, chosen.y1 - chosen.y0)
    return FoundDigit(mask, box, others)


def _percentile_90(values: npt.NDArray[np.float32]) -> float:
    """The 90th percentile by partition (np.percentile costs ~20 us of overhead per call)."""
    k = int(0.9 * (values.size - 1))
    return float(np.partition(values, k)[k])


def _grow(ranked: list[_Group], labels: npt.NDArray[np.int32]) -> list[_Group]:
    """Grow groups from the best-scoring component down: each absorbs the pieces whose pixels come
    within `MERGE_REACH` of its size, not much larger than itself (a piece of a digit, not a shadow
    or a neighbour), as strongly inked, and on the same side of the border, until none is left."""
    remaining = list(ranked)
    grown: list[_Group] = []
    while remaining:
        group = remaining.pop(0)
        joined = True
        while joined:
            joined = False
            candidates = [
                other for other in remaining
                if other.area <= ABSORB_MAX * group.area
                and other.border == group.border
                and other.strength() >= INK_MATCH * group.strength()
                and (group.near(other) or other.near(group))
            ]
            if not candidates:
                break
            gaps = _gaps(group, candidates, labels)
            for other, gap in zip(candidates, gaps, strict=True):
                if gap <= group.reach():
                    group.absorb(other)
                    remaining.remove(other)
                    joined = True
        grown.append(group)
    return grown


def _gaps(group: _Group, others: list[_Group], labels: npt.NDArray[np.int32]) -> list[float]:
    """Shortest pixel distance from each of `others` to `group`, within the group's reach."""
    reach = int(np.ceil(group.reach())) + 1
    height, width = labels.shape
    x0, y0 = max(0, group.x0 - reach), max(0, group.y0 - reach)
    x1, y1 = min(width, group.x1 + reach), min(height, group.y1 + reach)
    window = labels[y0:y1, x0:x1]
    outside = (~np.isin(window, group.labels)).astype(np.uint8)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, 3)
    gaps = []
    for other in others:
        inside = np.isin(window, other.labels)
        gaps.append(float(distance[inside].min()) if inside.any() else float("inf"))
    return gaps


def _stroke_ratio(solid: npt.NDArray[np.uint8], area: int) -> float:
    """Stroke width over the longest side of a component's box."""
    return stroke_width(solid, area) / float(max(solid.shape))
