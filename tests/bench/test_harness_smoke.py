"""Smoke test of the benchmark harness: its parsers, its load loop against a real peer, its verdicts.

A few seconds, offline. The load run uses the best load generator installed (wrk, hey) and the
pure-Python loop otherwise, which is also tested on its own so it keeps working where neither is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.http_suite import is_lopsided, worker_balance
from bench.loadgen import LoadResult, parse_hey, parse_wrk, pick_tool, run_load, run_python
from bench.payloads import Digits, get_payload, load_digits, multipart_body, upload_payload
from bench.report import evaluate_targets, render_markdown
from bench.servers import RunningServer, server_spec

# Captured from `hey -z 1s -c 4 -m POST -T multipart/... -D body.bin URL` (the status and error
# sections of two other captures pasted in, so every section the parser reads is exercised).
HEY_OUTPUT = """
Summary:
  Total:\t1.0012 secs
  Slowest:\t0.1552 secs
  Fastest:\t0.0003 secs
  Average:\t0.0014 secs
  Requests/sec:\t2736.6590

  Total data:\t1079560 bytes
  Size/request:\t394 bytes

Response time histogram:
  0.000 [1]\t|
  0.016 [2735]\t|■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■
  0.155 [4]\t|


Latency distribution:
  10% in 0.0006 secs
  25% in 0.0009 secs
  50% in 0.0011 secs
  75% in 0.0015 secs
  90% in 0.0018 secs
  95% in 0.0020 secs
  99% in 0.0050 secs

Details (average, fastest, slowest):
  DNS+dialup:\t0.0000 secs, 0.0003 secs, 0.1552 secs
  resp wait:\t0.0014 secs, 0.0002 secs, 0.1539 secs

Status code distribution:
  [200]\t2720 responses
  [503]\t20 responses

Error distribution:
  [10]\tPost "http://127.0.0.1:18766/predict": dial tcp 127.0.0.1:18766: connect: connection refused
  [2]\tPost "http://127.0.0.1:18766/predict": context deadline exceeded
"""

# Captured from `wrk -t1 -c4 -d1s -s bench/wrk_bodies.lua URL -- POST multipart/... DIR 1`.
WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:18765/predict?model=cnn_noise
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.88ms    1.52ms  21.20ms   98.04%
    Req/Sec     5.65k   380.24     5.92k    90.91%
  6181 requests in 1.10s, 3.07MB read
Requests/sec:   5619.67
Transfer/sec:      2.79MB
BENCH_RESULT requests=6181 duration_us=1099886 bytes=3214120 connect=0 read=2 write=0 status=7 timeout=1 \
mean_us=877.5 max_us=21201 p50_us=542 p95_us=1115 p99_us=8995
"""


def test_parse_hey_reads_rates_percentiles_and_both_kinds_of_error() -> None:
    result = parse_hey(HEY_OUTPUT, concurrency=4)

    assert result.requests == 2740
    assert result.requests_per_s == pytest.approx(2740 / 1.0012)
    assert (result.p50_ms, result.p95_ms, result.p99_ms) == pytest.approx((1.1, 2.0, 5.0))
    assert result.mean_ms == pytest.approx(1.4)
    assert result.max_ms == pytest.approx(155.2)
    assert result.non_2xx == 20
    assert result.socket_errors == 12
    assert result.errors == 32


def test_parse_wrk_reads_the_scripts_result_line() -> None:
    result = parse_wrk(WRK_OUTPUT, concurrency=4)

    assert result.requests == 6181
    assert result.seconds == pytest.approx(1.099886)
    assert result.requests_per_s == pytest.approx(6181 / 1.099886)
    assert (result.p50_ms, result.p95_ms, result.p99_ms) == pytest.approx((0.542, 1.115, 8.995))
    assert result.non_2xx == 7
    assert result.socket_errors == 3  # 2 read errors + 1 timeout


def test_multipart_body_has_one_file_part_per_image() -> None:
    body = multipart_body([b"\x89PNG-a", b"\x89PNG-b"], boundary="B")

    assert body.count(b'name="file"') == 2
    assert body.startswith(b"--B\r\n") and body.endswith(b"--B--\r\n")
    assert b"\r\n\r\n\x89PNG-a\r\n--B\r\n" in body


@pytest.fixture(scope="module")
def digits() -> Digits:
    return load_digits(8)


@pytest.fixture(scope="module")
def ceiling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The upload-ceiling peer, one worker, on a free loopback port."""
    spec = server_spec("ceiling", 1, Path("unused"))
    with RunningServer(spec, tmp_path_factory.mktemp("logs"), ready_timeout_s=30) as server:
        yield server


def test_a_two_second_run_against_the_upload_ceiling_is_served_without_errors(
    ceiling: RunningServer, digits: Digits
) -> None:
    tool = pick_tool("auto")  # wrk, else hey, else the Python loop
    payload = upload_payload(digits, "/predict?model=cnn_noise", bodies=8)

    assert ceiling.check(payload) == {"checked_images": 0, "correct": 0}  # 200s; a constant has no digit to check
    result = run_load(tool, ceiling.base_url, payload, concurrency=4, seconds=2)

    assert isinstance(result, LoadResult)
    assert result.requests > 0
    assert result.requests_per_s > 0
    assert result.errors == 0
    assert result.p50_ms is not None and 0 < result.p50_ms <= result.p99_ms  # type: ignore[operator]


def test_the_python_loop_counts_answers_and_non_2xx(ceiling: RunningServer) -> None:
    answered = run_python(ceiling.base_url, get_payload("/constant"), concurrency=2, seconds=0.5, timeout_s=5)
    refused = run_python(ceiling.base_url, get_payload("/no-such-path"), concurrency=2, seconds=0.5, timeout_s=5)

    assert answered.requests > 0 and answered.errors == 0
    assert refused.requests > 0 and refused.non_2xx == refused.requests and refused.socket_errors == 0


def _run(server: str, rps: float, *, workers: int = 2, role: str = "compare", errors: int = 0) -> dict[str, object]:
    return {"server": server, "workers": workers, "role": role, "scenario": "upload", "concurrency": 32,
            "images_per_request": 1, "requests_per_s": rps, "images_per_s": rps, "errors": errors,
            "p50_ms": 1.0, "p95_ms": 2.0, "p99_ms": 3.0, "server_cpu_cores": 1.5, "loadgen_cpu_cores": 0.3,
            "other_cpu_cores": 0.0}


def test_targets_are_ratios_within_the_run_with_pass_and_miss() -> None:
    report = {
        "http": {"plan": {"workers": 2, "concurrency": [32]}, "servers": [], "runs": [
            _run("service", 1300), _run("ceiling", 2000), _run("naive_ort", 1000), _run("naive_keras", 100),
            _run("bentoml", 1400), _run("service", 1000, workers=1, role="scaling"),
            _run("ceiling", 1100, workers=1, role="scaling"),
        ]},
        "kernels": {"peak_gflops": 100.0, "models": [
            {"model": "cnn", "flops_per_image": 2_000_000, "ort_images_per_s": 30_000.0},  # limit 50k: 60%
            {"model": "mlp", "flops_per_image": 200_000, "ort_images_per_s": 1_000.0},  # not a CNN: ignored
        ]},
        "footprint": {"service_starts": [{"ready_s": 0.8, "workers_memory": [
            {"pid": 1, "command": "python -m service", "rss_mb": 160.0, "hwm_mb": 161.0, "pss_mb": 150.0,
             "uss_mb": 140.0}]}]},
    }

    status = {t.name: t.status for t in evaluate_targets(report)}

    assert status["/predict c=32 vs upload ceiling"] == "PASS"  # 65%
    assert status["/predict c=32 vs naive ORT"] == "PASS"
    assert status["/predict c=32 vs naive Keras"] == "PASS"  # 13x
    assert status["/predict c=32 vs BentoML"] == "MISS"  # 0.93x
    assert status["CNN large-batch inference vs compute limit"] == "PASS"
    assert status["Resident memory per worker, six models"] == "MISS"  # 160 MB
    assert status["Start to ready (1 worker)"] == "PASS"
    assert status["Scaling, 2 workers / 1 worker (c=32)"] == "MISS"  # 1.3x
    assert status["TensorFlow absent from the serving image"] == "n/a"  # not measured here
    assert status["No errors under load (every service run)"] == "PASS"
    report["targets"] = [t.to_dict() for t in evaluate_targets(report)]
    markdown = render_markdown(report)
    assert "| share of the upload ceiling | 65% |" in markdown
    assert "| x naive Keras | 13.0x |" in markdown


def test_a_run_where_one_worker_took_every_connection_is_lopsided() -> None:
    assert is_lopsided({"concurrency": 32, "worker_cpu_cores": [0.01, 1.13]})
    assert not is_lopsided({"concurrency": 32, "worker_cpu_cores": [0.93, 0.88]})
    assert not is_lopsided({"concurrency": 1, "worker_cpu_cores": [0.0, 1.0]})  # one connection, one worker
    assert not is_lopsided({"concurrency": 32, "worker_cpu_cores": [1.0]})  # a single worker
    assert worker_balance({"worker_cpu_cores": [0.5, 1.0]}) == pytest.approx(0.5)
