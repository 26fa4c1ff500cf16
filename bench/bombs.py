"""Image files of legal size and pixel count that cost far more to open or decode than they look.

Each builder makes the file an attacker who reads the code would send (issue 9), at a size the
caller chooses, from a real encoder's output with its framing repeated.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _digit_plane(side: int) -> np.ndarray:
    plane = np.full((side, side), 220, np.uint8)
    plane[side // 4 : 3 * side // 4, side // 2 - side // 30 : side // 2 + side // 30] = 30
    return plane


def progressive_scan_bomb(side: int = 2440, size: int = 150_000) -> bytes:
    """A greyscale progressive JPEG whose last scan is repeated until the file is `size` bytes.

    libjpeg decodes every scan over the whole image: ~4 ms each at 2440x2440, so 150 KB costs ~20 s.
    """
    buffer = io.BytesIO()
    Image.fromarray(_digit_plane(side)).save(buffer, "JPEG", progressive=True, quality=90)
    data = buffer.getvalue()
    last_scan = data.rindex(b"\xff\xda")
    end = data.rindex(b"\xff\xd9")
    scan = data[last_scan:end]
    copies = max(0, (size - len(data)) // len(scan))
    return data[:end] + scan * copies + b"\xff\xd9"


def jpeg_comment_bomb(comments: int = 1_000_000) -> bytes:
    """A small JPEG with `comments` empty comment (COM) segments before its image data."""
    buffer = io.BytesIO()
    Image.fromarray(_digit_plane(64)).save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    return data[:2] + b"\xff\xfe\x00\x02" * comments + data[2:]


def png_chunk_bomb(chunks: int = 340_000, kind: bytes = b"tEXt") -> bytes:
    """A 64x64 PNG with `chunks` empty chunks of type `kind` before its image data."""
    buffer = io.BytesIO()
    Image.fromarray(_digit_plane(64)).save(buffer, "PNG")
    data = buffer.getvalue()
    chunk = struct.pack(">I", 0) + kind + struct.pack(">I", zlib.crc32(kind))
    first_data = data.index(b"IDAT") - 4
    return data[:first_data] + chunk * chunks + data[first_data:]


def png_with_small_idat_chunks(side: int = 1024, chunk_size: int = 4096) -> bytes:
    """An ordinary PNG whose image data is split into many `chunk_size` IDAT chunks (legitimate)."""
    # Paper grain, so that the data does not compress to nothing and needs many chunks.
    plane = _digit_plane(side) + np.random.default_rng(0).integers(0, 24, (side, side), dtype=np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in plane)
    compressed = zlib.compress(raw, 1)

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    parts = [compressed[i : i + chunk_size] for i in range(0, len(compressed), chunk_size)]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + b"".join(chunk(b"IDAT", p) for p in parts)
            + chunk(b"IEND", b""))


def gif_comment_bomb(sub_blocks: int = 1_000_000) -> bytes:
    """A small GIF with one comment extension made of `sub_blocks` one-byte data sub-blocks."""
    buffer = io.BytesIO()
    Image.fromarray(_digit_plane(64)).save(buffer, "GIF")
    data = buffer.getvalue()
    flags = data[10]
    start = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    comment = b"\x21\xfe" + b"\x01a" * sub_blocks + b"\x00"
    return data[:start] + comment + data[start:]


def tiff_with_tags(tags: int) -> bytes:
    """A little-endian TIFF header whose first directory declares `tags` entries (all private tags)."""
    entries = b"".join(struct.pack("<HHII", 50000 + i % 10000, 3, 1, 0) for i in range(tags))
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", min(tags, 65535)) + entries + b"\x00" * 4


def tiff_with_strips(strips: int) -> bytes:
    """A TIFF header whose StripOffsets tag declares `strips` strips."""
    entry = struct.pack("<HHII", 273, 4, strips, 26)
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + b"\x00" * 4
