"""bench.memory's breakdown of a worker's resident pages by what backs them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bench.memory import resident_by_mapping


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/<pid>/smaps")
def test_the_breakdown_adds_up_to_the_process_rss() -> None:
    """Every resident page is counted once: the libraries by name, other files, anonymous memory."""
    parts = resident_by_mapping(os.getpid(), top=3)
    status = Path("/proc/self/status").read_text()
    rss_mb = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024
    assert len(parts) == 5  # three libraries, "other files", "anonymous"
    assert parts["anonymous"] > 1
    assert sum(parts.values()) == pytest.approx(rss_mb, rel=0.05)
