"""What an image file costs to open and decode, bounded before any decoder sees it.

The pixel limit (`max_image_pixels`) bounds what decoding produces, not what it costs. Measured
against Pillow 13 (issue 9), a few files of legal size and pixel count cost seconds each:

- a progressive JPEG is decoded scan by scan, and each scan passes over every block of the image
  (~4 ms per scan at 2440x2440, even at reduced DCT scale). An encoder writes 6-10 scans; a file
  that repeats one small scan 37,000 times in 1 MB takes 267 s to decode.
- Pillow walks a PNG's chunks, a JPEG's markers and a GIF's extension blocks one by one in Python
  while it reads the header: 340,000 empty PNG chunks (4 MB) or a million JPEG comment markers
  block for over a second before a single pixel is read, and the service reads that header on
  the event loop to decide whether a request is small.
- a TIFF's first directory can hold 65,535 tags and its strip table a million entries, each
  turned into Python objects as the file is opened.

`check_structure` walks the same structures first, in C where it can (`bytes.count`, NumPy) and
in a bounded Python loop where it cannot, and refuses a file whose counts are far beyond what any
encoder writes. It looks only at framing, never at pixels, and costs well under a millisecond on
any accepted file. Formats it does not know pass through unchanged; their decoders are C code
that does not loop per structure in Python (WebP, BMP).
"""

from __future__ import annotations

import struct

import numpy as np

from digit_contract.errors import ImageTooComplex

MAX_JPEG_SEGMENTS = 256
"""Marker segments allowed before the first scan (APPn, COM, DQT, DHT, SOF...). A camera JPEG has 10-20."""

MAX_JPEG_MARKERS = 1024
"""Markers allowed in the whole file, restart markers aside. Each scan adds two or three (DHT, SOS)."""

MIN_JPEG_SCANS = 32
"""Scans always allowed: libjpeg writes 6 (greyscale) or 10 (colour) for a progressive JPEG, mozjpeg
and Photoshop up to about 20."""

JPEG_SCAN_PIXEL_BUDGET = 400_000_000
"""Scans times pixels allowed beyond `MIN_JPEG_SCANS`: each scan costs about 0.7 ns per pixel, so
this bounds a JPEG's decode at about 0.3 s of CPU (32 scans at 16.8 MP cost about the same)."""

MAX_PNG_CHUNKS = 4096
"""PNG chunks allowed in all. Encoders write image data in chunks of 8-64 KiB (libpng: 8 KiB), so an
8 MiB file needs about 1,000; a handful of others (palette, gamma, text) come on top."""

MAX_PNG_ANCILLARY_CHUNKS = 256
"""Chunks other than image data (IDAT) allowed."""

MAX_GIF_BLOCKS = 4096
"""Extension blocks and data sub-blocks allowed before the first frame's image data."""

MAX_TIFF_TAGS = 512
"""Tags allowed in a TIFF's first directory; baseline TIFF defines about 40."""

MAX_TIFF_STRIPS = 65_536
"""Strips or tiles allowed in a TIFF's first directory."""


MAX_EXIF_BYTES = 64 * 1024
"""Largest EXIF block accepted: a JPEG's APP1 segment cannot hold more, and cameras write 10-30 KB."""

MAX_EXIF_TAGS = 1024
"""Tags allowed in all of an EXIF block's directories (IFD0, Exif, GPS, interoperability, thumbnail);
cameras write 60-150. Orientation is read through Pillow's EXIF parser, which builds Python objects
per tag on the event loop: 20,000 tags in a 64x64 PNG cost 0.26 s, 720 KB of them a second."""

MAX_EXIF_DIRECTORIES = 16
"""Directories of an EXIF block walked at most (pointers may loop; the walk never revisits one)."""


def check_structure(data: bytes) -> None:
    """Raise `ImageTooComplex` if the file's framing would make it costly to open or decode."""
    if data[:3] == b"\xff\xd8\xff":
        _check_jpeg(data)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        _check_png(data)
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        _check_gif(data)
    elif data[:4] in (b"II*\x00", b"MM\x00*"):
        _check_tiff(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        _check_webp(data)


def check_exif(block: bytes) -> None:
    """Raise `ImageTooComplex` if an EXIF block (with or without its `Exif\\0\\0` prefix) is too large
    or has too many tags. Walks directory headers only: counts, never values."""
    if len(block) > MAX_EXIF_BYTES:
        raise ImageTooComplex(f"the image's EXIF block is {len(block):,} bytes; at most {MAX_EXIF_BYTES:,} are accepted")
    if block[:6] == b"Exif\x00\x00":
        block = block[6:]
    if len(block) < 8 or block[:4] not in (b"II*\x00", b"MM\x00*"):
        return  # not TIFF-structured: Pillow ignores it
    order = "<" if block[:2] == b"II" else ">"
    pending = [struct.unpack_from(order + "I", block, 4)[0]]
    seen: set[int] = set()
    tags = 0
    while pending and len(seen) < MAX_EXIF_DIRECTORIES:
        offset = pending.pop()
        if offset in seen or offset < 8 or offset + 2 > len(block):
            continue
        seen.add(offset)
        (count,) = struct.unpack_from(order + "H", block, offset)
        tags += count
        if tags > MAX_EXIF_TAGS:
            raise ImageTooComplex(f"the image's EXIF block has more than {MAX_EXIF_TAGS:,} tags (cameras write 60-150)")
        for index in range(min(count, (len(block) - offset - 2) // 12)):
            tag, _, _, value = struct.unpack_from(order + "HHII", block, offset + 2 + 12 * index)
            if tag in _EXIF_POINTERS:
                pending.append(value)
        end = offset + 2 + 12 * count
        if end + 4 <= len(block):
            pending.append(struct.unpack_from(order + "I", block, end)[0])  # the next directory (IFD1)


_EXIF_POINTERS = frozenset({0x8769, 0x8825, 0xA005})  # Exif, GPS and interoperability directories


def jpeg_scan_limit(pixels: int | None) -> int:
    if not pixels:
        return MIN_JPEG_SCANS
    return max(MIN_JPEG_SCANS, JPEG_SCAN_PIXEL_BUDGET // pixels)


_START_OF_FRAME = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOF0-SOF15, not DHT, JPG, DAC


def _check_jpeg(data: bytes) -> None:
    # The header: marker segments, each with a 2-byte length, up to the first start of scan.
    position, segments, pixels = 2, 0, None
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return  # not a marker where one must be: corrupt, which the decoder reports
        marker = data[position + 1]
        if marker == 0xFF:  # fill bytes before a marker
            position += 1
            continue
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            raise ImageTooComplex(f"the JPEG has more than {MAX_JPEG_SEGMENTS} marker segments before its image data")
        (length,) = struct.unpack_from(">H", data, position + 2)
        if marker == 0xE1 and data[position + 4 : position + 10] == b"Exif\x00\x00":
            check_exif(data[position + 4 : position + 2 + length])
        if marker in _START_OF_FRAME and position + 9 <= len(data):
            height, width = struct.unpack_from(">HH", data, position + 5)
            pixels = height * width
        position += 2 + length
        if marker == 0xDA:
            break
    # The rest: entropy-coded data, where a literal 0xFF is always followed by 0x00 (byte stuffing),
    # so every other 0xFF pair is a marker. Count them, and the scans, in C.
    rest = np.frombuffer(data, dtype=np.uint8, offset=min(position, len(data)))
    following = rest[1:][rest[:-1] == 0xFF]
    markers = following[(following != 0x00) & (following != 0xFF) & ((following < 0xD0) | (following > 0xD7))]
    if markers.size + segments > MAX_JPEG_MARKERS:
        raise ImageTooComplex(f"the JPEG has more than {MAX_JPEG_MARKERS} markers")
    scans = 1 + int(np.count_nonzero(markers == 0xDA))
    limit = jpeg_scan_limit(pixels)
    if scans > limit:
        raise ImageTooComplex(
            f"the JPEG has {scans:,} scans; at most {limit:,} are accepted for an image of this size "
            "(encoders write 6-20)"
        )


def _check_png(data: bytes) -> None:
    position, chunks, ancillary = 8, 0, 0
    while position + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        chunks += 1
        if kind != b"IDAT":
            ancillary += 1
        if chunks > MAX_PNG_CHUNKS or ancillary > MAX_PNG_ANCILLARY_CHUNKS:
            raise ImageTooComplex(
                f"the PNG has more than {MAX_PNG_CHUNKS:,} chunks, or more than {MAX_PNG_ANCILLARY_CHUNKS} "
                "besides image data"
            )
        if kind == b"IEND":
            return
        if kind == b"eXIf":
            check_exif(data[position + 8 : position + 8 + length])
        elif (kind in (b"tEXt", b"zTXt", b"iTXt") and data[position + 8 : position + 29] == b"Raw profile type exif"
              and length > 2 * MAX_EXIF_BYTES + 1024):
            # ImageMagick's hex-encoded EXIF, which Pillow also reads: twice the block's size, and a header.
            raise ImageTooComplex(f"the PNG's EXIF text chunk is {length:,} bytes; the EXIF block may be at "
                                  f"most {MAX_EXIF_BYTES:,}")
        position += 12 + length  # length, type, data, CRC


def _check_gif(data: bytes) -> None:
    if len(data) < 13:
        return
    flags = data[10]
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)  # the global colour table
    blocks = 0
    while position < len(data):
        introducer = data[position]
        if introducer != 0x21:  # 0x2C starts the first frame; anything else is for the decoder to judge
            return
        position += 2  # introducer and label, then data sub-blocks until an empty one
        while position < len(data):
            blocks += 1
            if blocks > MAX_GIF_BLOCKS:
                raise ImageTooComplex(f"the GIF has more than {MAX_GIF_BLOCKS:,} blocks before its first frame")
            size = data[position]
            position += 1 + size
            if size == 0:
                break


def _check_tiff(data: bytes) -> None:
    order = "<" if data[:2] == b"II" else ">"
    if len(data) < 8:
        return
    (offset,) = struct.unpack_from(order + "I", data, 4)
    if offset + 2 > len(data):
        return
    (tags,) = struct.unpack_from(order + "H", data, offset)
    if tags > MAX_TIFF_TAGS:
        raise ImageTooComplex(f"the TIFF's first directory has {tags:,} tags; at most {MAX_TIFF_TAGS} are accepted")
    for index in range(tags):
        entry = offset + 2 + 12 * index
        if entry + 12 > len(data):
            return
        tag, _, count = struct.unpack_from(order + "HHI", data, entry)
        if tag in (273, 324) and count > MAX_TIFF_STRIPS:  # StripOffsets, TileOffsets
            raise ImageTooComplex(
                f"the TIFF has {count:,} strips or tiles; at most {MAX_TIFF_STRIPS:,} are accepted"
            )


MAX_WEBP_CHUNKS = 64
"""RIFF chunks walked in a WebP (an animated one has a chunk per frame; only the EXIF matters here)."""


def _check_webp(data: bytes) -> None:
    position = 12
    for _ in range(MAX_WEBP_CHUNKS):
        if position + 8 > len(data):
            return
        kind, length = struct.unpack_from("<4sI", data, position)
        if kind == b"EXIF":
            check_exif(data[position + 8 : position + 8 + length])
        position += 8 + length + (length & 1)  # chunks are padded to an even size
