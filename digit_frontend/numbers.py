"""A number, not only a digit: every digit of one line of writing, in reading order, in groups.

A form's box holds "2047", a meter "12 500". `find_number_in` finds the digits of the line nearest
the image's centre and frames each one as `/predict` frames a lone digit (a `PreparedImage` per
digit), so that any model of the zoo reads them. The steps:

1. **pieces**: connected groups of ink, from the ink segmenter's coarse view (`InkSegmenter.ink`)
   or, for canvases and without a segmenter, from the classical rules (`digit_frontend.classical`);
2. **the line** (`choose_line`): from the strongest, most central digit-sized piece, a chain of
   neighbours no further apart than a wide word space; its direction (a slanted line, a rotated
   page) fitted through their centres. Digit-sized pieces off that line are counted, not read;
3. **the strip**: the line cut out along its direction and scaled so its digits are `STRIP_DIGIT`
   px tall (the segmenter marks the strokes again there, at the size it saw in training);
4. **digits** (`strip_candidates`, `choose_digits`): pieces of one digit (a 5's flag, a broken stroke) are merged where
   they overlap across the line, measured along the writing's own slant; a piece over half a digit
   wide may be two or more digits touching ("00", "17"): it is offered cut along seams (paths down it
   crossing least ink, `_seam`) and, when wider than a digit, at its emptiest columns; the model's
   reading of each way to group the parts, with shape priors and the ink each seam crossed, decides,
   each candidate weighed by a verifier fitted on training numbers (`VERIFIER`: its width for the
   digit read, how it was cut, how sure the reading is), so that pieces of a digit and merged pairs lose;
   a candidate as wide as two digits may also be read as two at once by the pair reader
   (`digit_frontend.pairs`), where digits touch so that no cut gives two readable ones;
5. **groups**: a gap much wider than the digits' own spacing starts a new group ("12 500").

`find_number_in` is two halves: `number_candidates` (stages 1-4 up to every candidate digit, framed)
and `choose_number` (a model reads them and the best division wins, then stage 5), so that several
models reading one number (POST /models/compare?read=true) find its line once.

Several lines: only the one nearest the centre is read; `other_digits` says how many digit-sized
pieces lay elsewhere. An image that already is an MNIST or UCI digit is one digit, as `/predict`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from digit_contract.errors import NoInk
from digit_frontend.classical import binarise, ink_map, remove_lines
from digit_frontend.decode import Box, DecodedImage, decode_image
from digit_frontend.framing import is_mnist_like, stroke_width
from digit_frontend.pairs import PairReading
from digit_frontend.pipeline import FRONT_END, Method, PreparedImage, find_digit_in, is_flat_scan, uci_digit
from digit_frontend.segmenter import COARSE_MIN_AREA, COARSE_MIN_PEAK, INK_LEVEL, InkSegmenter, pad_square

MAX_DIGITS = 32
"""Most digits one reading returns (a line of dense writing is not a number)."""

STRIP_DIGIT = 48
"""Height in px of the line's digits in the strip (the segmenter's fine crops hold 44-77 px digits)."""

STRIP_MAX_WIDTH = 2048
"""Longest strip: a longer line is scaled down to fit (its digits then are smaller than `STRIP_DIGIT`)."""

DIGIT_SIZED = 0.45
"""A piece at least this share of the tallest piece's height can be a digit (less: a speck, a dot)."""

SPECK = 0.015
"""Pieces under this share of the largest piece's ink are dust."""

LINE_REACH = 2.6
"""Digits further apart than this many digit heights (along the line) are not one number."""

LINE_BAND = 0.55
"""A piece whose centre is further than this many digit heights across the line is on another line."""

MAX_TILT = 45.0
"""Degrees a line may rise or fall: beyond, "left to right" is ambiguous (EXIF orientation is applied)."""

MERGE_OVERLAP = 0.45
"""Pieces overlapping across the line by this share of the narrower one are parts of one digit."""

GROUP_GAP_HEIGHT = 0.6
"""A gap wider than this many digit heights, and than `GROUP_GAP_RATIO` times the usual gap, is a space."""

GROUP_GAP_RATIO = 2.5


@dataclass(frozen=True)
class FoundNumber:
    """The digits of one line in reading order, each found as `find_digit_in` finds a lone digit."""

    digits: list[PreparedImage]
    groups: list[int]
    """Per digit, its group (0, 1, ...): a new group starts after a wide gap."""
    angle: float = 0.0
    """Degrees the line rises to the right (0: level; the image's y axis points down)."""
    slant: float = 0.0
    """The writing's slant: horizontal shift per unit of height (positive leans right)."""
    other_digits: int = 0
    """Digit-sized pieces of ink off the line that was read (another line, a stray mark)."""
    probabilities: npt.NDArray[np.float32] | None = None
    """(N, 10): what the reader made of each digit, when there was one."""
    paired: tuple[bool, ...] = ()
    """Per digit, whether the pair reader read it with its neighbour (its `probabilities` row is the
    pair reader's, not the model's); empty: none was."""


Reader = Callable[[Sequence[PreparedImage]], npt.NDArray[np.float32]]
"""Reads digits as a model does: (N, 10) probabilities, one row per digit, framed as it takes them."""


def text_of(digits: Sequence[int], groups: Sequence[int]) -> str:
    """The digits as a string, one space between groups: "12 500"."""
    text = ""
    for index, (digit, group) in enumerate(zip(digits, groups, strict=True)):
        if index and group != groups[index - 1]:
            text += " "
        text += str(digit)
    return text


def read_number_image(data: bytes, *, max_pixels: int, read: Reader | None = None) -> FoundNumber:
    """Decode an image file and find its number's digits, each framed for MNIST (its NoInk raised here).

    Raises:
        the errors of `digit_frontend.pipeline.prepare_image`.
    """
    found = find_number_in(decode_image(data, max_pixels=max_pixels), read)
    for digit in found.digits:
        digit.pixels  # noqa: B018 - framed now, so that a digit too small to frame is this call's NoInk
    return found


def find_number_in(decoded: DecodedImage, read: Reader | None = None) -> FoundNumber:
    """Stages 2-5 for a line of digits: each digit's strokes, in reading order, not yet framed.

    With `read` (a model), where the line can be cut into digits in several ways (a broken 5, a
    touching "00"), the way whose digits the model reads most surely, shape considered, wins, and
    the chosen digits' probabilities come back; without, the shapes alone decide.

    Raises:
        NoInk: nothing in the image could be a digit (422).
    """
    return choose_number(number_candidates(decoded), read, verifier=VERIFIER)


@dataclass(frozen=True)
class NumberCandidates:
    """A line's candidate digits before any model reads them (`number_candidates`): what several
    models share when each reads the same number (`choose_number`, once per model)."""

    images: list[PreparedImage]
    """Per candidate (`strip.candidates`), its strokes; for an image that already is one digit, that digit."""
    framed: npt.NDArray[np.bool_]
    """Per candidate, whether it can be framed (a sliver of a cut cannot, and is never chosen)."""
    strip: Strip | None = None
    """None for an image that already is one digit."""
    line: Line | None = None
    paired: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, np.intp))
    """The candidates the pair reader read as two digits (indices into `images`), wide enough to be two."""
    pairs: PairReading | None = None
    """The pair reader's reading of each of `paired`, in order."""
    halves: list[tuple[PreparedImage, PreparedImage]] = field(default_factory=list)
    """Per `paired` candidate, its left and right digit's strokes (for their boxes and pictures)."""


def number_candidates(decoded: DecodedImage) -> NumberCandidates:
    """Stages 2-4 up to the candidates: the line, its strip, every way to cut it into digits, each framed.

    Raises:
        NoInk: nothing in the image could be a digit (422).
    """
    grey = decoded.grey
    if grey is not None and (is_mnist_like(grey) or uci_digit(grey) is not None):
        digit = find_digit_in(decoded)  # already one digit, as the datasets hold them
        return NumberCandidates([digit], np.ones(1, bool))
    # The same route as one digit's (`find_digit_in`): flat scans and canvases to the rules.
    segmenter = FRONT_END.segmenter if grey is not None and not is_flat_scan(grey) else None
    if grey is not None and segmenter is not None:
        source: _Source = _LearnedSource(grey, segmenter)
    else:
        source = _ClassicalSource(decoded)
    line = choose_line(source.pieces, source.shape)
    cut, to_strip = source.strip(line)
    strip = strip_candidates(cut)
    if strip is None or not strip.primitives:
        raise NoInk("no digit found: the line's strokes vanished at full resolution")
    to_working = cv2.invertAffineTransform(to_strip)
    format_ = (decoded.format, decoded.width, decoded.height, decoded.mode)
    images = [
        PreparedImage(slot.mask, *format_, method=source.method, inverted=source.inverted,
                      box=decoded.to_original(_working_box(slot.box, to_working, source.shape)),
                      other_digits=line.others, lines_removed=source.lines_removed)
        for _, _, slot, _ in strip.candidates
    ]
    # A candidate too small to frame (a sliver of a cut) cannot be a digit: it is never chosen.
    framed = np.array([_frames(image) for image in images])
    if FRONT_END.pairs is None:
        return NumberCandidates(images, framed, strip, line)
    paired = np.array([i for i, (_, _, slot, _) in enumerate(strip.candidates)
                       if framed[i] and (slot.right - slot.left) / strip.height >= PAIR_MIN_WIDTH], np.intp)

    def prepared(half: Slot) -> PreparedImage:
        return PreparedImage(half.mask, *format_, method=source.method, inverted=source.inverted,
                             box=decoded.to_original(_working_box(half.box, to_working, source.shape)),
                             other_digits=line.others, lines_removed=source.lines_removed)

    halves = [(prepared(left), prepared(right)) for left, right in (_halves(strip.candidates[i][2]) for i in paired)]
    pairs = FRONT_END.pairs.read([strip.candidates[i][2].mask for i in paired])
    return NumberCandidates(images, framed, strip, line, paired, pairs, halves)


def choose_number(candidates: NumberCandidates, read: Reader | None = None, *,
                  verifier: npt.NDArray[np.float64] | None = None) -> FoundNumber:
    """Stage 4's choice and stage 5: where the line divides into digits, as `read` (a model) reads
    the candidates (one batch), or by shape alone without one; then the groups. `verifier` weighs
    the candidates' readings (`VERIFIER` for the model it was fitted on: `verifier_for`).

    Raises:
        NoInk: no candidate digit can be framed (422).
    """
    images, framed, strip, line = candidates.images, candidates.framed, candidates.strip, candidates.line
    if strip is None or line is None:
        return FoundNumber(images, [0], probabilities=read(images) if read is not None else None)
    probabilities = read_candidates(candidates, read) if read is not None else None
    log_probabilities = candidate_scores(candidates, probabilities, verifier)
    pair_scores = _pair_scores(candidates) if probabilities is not None else None
    chosen = [(i, two) for i, two in choose_digits(strip, log_probabilities, pair_scores) if framed[i]]
    if not chosen:
        raise NoInk("no digit found: the line's strokes are too small to be digits")
    digits: list[PreparedImage] = []
    slots: list[Slot] = []
    rows: list[npt.NDArray[np.float32]] = []
    paired: list[bool] = []
    for index, two in chosen:
        slot = strip.candidates[index][2]
        if not two:
            digits.append(images[index])
            slots.append(slot)
            if probabilities is not None:
                rows.append(probabilities[index])
            paired.append(False)
            continue
        assert candidates.pairs is not None  # a pair is chosen only where the pair reader read it
        k = int(np.searchsorted(candidates.paired, index))
        digits += candidates.halves[k]
        slots += [slot, slot]  # for the groups: no gap inside the pair, its outer edges the halves'
        rows += [candidates.pairs.left[k], candidates.pairs.right[k]]
        paired += [True, True]
    count = min(len(digits), MAX_DIGITS)
    return FoundNumber(digits[:count], groups_of(slots[:count], strip.height), angle=-line.angle,
                       slant=-strip.shear, other_digits=line.others,
                       probabilities=None if probabilities is None else np.stack(rows[:count]).astype(np.float32),
                       paired=tuple(paired[:count]) if any(paired) else ())


def read_candidates(candidates: NumberCandidates, read: Reader) -> npt.NDArray[np.float32]:
    """Each candidate's probabilities (N, 10) as `read` reads the framed ones, in one batch; zeros
    for a candidate too small to frame."""
    probabilities = np.zeros((len(candidates.images), 10), np.float32)
    if candidates.framed.any():
        probabilities[candidates.framed] = read(
            [image for image, ok in zip(candidates.images, candidates.framed, strict=True) if ok])
    return probabilities


def candidate_scores(candidates: NumberCandidates, probabilities: npt.NDArray[np.float32] | None,
                     verifier: npt.NDArray[np.float64] | None = None) -> npt.NDArray[np.float64]:
    """Per candidate, its log-probability in the choice (`choose_digits`): its reading's (0 without
    one; `UNFRAMED` where it cannot be framed), plus the verifier's weighing where one is given."""
    reading = probabilities.max(axis=1) if probabilities is not None else np.ones(len(candidates.images))
    scores: npt.NDArray[np.float64] = np.where(candidates.framed, np.log(np.maximum(reading, 1e-9)), UNFRAMED)
    if probabilities is not None and verifier is not None and candidates.strip is not None:
        # Whether each candidate is one whole digit rather than a piece of one or two touching ones,
        # as the verifier, fitted on training numbers, judges it from its reading and its shape.
        scores = scores + candidate_features(candidates.strip, probabilities) @ verifier
    return scores


def _pair_scores(candidates: NumberCandidates) -> npt.NDArray[np.float64] | None:
    """Per candidate, the log-probability of its reading as two digits at once (-inf where it was not
    read as two), less `PAIR_COST`; None without a pair reader."""
    if candidates.pairs is None or not len(candidates.paired):
        return None
    reading = candidates.pairs
    scores = np.full(len(candidates.images), -np.inf)
    scores[candidates.paired] = np.where(
        reading.pair >= PAIR_MIN_PROBABILITY,
        np.log(np.maximum(reading.pair, 1e-9)) + np.log(np.maximum(reading.left.max(axis=1), 1e-9))
        + np.log(np.maximum(reading.right.max(axis=1), 1e-9)) - PAIR_COST, -np.inf)
    return scores


def _frames(image: PreparedImage) -> bool:
    try:
        image.pixels  # noqa: B018 - framed once here, cached for the reader
    except NoInk:
        return False
    return True


# -- 1. pieces of ink ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """A connected group of ink, in working pixels."""

    box: tuple[float, float, float, float]
    """x, y, w, h."""
    mass: float
    """Its ink (pixels, or summed probability)."""

    @property
    def centre(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return x + w / 2.0, y + h / 2.0


class _Source:
    """Where the ink comes from: its pieces, and the line cut out as a strip of 0/1 strokes."""

    method: Method
    inverted: bool = False
    lines_removed: int = 0
    pieces: list[Piece]
    shape: tuple[int, int]

    def strip(self, line: Line) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
        raise NotImplementedError


class _LearnedSource(_Source):
    """The ink segmenter: coarse view for the pieces, run again on the strip for the strokes."""

    method: Method = "learned"

    def __init__(self, grey: npt.NDArray[np.uint8], segmenter: InkSegmenter) -> None:
        self.grey, self.segmenter = grey, segmenter
        self.shape = (grey.shape[0], grey.shape[1])
        scale = segmenter.coarse_side / max(grey.shape)
        height, width = round(grey.shape[0] * scale), round(grey.shape[1] * scale)
        coarse = segmenter.ink(pad_square(grey, segmenter.coarse_side))[:height, :width]
        ink = (coarse > INK_LEVEL).astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        self.pieces = []
        for i in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[i])
            inside = coarse[y : y + h, x : x + w][labels[y : y + h, x : x + w] == i]
            if area >= COARSE_MIN_AREA and float(inside.max()) >= COARSE_MIN_PEAK:
                self.pieces.append(Piece((x / scale, y / scale, w / scale, h / scale), float(inside.sum())))
        if not self.pieces:
            raise NoInk("no digit found: the image holds no pen strokes that look like a digit")
        light = np.percentile(grey, 50)  # paper is most of the image: ink is darker than it, or lighter
        self.inverted = bool(float(np.mean(grey[ink_at(ink, self.shape)])) < light) if ink.any() else True

    def strip(self, line: Line) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
        matrix, size = line.strip_transform()
        flags = cv2.INTER_AREA if matrix[0, 0] ** 2 + matrix[0, 1] ** 2 < 1 else cv2.INTER_LINEAR
        cut = cv2.warpAffine(self.grey, matrix, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
        return (self.segmenter.ink(cut) > INK_LEVEL).astype(np.uint8), matrix


def ink_at(coarse_ink: npt.NDArray[np.uint8], shape: tuple[int, int]) -> npt.NDArray[np.bool_]:
    """A coarse ink mask at working size."""
    resized: npt.NDArray[np.uint8] = cv2.resize(coarse_ink, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    return resized.astype(bool)


class _ClassicalSource(_Source):
    """The classical rules on the whole working image: ink map, binarisation, ruling removed."""

    method: Method = "mnist"

    def __init__(self, decoded: DecodedImage) -> None:
        ink, self.inverted, _ = ink_map(decoded)
        strokes = binarise(ink)
        # A canvas export (ink from its alpha channel) has no ruling or page edges to remove.
        cleaned, self.lines_removed = remove_lines(strokes) if decoded.grey is not None else (strokes, 0)
        self.mask = cleaned
        self.shape = (cleaned.shape[0], cleaned.shape[1])
        count, labels, stats, _ = cv2.connectedComponentsWithStats(cleaned, connectivity=8)
        height, width = self.shape
        self.pieces = []
        for i in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[i])
            touches = x <= 0 or y <= 0 or x + w >= width or y + h >= height
            if touches and (w > 0.8 * width or h > 0.8 * height):
                continue  # a page edge, a desk's shadow, a frame: not writing
            if max(w, h) >= 6 and stroke_width(labels[y : y + h, x : x + w] == i, area) > 0.42 * max(w, h):
                continue  # a filled blob (a shadow, a thumb), as `classical.find_digit` judges it
            self.pieces.append(Piece((x, y, w, h), area * (0.2 if touches else 1.0)))
        if not self.pieces:
            raise NoInk("no ink found: nothing in the image looks like writing")

    def strip(self, line: Line) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float64]]:
        matrix, size = line.strip_transform()
        cut = cv2.warpAffine(self.mask.astype(np.float32), matrix, size, flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return (cut > 0.5).astype(np.uint8), matrix


# -- 2. the line ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One line of digits in the working image."""

    angle: float
    """Degrees, image convention (y down): positive falls to the right."""
    origin: tuple[float, float]
    """A point on the line's centre."""
    start: float
    end: float
    """The line's extent along its direction from `origin` (first digit's left, last one's right)."""
    height: float
    """Its digits' height in working pixels."""
    others: int

    def strip_transform(self) -> tuple[npt.NDArray[np.float64], tuple[int, int]]:
        """The affine map from working pixels to the strip, and the strip's (width, height)."""
        scale = STRIP_DIGIT / max(self.height, 1.0)
        margin = 0.6 * self.height
        length = self.end - self.start + 2 * margin
        scale = min(scale, STRIP_MAX_WIDTH / max(length, 1.0))
        width = _multiple_of_8(length * scale)
        tall = _multiple_of_8(2.2 * self.height * scale)
        theta = np.radians(self.angle)
        cos, sin = np.cos(theta), np.sin(theta)
        # Rotate so the line runs along x, scale, and put the line's start (less the margin) at x = 0
        # and its centre at the strip's middle row.
        ox, oy = self.origin
        matrix = np.array([[cos, sin, 0.0], [-sin, cos, 0.0]]) * scale
        matrix[0, 2] = -scale * (cos * ox + sin * oy) - scale * (self.start - margin)
        matrix[1, 2] = -scale * (-sin * ox + cos * oy) + tall / 2.0
        return matrix, (width, tall)


def _multiple_of_8(value: float) -> int:
    return max(16, int(np.ceil(value / 8.0)) * 8)


def choose_line(pieces: Sequence[Piece], shape: tuple[int, int]) -> Line:
    """The line of digit-sized pieces through the strongest, most central one.

    Raises:
        NoInk: no piece is large enough to be a digit.
    """
    pieces = _stack(pieces)
    largest = max(p.mass for p in pieces)
    tallest = max(p.box[3] for p in pieces)
    sized = [p for p in pieces if p.mass >= SPECK * largest and p.box[3] >= DIGIT_SIZED * tallest]
    if not sized:
        raise NoInk("no digit found: nothing in the image is the size of a digit")
    centre = np.array([shape[1] / 2.0, shape[0] / 2.0])
    diagonal = float(np.hypot(*shape))

    def score(piece: Piece) -> float:
        # Ink, discounted by the distance from the centre: people aim the camera at what they wrote.
        offset = float(np.hypot(*(np.array(piece.centre) - centre))) / diagonal
        return piece.mass * float(np.exp(-((offset / 0.35) ** 2)))

    seed = max(sized, key=score)
    members, angle = [seed], 0.0
    grown = True
    while grown:
        grown = False
        height = float(np.median([p.box[3] for p in members]))
        along, across = _project(members, angle)
        low, high = min(a - w / 2 for a, w in along), max(a + w / 2 for a, w in along)
        for piece in sized:
            if piece in members:
                continue
            (a, w), c = _project([piece], angle)[0][0], _project([piece], angle)[1][0]
            gap = max(low - (a + w / 2), (a - w / 2) - high, 0.0)
            # Until two pieces fix the direction, a neighbour may lie up to `MAX_TILT` off level.
            band = LINE_BAND * height if len(members) > 1 else height * np.tan(np.radians(MAX_TILT)) + 0.5 * height
            if gap <= LINE_REACH * height and abs(c - float(np.median(across))) <= band:
                members.append(piece)
                angle = _fit_angle(members)
                grown = True
                break
    along, _ = _project(members, angle)
    start, end = min(a - w / 2 for a, w in along), max(a + w / 2 for a, w in along)
    cx, cy = np.mean([p.centre for p in members], axis=0)
    # Project the members' mean centre back: `along` is measured from (0, 0) on the line's direction.
    theta = np.radians(angle)
    offset = cx * np.cos(theta) + cy * np.sin(theta)
    height = float(np.max([p.box[3] for p in members])) * _height_factor(angle)
    return Line(angle, (float(cx), float(cy)), start - offset, end - offset, height, len(sized) - len(members))


def _stack(pieces: Sequence[Piece]) -> list[Piece]:
    """Pieces stacked one above the other (a 3's two arcs, a 5's flag over its bowl) as one: a
    digit's pieces must not pass for a steep line of two digits."""
    merged: list[Piece] = []
    for piece in sorted(pieces, key=lambda p: -p.mass)[:64]:  # the 64 largest are plenty; the rest is dust
        x, y, w, h = piece.box
        for index, other in enumerate(merged):
            ox, oy, ow, oh = other.box
            overlap = min(x + w, ox + ow) - max(x, ox)
            gap = max(oy - (y + h), y - (oy + oh), 0.0)
            if overlap >= 0.5 * min(w, ow) and gap <= 0.5 * max(h, oh):
                nx, ny = min(x, ox), min(y, oy)
                box = (nx, ny, max(x + w, ox + ow) - nx, max(y + h, oy + oh) - ny)
                merged[index] = Piece(box, piece.mass + other.mass)
                break
        else:
            merged.append(piece)
    return merged


def _height_factor(angle: float) -> float:
    """An axis-aligned box of a digit on a tilted line is taller than the digit: undo most of it."""
    return float(1.0 / (1.0 + 0.5 * abs(np.sin(np.radians(angle)))))


def _project(pieces: Sequence[Piece], angle: float) -> tuple[list[tuple[float, float]], list[float]]:
    """Each piece's (centre, width) along a line at `angle`, and its centre across it."""
    theta = np.radians(angle)
    cos, sin = np.cos(theta), np.sin(theta)
    along, across = [], []
    for piece in pieces:
        x, y = piece.centre
        _, _, w, h = piece.box
        along.append((x * cos + y * sin, abs(w * cos) + abs(h * sin)))
        across.append(-x * sin + y * cos)
    return along, across


def _fit_angle(pieces: Sequence[Piece]) -> float:
    """The direction through the pieces' centres (least squares, weighted by ink), within `MAX_TILT`."""
    points = np.array([p.centre for p in pieces], dtype=np.float64)
    weights = np.array([p.mass for p in pieces], dtype=np.float64)
    mean = (points * weights[:, None]).sum(axis=0) / weights.sum()
    d = points - mean
    sxx, sxy = float((weights * d[:, 0] ** 2).sum()), float((weights * d[:, 0] * d[:, 1]).sum())
    if sxx <= 1e-9:
        return 0.0
    return float(np.clip(np.degrees(np.arctan2(sxy, sxx)), -MAX_TILT, MAX_TILT))


# -- 4. digits in the strip -----------------------------------------------------------------------


@dataclass
class Slot:
    """A candidate digit in the strip: its pixels (a selection of the line's ink pixels), their
    mask and box in strip pixels, and its deslanted extent along the line."""

    pixels: npt.NDArray[np.bool_]
    mask: npt.NDArray[np.uint8]
    box: Box
    left: float
    right: float
    cut: float = 0.0
    """Log-probability charged when a digit starts here: the seam on its left crossed strokes."""
    joined: bool = False
    """Whether it was cut from the primitive on its left (their strokes touch across the cut)."""


@dataclass(frozen=True)
class Strip:
    """The line's ink as primitives (whole digits, pieces of digits, parts of touching digits) and
    the candidate digits made of one to `MAX_PARTS` neighbouring primitives."""

    primitives: list[Slot]
    candidates: list[tuple[int, int, Slot, float]]
    """(first, last + 1, the candidate, its prior: log-odds from its shape alone, <= 0)."""
    shear: float
    height: float


MAX_PARTS = 4
"""A digit is made of at most this many primitives (a 5's stem, flag and bowl cut apart)."""

CUT_WIDTH = 0.5
"""Pieces wider than this many digit heights are offered cut (a "1" touching its neighbour is narrow)."""

CUT_MARGIN, CUT_SPACING = 0.15, 0.3
"""Seams start at least this many digit heights from a piece's ends, and from each other."""

STRAIGHT_WIDTH, STRAIGHT_MARGIN = 0.92, 0.3
"""Pieces wider than `STRAIGHT_WIDTH` digit heights are also offered straight cuts, `STRAIGHT_MARGIN` from their ends."""

SEAM_MAX_CROSS = 3.5
"""A seam crossing more than this many stroke widths of ink is not where two digits touch."""

SEAM_STEP = 0.05
"""Seams are tried from every this many digit heights along a piece."""

SEAM_BAND, SEAM_PULL = 0.3, 2.0
"""A seam strays at most `SEAM_BAND` digit heights from the slanted column it starts at, and pays
`SEAM_PULL` ink pixels a row per digit height it strays (it bends round a bowl, not along a stroke)."""

CUT_BASE, CUT_COST = 0.0, 1.0
"""Log-probability charged for a digit boundary cut through ink (`CUT_BASE`), and per stroke width
the seam crosses beyond the first (touching digits meet in one junction)."""

WIDE, WIDE_COST = 1.1, 4.0
"""A candidate wider than `WIDE` digit heights (deslanted) pays `WIDE_COST` per digit height beyond."""

SHORT, SHORT_COST = 0.75, 10.0
"""A candidate less tall than `SHORT` of its line's digits pays `SHORT_COST` per digit height short."""

DROP_HEIGHT, DROP_COST = 0.5, 2.0
"""A primitive less tall than `DROP_HEIGHT` of the line's digits may be read as no digit, at `DROP_COST`."""

UNFRAMED = -50.0
"""Log-probability of a candidate too small to frame: chosen only where nothing else covers its ink
(and then dropped)."""

DIGIT_COST = 0.05
"""Log-probability charged per digit read: a broken digit read as two confident pieces must beat the
whole digit read by this much more."""

PAIR_MIN_WIDTH = 0.5
"""Candidates at least this many digit heights wide (deslanted) are also read as two digits at once."""

PAIR_COST = 0.5
"""Log-probability charged for reading two digits at once rather than each on its own."""

PAIR_MIN_PROBABILITY = 0.9
"""A candidate is read as two digits only where the pair reader says it is two at least this surely."""

MARGIN_CAP = 1.5
"""The reading's margin (log top / second) counts up to this: past it, what is left says how sure a
model is of itself, which differs by model (the zoo's CNNs read pieces of a digit at 1.0 too)."""

FEATURES = ("bias", "log_p", "log_margin", "width", "height", "parts", "cut", "joined_left", "joined_right",
            "prior", "ink", "aspect", "width_squared", "gap_left", "gap_right",
            *(f"class_{d}" for d in range(10)), *(f"class_{d}_width" for d in range(10)),
            *(f"class_{d}_width_squared" for d in range(10)))
"""What `candidate_features` gives per candidate, in order (widths and gaps in the line's digit heights)."""

VERIFIER = np.array([
    0.4506, 0.1052, -0.3361, 0.1308, 0.3458,
    -0.3895, 0.7601, -0.1271, -0.1271, -0.8629,
    -0.0316, -0.3915, -0.3120, -0.2425, -0.2416,
    # per class read (0-9), then class x width, then class x width squared
    0.1199, 0.0977, -0.1041, -0.1573, 0.2582, -0.1182, -0.1243, 0.0485, 0.0721, 0.3580,
    0.1416, -0.1682, 0.0310, 0.1512, -0.0946, -0.1369, 0.2647, -0.0882, 0.0946, -0.0642,
    -0.0373, 0.0044, 0.0637, -0.0525, -0.0707, 0.2516, -0.0808, 0.0362, -0.2569, -0.1696,
])
"""Weights of `FEATURES` added to each candidate's log-probability in the choice: a structured
perceptron (`python -m training.numbers_verifier`, 5 epochs, rate 0.05) fitted on 6,000 numbers of
MNIST training digits (canvases and scans of seeds 10-12), so that the choice reads the true digits;
its settings were picked on the validation split (seeds 0-1, canvases and scans: 595 -> 629 of 800).
Fitted to cnn_augmented's readings (the upload default): the zoo's other models, surer of pieces of
digits, gain digits but split more (validation seed 0: cnn 259 -> 254 of 400 exact, mlp 233 -> 221),
so the service weighs only that model's candidates with it (`verifier_for`)."""

VERIFIED_MODELS = frozenset({"cnn_augmented"})
"""The models whose readings `VERIFIER` was fitted on."""


def verifier_for(model: str) -> npt.NDArray[np.float64] | None:
    """The verifier to weigh `model`'s candidates with: `VERIFIER` for the model it was fitted on,
    None (the model's reading and the shape priors alone) for any other."""
    return VERIFIER if model in VERIFIED_MODELS else None


def strip_candidates(strip: npt.NDArray[np.uint8]) -> Strip | None:
    """The line's primitives and candidate digits, or None when the strip holds no ink on its line."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(strip, connectivity=8)
    if count <= 1:
        return None
    middle = strip.shape[0] / 2.0
    areas = stats[1:, cv2.CC_STAT_AREA]
    pieces = [
        i for i in range(1, count)
        if stats[i, cv2.CC_STAT_AREA] >= SPECK * areas.max()
        # On the line: it reaches the middle row's neighbourhood (another line's digits do not).
        and stats[i, cv2.CC_STAT_TOP] <= middle + 0.3 * STRIP_DIGIT
        and stats[i, cv2.CC_STAT_TOP] + stats[i, cv2.CC_STAT_HEIGHT] >= middle - 0.3 * STRIP_DIGIT
    ]
    if not pieces:
        return None
    ys, xs = np.nonzero(np.isin(labels, pieces))
    shear = _shear(labels, stats, pieces)
    # Deslanted column of every ink pixel: x less the writing's lean at its height.
    column = xs - shear * (ys - middle)
    owner = labels[ys, xs]
    extents = {i: (float(column[owner == i].min()), float(column[owner == i].max())) for i in pieces}
    tallest = stats[pieces, cv2.CC_STAT_HEIGHT].max()
    height = float(np.median([stats[i, cv2.CC_STAT_HEIGHT] for i in pieces
                              if stats[i, cv2.CC_STAT_HEIGHT] >= DIGIT_SIZED * tallest]))
    merged = _merge(sorted(pieces, key=lambda i: extents[i][0]), extents, stats, height)
    selections = [cut for d in merged for cut in _cuts(np.isin(owner, d), ys, xs, column, shear, middle, height)]
    found = (_slot(sel, ys, xs, column, cut, joined) for sel, cut, joined in selections)
    primitives = sorted((s for s in found if s is not None), key=lambda s: s.left)[: MAX_DIGITS * MAX_PARTS]
    return Strip(primitives, _candidates(primitives, ys, xs, column, height), shear, height)


def _candidates(primitives: list[Slot], ys: npt.NDArray[np.intp], xs: npt.NDArray[np.intp],
                column: npt.NDArray[np.float64], height: float) -> list[tuple[int, int, Slot, float]]:
    """Runs of one to `MAX_PARTS` neighbouring primitives that could be one digit, with their prior:
    a digit is rarely much wider than it is tall, and its own pieces rarely lie far apart."""
    out = []
    for first in range(len(primitives)):
        selection = np.zeros(len(ys), bool)
        for last in range(first, min(first + MAX_PARTS, len(primitives))):
            part = primitives[last]
            if last > first and part.left - primitives[last - 1].right > 0.25 * height:
                break  # a clear gap: the next digit
            selection |= part.pixels
            slot = part if last == first else _slot(selection.copy(), ys, xs, column)
            assert slot is not None
            width = (slot.right - slot.left) / height
            if last > first and width > 1.6:
                break
            gaps = [max(0.0, b.left - a.right) for a, b in itertools.pairwise(primitives[first : last + 1])]
            prior = -WIDE_COST * max(0.0, width - WIDE) - sum(6.0 * max(0.0, g / height - 0.06) for g in gaps)
            # A digit spans its line's height: a shorter part is a cut-off tail, a bar, a flag.
            prior -= SHORT_COST * max(0.0, SHORT - slot.box[3] / height)
            out.append((first, last + 1, slot, prior))
    return out


def candidate_features(strip: Strip, probabilities: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Per candidate, what says whether it is one whole digit rather than a piece of one or two
    touching digits (`FEATURES` names them): the model's reading of it (how sure, against its second
    guess), its shape against the line's digits, how it was cut, and its class with its width (a "1"
    is narrow, a "0" or "8" read from a merged pair is wide)."""
    rows = []
    sorted_probabilities = np.sort(probabilities.astype(np.float64), axis=1)
    for index, (first, end, slot, prior) in enumerate(strip.candidates):
        top, second = sorted_probabilities[index, -1], sorted_probabilities[index, -2]
        width = (slot.right - slot.left) / strip.height
        klass = np.zeros(10)
        klass[int(np.argmax(probabilities[index]))] = 1.0
        after = end < len(strip.primitives) and strip.primitives[end].joined
        before = strip.primitives[first - 1].right if first > 0 else slot.left - strip.height
        following = strip.primitives[end].left if end < len(strip.primitives) else slot.right + strip.height
        gaps = np.clip([(slot.left - before) / strip.height, (following - slot.right) / strip.height], -0.5, 1.0)
        rows.append([
            1.0, np.log(max(top, 1e-6)), min(np.log(max(top, 1e-6)) - np.log(max(second, 1e-6)), MARGIN_CAP),
            width, slot.box[3] / strip.height, float(end - first), strip.primitives[first].cut,
            float(strip.primitives[first].joined), float(after), prior,
            float(slot.mask.sum()) / strip.height**2, slot.box[2] / slot.box[3], width**2, *gaps,
            *klass, *(klass * width), *(klass * width**2)])
    return np.array(rows, np.float64).reshape(len(strip.candidates), -1)


def choose_digits(strip: Strip, log_probabilities: npt.NDArray[np.float64],
                  pair_scores: npt.NDArray[np.float64] | None = None) -> list[tuple[int, bool]]:
    """The candidates (indices into `strip.candidates`) that read the line best, each with whether it
    is read as two digits at once: every primitive in at most one candidate, the sum of each digit's
    log-probability (its best class; without a model, 0), prior and cut cost largest (dynamic
    programming over the primitives, left to right). A candidate read as two (`pair_scores`, finite
    where the pair reader read it) counts its pair reading and two digits' cost, and no shape prior:
    being wide is what a pair is. A short primitive may be left out, at `DROP_COST` (a speck, a
    cut-off tail end that no digit reads with)."""
    n = len(strip.primitives)
    best = np.full(n + 1, -np.inf)
    best[0] = 0.0
    # The candidate ending there and whether read as two, or -1: the primitive before was dropped.
    back: list[tuple[int, bool]] = [(-1, False)] * (n + 1)
    ending: dict[int, list[int]] = {}
    for index, (_, end, _, _) in enumerate(strip.candidates):
        ending.setdefault(end, []).append(index)
    for end in range(1, n + 1):
        dropped = strip.primitives[end - 1]
        if dropped.box[3] < DROP_HEIGHT * strip.height:
            best[end] = best[end - 1] - DROP_COST
        for index in ending.get(end, []):
            first, _, _, prior = strip.candidates[index]
            start = best[first] - strip.primitives[first].cut
            score = start + float(log_probabilities[index]) + prior - DIGIT_COST
            if score > best[end]:
                best[end], back[end] = score, (index, False)
            if pair_scores is not None and start + pair_scores[index] - 2 * DIGIT_COST > best[end]:
                best[end], back[end] = start + pair_scores[index] - 2 * DIGIT_COST, (index, True)
    chosen, end = [], n
    while end > 0:
        if back[end][0] < 0:
            end -= 1
            continue
        chosen.append(back[end])
        end = strip.candidates[back[end][0]][0]
    return chosen[::-1]


def _halves(slot: Slot) -> tuple[Slot, Slot]:
    """A candidate read as two digits, divided for their boxes and pictures: at its emptiest column
    in the middle third (the reading itself was of the whole)."""
    mask = slot.mask
    width = mask.shape[1]
    middle = mask[:, width // 3 : max(width // 3 + 1, 2 * width // 3)].sum(axis=0)
    column = width // 3 + int(np.argmin(middle)) if width >= 3 else max(1, width // 2)
    # Along the line (deslanted), the division lies where the column does across the box.
    split = slot.left + (slot.right - slot.left) * column / width
    out = []
    for part, offset, extent in ((mask[:, :column], 0, (slot.left, split)), (mask[:, column:], column, (split, slot.right))):
        rows, cols = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
        if not len(rows):  # nothing on one side (a sliver): both halves show the whole
            return slot, slot
        crop = part[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        x, y = slot.box[0] + offset + int(cols[0]), slot.box[1] + int(rows[0])
        out.append(Slot(np.zeros(0, bool), crop, (x, y, crop.shape[1], crop.shape[0]), *extent))
    return out[0], out[1]


def _shear(labels: npt.NDArray[np.int32], stats: npt.NDArray[np.int32], pieces: list[int]) -> float:
    """The writing's lean (x shift per pixel down; negative leans right) from the digit pieces'
    second moments, as MNIST deskewing measures it (mu11 / mu02), their median weighted by ink."""
    values, weights = [], []
    for i in pieces:
        x, y, w, h, area = (int(v) for v in stats[i])
        moments = cv2.moments((labels[y : y + h, x : x + w] == i).astype(np.uint8), binaryImage=True)
        if moments["mu02"] > 0 and h >= 0.5 * w:  # a wide piece (touching digits, a bar) says little
            values.append(moments["mu11"] / moments["mu02"])
            weights.append(area)
    if not values:
        return 0.0
    order = np.argsort(values)
    cumulative = np.cumsum(np.array(weights, dtype=np.float64)[order])
    median = float(np.array(values)[order][np.searchsorted(cumulative, cumulative[-1] / 2.0)])
    return float(np.clip(median, -0.6, 0.6))


def _merge(pieces: list[int], extents: dict[int, tuple[float, float]], stats: npt.NDArray[np.int32],
           height: float) -> list[list[int]]:
    """Pieces that overlap across the line, or small ones right beside a digit, as one piece each."""
    digits: list[list[int]] = []
    span: list[tuple[float, float]] = []
    for i in pieces:
        left, right = extents[i]
        if digits:
            d_left, d_right = span[-1]
            overlap = min(right, d_right) - max(left, d_left)
            narrower = max(1.0, min(right - left, d_right - d_left))
            small = stats[i, cv2.CC_STAT_HEIGHT] < 0.35 * height
            if overlap >= MERGE_OVERLAP * narrower or (small and left - d_right <= 0.1 * height):
                digits[-1].append(i)
                span[-1] = (min(left, d_left), max(right, d_right))
                continue
        digits.append([i])
        span.append((left, right))
    # A small piece alone (a dot, a tick) is no digit.
    return [d for d in digits if max(stats[i, cv2.CC_STAT_HEIGHT] for i in d) >= DIGIT_SIZED * height]


def _cuts(selection: npt.NDArray[np.bool_], ys: npt.NDArray[np.intp], xs: npt.NDArray[np.intp],
          column: npt.NDArray[np.float64], shear: float, middle: float,
          height: float) -> list[tuple[npt.NDArray[np.bool_], float, bool]]:
    """A piece that may hold more than one digit, cut along seams (paths from its top to its bottom
    crossing as little ink as they can, near the writing's slant): the cuts the candidates may use,
    not yet a decision. Each part comes with the cost of the seam on its left (0 for the first): the
    strokes it crossed, in stroke widths, beyond the one a junction of touching digits takes."""
    cols = column[selection]
    left, width = float(cols.min()), float(cols.max() - cols.min())
    if width <= CUT_WIDTH * height:
        return [(selection, 0.0, False)]
    py, px = ys[selection], xs[selection]
    y0, x0 = int(py.min()), int(px.min())
    mask = np.zeros((int(py.max()) - y0 + 1, int(px.max()) - x0 + 1), np.uint8)
    mask[py - y0, px - x0] = 1
    pen = max(stroke_width(mask), 1.0)
    seams: list[tuple[npt.NDArray[np.intp], float]] = []
    # A seam from every few columns; the cheapest kept, each unless one kept already starts near it.
    starts = np.arange(left + CUT_MARGIN * height, left + width - CUT_MARGIN * height + 1e-9,
                       max(1.0, SEAM_STEP * height))
    references = starts[:, None] - x0 + shear * (np.arange(mask.shape[0]) + y0 - middle)[None, :]
    tried = [(path, crossed, start) for (path, crossed), start in zip(_seams(mask, references, height), starts,
                                                                      strict=True)]
    kept: list[float] = []
    if width > STRAIGHT_WIDTH * height:
        # Two digits sharing a stroke (a pen's "00") leave no seam crossing little ink: also offer
        # straight cuts down the emptiest deslanted columns, free, and let the model judge the halves.
        for start in _emptiest_columns(cols, left, width, height):
            reference = start - x0 + shear * (np.arange(mask.shape[0]) + y0 - middle)
            straight = np.clip(np.round(reference), 0, mask.shape[1]).astype(np.intp)
            if _splits_tall(straight[py - y0] > px - x0, py, height):
                kept.append(start)
                seams.append((straight, CUT_BASE))
    for path, crossed, start in sorted(tried, key=lambda t: (t[1], abs(t[2] - left - width / 2))):
        if len(kept) >= int(width / (CUT_SPACING * height)):
            break
        if crossed > SEAM_MAX_CROSS * pen:
            break  # sorted by ink crossed: the rest cross more strokes than touching digits share
        if not _splits_tall(path[py - y0] > px - x0, py, height):
            continue  # it cuts off a stroke's tip, not one digit from another
        # Far enough from the seams kept, and crossing none of them (each part between two seams).
        if all(abs(start - k) >= CUT_SPACING * height for k in kept) and all(
                np.abs(path - other).mean() > 0.05 * height and ((path >= other).all() or (path <= other).all())
                for other, _ in seams):
            kept.append(start)
            seams.append((path, CUT_BASE + CUT_COST * max(0.0, crossed / pen - 1.0)))
    seams.sort(key=lambda seam: float(seam[0].mean()))
    parts: list[tuple[npt.NDArray[np.bool_], float, bool]] = []
    before, cost_before = np.full(mask.shape[0], -1, np.intp), 0.0
    rows, local = py - y0, px - x0
    for path, cost in [*seams, (np.full(mask.shape[0], mask.shape[1] + 1, np.intp), 0.0)]:
        path = np.maximum(path, before)  # seams never cross: each part lies between two of them
        inside = (local >= before[rows]) & (local < path[rows])
        part = np.zeros_like(selection)
        part[np.flatnonzero(selection)[inside]] = True
        parts.append((part, cost_before, bool(parts)))
        before, cost_before = path, cost
    return parts


def _emptiest_columns(cols: npt.NDArray[np.float64], left: float, width: float, height: float) -> list[float]:
    """Deslanted columns where a piece holds least ink (local minima, emptiest first), at least
    `CUT_SPACING` digit heights apart and `STRAIGHT_MARGIN` from its ends."""
    histogram = np.bincount(np.round(cols - left).astype(np.int64), minlength=int(width) + 2).astype(np.float64)
    smooth = np.convolve(histogram, np.ones(3) / 3.0, mode="same")
    margin, spacing = STRAIGHT_MARGIN * height, CUT_SPACING * height
    bounds: list[float] = []
    for x in sorted(range(int(np.ceil(margin)), int(width - margin) + 1), key=lambda c: (smooth[c], abs(c - width / 2))):
        if smooth[x] <= smooth[max(0, x - 2) : x + 3].min() and all(abs(x - b) >= spacing for b in bounds):
            bounds.append(float(x))
        if len(bounds) >= int(width / spacing):
            break
    return [left + b for b in bounds]


def _splits_tall(left: npt.NDArray[np.bool_], rows: npt.NDArray[np.intp], height: float) -> bool:
    """Whether both sides of a cut (`left`: per ink pixel, whether it lies left of the seam) are
    at least `DROP_HEIGHT` of a digit tall, as two digits are."""
    if left.all() or not left.any():
        return False
    return bool(np.ptp(rows[left]) >= DROP_HEIGHT * height and np.ptp(rows[~left]) >= DROP_HEIGHT * height)


def _seams(mask: npt.NDArray[np.uint8], references: npt.NDArray[np.float64],
           height: float) -> list[tuple[npt.NDArray[np.intp], float]]:
    """For each row of `references` (a column per row of `mask`: the writing's slant through a
    seam's start), the path down `mask` (one column per row, moving at most one column a row) that
    crosses the least ink, kept within `SEAM_BAND` digit heights of it and drawn towards it; and the
    ink pixels it crossed. All starts at once (one pass over the rows, vectorised across them)."""
    rows, width = mask.shape
    count = references.shape[0]
    if count == 0:
        return []
    offset = np.abs(np.arange(width)[None, None, :] - references[:, :, None]) / height  # (starts, rows, cols)
    energy = mask.astype(np.float64)[None] + SEAM_PULL * offset
    energy[offset > SEAM_BAND] = np.inf
    total = energy[:, 0].copy()
    back = np.zeros((count, rows, width), np.intp)
    columns = np.arange(width)
    for row in range(1, rows):
        # The best of the three cells above (left, straight, right) for every column at once.
        padded = np.pad(total, ((0, 0), (1, 1)), constant_values=np.inf)
        options = np.stack([padded[:, :-2], padded[:, 1:-1], padded[:, 2:]])
        choice = np.argmin(options, axis=0)
        back[:, row] = columns[None, :] + choice - 1
        total = np.take_along_axis(options, choice[None], axis=0)[0] + energy[:, row]
    out = []
    for index in range(count):
        path = np.zeros(rows, np.intp)
        path[-1] = int(np.argmin(total[index]))
        for row in range(rows - 1, 0, -1):
            path[row - 1] = back[index, row, path[row]]
        out.append((path, float(mask[np.arange(rows), path].sum())))
    return out


def _slot(selection: npt.NDArray[np.bool_], ys: npt.NDArray[np.intp], xs: npt.NDArray[np.intp],
          column: npt.NDArray[np.float64], cut: float = 0.0, joined: bool = False) -> Slot | None:
    if int(selection.sum()) < 4:
        return None
    sy, sx = ys[selection], xs[selection]
    x0, x1, y0, y1 = int(sx.min()), int(sx.max()), int(sy.min()), int(sy.max())
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    mask[sy - y0, sx - x0] = 1
    cols = column[selection]
    return Slot(selection, mask, (x0, y0, x1 - x0 + 1, y1 - y0 + 1), float(cols.min()), float(cols.max()), cut, joined)


def groups_of(slots: Sequence[Slot], height: float) -> list[int]:
    """Group index per digit: a gap wider than a share of the digits' height and than the line's usual
    gap between digits starts a new group."""
    gaps = [max(0.0, b.left - a.right) for a, b in itertools.pairwise(slots)]
    if not gaps:
        return [0] * len(slots)
    usual = float(np.median(sorted(gaps)[: max(1, (len(gaps) + 1) // 2)]))  # the narrower half's median
    threshold = max(GROUP_GAP_HEIGHT * height, GROUP_GAP_RATIO * usual)
    groups = [0]
    for gap in gaps:
        groups.append(groups[-1] + (1 if gap > threshold else 0))
    return groups


def _working_box(box: Box, to_working: npt.NDArray[np.float64], shape: tuple[int, int]) -> Box:
    """A strip box's corners taken back to working pixels, as an axis-aligned box inside the image."""
    x, y, w, h = box
    corners = np.array([[x, y, 1], [x + w, y, 1], [x, y + h, 1], [x + w, y + h, 1]], dtype=np.float64)
    points = corners @ to_working.T
    x0, y0 = np.clip(points.min(axis=0), 0, None)
    x1, y1 = points.max(axis=0)
    x1, y1 = min(float(x1), shape[1]), min(float(y1), shape[0])
    return (round(x0), round(y0), max(1, round(x1 - x0)), max(1, round(y1 - y0)))
