"""Large buffers are returned to the operating system when freed (service/server/memory.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# One process per case: glibc's allocator state is per process and would leak between the two.
PROGRAM = textwrap.dedent("""
    import sys
    import numpy as np
    from service.server.memory import return_large_buffers_to_os

    def rss_mb():
        with open("/proc/self/status") as status:
            return int(next(line for line in status if line.startswith("VmRSS")).split()[1]) // 1024

    if sys.argv[1] == "pinned":
        assert return_large_buffers_to_os()
    before = rss_mb()
    first = np.ones(3_000_000, np.uint8)  # a photo-sized buffer, freed: glibc raises its threshold
    del first
    photos, small = [], []
    for _ in range(60):
        photos.append(np.ones(3_000_000, np.uint8))
        small.append(np.ones(1000, np.uint8))  # live small objects between them, as in a server
    del photos
    print(rss_mb() - before)
""")


def grown_mb(mode: str) -> int:
    result = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=True)  # noqa: S603
    return int(result.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_photo_buffers_leave_the_process() -> None:
    assert grown_mb("pinned") < 20  # 180 MB was allocated and freed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_without_the_pin_they_stay() -> None:
    """The failure the pin fixes, so the first test cannot pass by accident."""
    assert grown_mb("default") > 100


TRIM_PROGRAM = textwrap.dedent("""
    import ctypes, sys
    from service.server.memory import release_free_heap

    def rss_mb():
        with open("/proc/self/status") as status:
            return int(next(line for line in status if line.startswith("VmRSS")).split()[1]) // 1024

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    # 64 KiB blocks (socket reads, parser chunks): below the mmap threshold, so they live in the heap;
    # every other one stays allocated, so the freed half is scattered and cannot shrink the heap's top.
    blocks = [libc.malloc(64 * 1024) for _ in range(3000)]
    for block in blocks:
        ctypes.memset(block, 1, 64 * 1024)
    for block in blocks[::2]:
        libc.free(block)
    before = rss_mb()
    if sys.argv[1] == "trim":
        assert release_free_heap()
    print(before - rss_mb())
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_trimming_returns_scattered_free_heap_memory() -> None:
    def released(mode: str) -> int:
        result = subprocess.run([sys.executable, "-c", TRIM_PROGRAM, mode], capture_output=True, text=True,  # noqa: S603
                                check=True, timeout=60)
        return int(result.stdout.strip())

    assert released("trim") > 60  # of the ~94 MiB freed in the middle of the heap
    assert released("none") < 10  # without the trim it stays resident
