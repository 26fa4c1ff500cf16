"""Process memory under large uploads: big buffers go back to the operating system when freed.

A 12 MP phone photo arrives as a 2-5 MB body, and the multipart parser, the decoder and the
pipeline each hold a buffer of about that size for a moment. glibc's allocator raises its mmap
threshold every time such a buffer is freed (up to 32 MiB), so later ones come from the heap,
where freed memory fragments and stays in the process: a worker that served a burst of photos
kept ~340 MB resident. Pinning the threshold makes every large buffer its own mapping, returned
to the system as soon as it is freed; small objects are unaffected (Python's own allocator).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

# mallopt parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

ARENA_MAX = 2
"""Heaps the allocator may keep (its default is 8 per core, one per thread that wants one); each
keeps what was freed in it, so a few threads' worth of photos would stay resident per arena."""

MMAP_THRESHOLD = 1024 * 1024
"""Allocations from this size up (request bodies, decoded photos) are mapped on their own; the
pipeline's working arrays (under 1 MiB at 384 px) stay on the heap, where they are reused rather
than mapped and faulted in afresh for every request. glibc's default starts at 128 KiB but moves;
fixed, it no longer moves."""


def return_large_buffers_to_os(threshold: int = MMAP_THRESHOLD) -> bool:
    """Pin glibc's mmap threshold, trim the heap beyond twice it, cap the arenas. False without glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    pinned = bool(mallopt(_M_MMAP_THRESHOLD, threshold) == 1)
    trimmed = bool(mallopt(_M_TRIM_THRESHOLD, 2 * threshold) == 1)
    mallopt(_M_ARENA_MAX, ARENA_MAX)
    if not (pinned and trimmed):
        log.warning("mallopt refused the mmap threshold: large buffers may stay resident after use")
    return pinned and trimmed


TRIM_INTERVAL_SECONDS = 10.0
"""How often freed heap memory is handed back to the system (`malloc_trim`), while the server runs."""


def release_free_heap() -> bool:
    """Return the free pages inside glibc's heaps to the system (`malloc_trim(0)`); False without glibc.

    Pinning the mmap threshold returns big buffers as they are freed, but a burst of requests also
    leaves the heaps full of freed medium-sized blocks (64 KiB socket reads, parser chunks, pipeline
    arrays); glibc only gives back what sits at a heap's top, so the rest stays resident. Trimming
    releases every free page wherever it lies. It takes a few milliseconds and runs without the GIL.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
    return True


async def trim_periodically(interval: float = TRIM_INTERVAL_SECONDS,
                            first: Callable[[], object] | None = None) -> None:
    """Every `interval` seconds, in a thread, until cancelled: `first` (the model arena's growth
    given back, which frees heap for the trim), then `release_free_heap`."""
    trim = True
    while True:
        await asyncio.sleep(interval)
        if first is not None:
            try:
                await asyncio.to_thread(first)
            except Exception:  # a failed hand-back must not end the trimming
                log.exception("giving the model arena's growth back failed")
        if trim and not await asyncio.to_thread(release_free_heap):
            trim = False  # not glibc: nothing to trim
