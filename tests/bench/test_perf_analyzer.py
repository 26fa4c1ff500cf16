"""bench.perf_analyzer: Triton's perf_analyzer against the service (REST and gRPC, batch 1 and 64).

The live measurement needs the Debian 13 root with perf_analyzer's wheel in it (`python -m
bench.perf_analyzer --build-root`, ~75 s as root) and DIGITS_TEST_PERF_ANALYZER=1; it is skipped
with the reason otherwise. The rest runs everywhere, offline and quick.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bench import perf_analyzer

STORE = Path(__file__).resolve().parents[2] / "model_store"

CSV = """Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency
1,9690.73,16,3398,0,33,3113,16,4,3614,12810,16572,31295
"""

OUTPUT = """  Server:
    Inference count: 29184
    Execution count: 456
    Successful request count: 456
"""


def test_missing_root_skips_with_the_command_that_builds_it(tmp_path: Path) -> None:
    root = tmp_path / "trixie"
    results = perf_analyzer.run(STORE, tmp_path / "out", root=root)
    assert results["skipped"] == (f"no Debian trixie root at {root}: python -m bench.perf_analyzer --build-root "
                                  "(debootstrap, as root)")
    assert "Skipped: no Debian trixie root" in perf_analyzer.render(results)


def test_root_without_the_wheel_says_so(tmp_path: Path) -> None:
    (tmp_path / "usr" / "lib64").mkdir(parents=True)
    (tmp_path / perf_analyzer.LOADER).touch()
    assert perf_analyzer.root_problem(tmp_path) == (
        f"perf_analyzer 2.60.0's wheel is not unpacked in {tmp_path}: python -m bench.perf_analyzer --build-root "
        "(debootstrap, as root)")


def test_the_binary_runs_through_the_roots_own_loader(tmp_path: Path) -> None:
    # glibc 2.38 comes from the root's loader and libraries, not the host's: no chroot, no privileges.
    assert perf_analyzer.command(tmp_path) == [
        str(tmp_path / "usr/lib64/ld-linux-x86-64.so.2"), "--library-path", str(tmp_path / "usr/lib/x86_64-linux-gnu"),
        str(tmp_path / "opt/perf_analyzer/perf_analyzer/bin/perf_analyzer")]


def test_default_run_arguments_only_name_model_batch_transport_and_url() -> None:
    assert perf_analyzer.perf_args("http", "127.0.0.1:8000", 1) == ["-m", "cnn", "-b", "1", "-u", "127.0.0.1:8000"]
    assert perf_analyzer.perf_args("grpc", "127.0.0.1:8001", 64) == [
        "-m", "cnn", "-b", "64", "-i", "grpc", "-u", "127.0.0.1:8001"]


def test_csv_and_server_counts_are_read() -> None:
    figures = perf_analyzer.parse_csv(CSV)
    assert figures["Inferences/Second"] == 9690.73
    assert figures["p99 latency"] == 31295
    assert perf_analyzer.server_counts(OUTPUT) == {
        "Inference count": 29184, "Execution count": 456, "Successful request count": 456}
    with pytest.raises(ValueError, match="no rows"):
        perf_analyzer.parse_csv(CSV.splitlines()[0])


def test_table_marks_a_relaxed_figure_and_a_failure() -> None:
    figures = perf_analyzer.parse_csv(CSV)
    ok = {"args": ["-m", "cnn", "-b", "1"], "figures": figures, "server": {"Successful request count": 456}}
    results: dict[str, Any] = {
        "version": "2.60.0", "model": "cnn", "when": "now", "quick": False,
        "machine": {"cpus": 2, "load_average_at_start": (1.0, 0, 0), "load_average_at_end": (2.0, 0, 0)},
        "http": {"1": ok, "64": {**ok, "default_run": {"unstable": True}}},
        "grpc": {"1": {"args": ["-i", "grpc"], "error": "Method not found!", "server": {}}},
    }
    table = perf_analyzer.render(results)
    assert "| http | 1 | 9,691 | 3.61 | 31.30 | 456 | 10% (default) | `perf_analyzer -m cnn -b 1` |" in table
    assert "| http | 64 | 9,691 | 3.61 | 31.30 | 456 | 50% (the default 10% was not reached) |" in table
    assert "| grpc | 1 | failed: Method not found! |" in table


def live_problem() -> str | None:
    if os.environ.get("DIGITS_TEST_PERF_ANALYZER") != "1":
        return "DIGITS_TEST_PERF_ANALYZER=1 runs perf_analyzer against the service (needs its Debian 13 root)"
    return perf_analyzer.root_problem(perf_analyzer.default_root())


@pytest.mark.skipif(live_problem() is not None, reason=str(live_problem()))
def test_perf_analyzer_measures_rest_and_grpc_at_batch_1_and_64(tmp_path: Path) -> None:
    # Count windows of 50 requests (~20 s for the four): every run must end with figures, and the
    # server side perf_analyzer reads from the statistics extension must count what it sent.
    results = perf_analyzer.run(STORE, tmp_path / "out", root=perf_analyzer.default_root(), quick=True)
    assert "skipped" not in results, results.get("skipped")
    for protocol in perf_analyzer.PROTOCOLS:
        for batch in perf_analyzer.BATCHES:
            result = results[protocol][str(batch)]
            assert result["exit"] == 0, (protocol, batch, result.get("error"))
            assert result["figures"]["Inferences/Second"] > 0
            server = result["server"]
            assert server["Successful request count"] > 0
            assert server["Inference count"] == batch * server["Execution count"]
