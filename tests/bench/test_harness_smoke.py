"""Smoke test of the benchmark harness: its parsers, its load loop against a real peer, its verdicts.

A few seconds, offline. The load run uses the best load generator installed (wrk, hey) and the
pure-Python loop otherwise, which is also tested on its own so it keeps working where neither is.
The realistic payload kinds are rendered (a couple of bodies each), decoded, and sent to the
decode ceiling; the in-process preparation timer and the per-kind targets run on small inputs.
"""

from __future__ import annotations

import http.client
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bench.http_suite import Plan, build_sessions, is_lopsided, kind_scenario, worker_balance
from bench.loadgen import LoadResult, parse_hey, parse_wrk, pick_tool, run_load, run_python
from bench.payloads import (
    PAYLOAD_KINDS,
    Digits,
    UploadFile,
    balanced_indices,
    files_payload,
    get_payload,
    load_digits,
    multipart_body,
    realistic_uploads,
    upload_payload,
)
from bench.peers.decode_ceiling import RefusedImage, decode_upload
from bench.preparation import measure_kind
from bench.report import evaluate_targets, payload_targets, render_markdown
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


# -- realistic payloads and the decode ceiling -------------------------------------------------

SMOKE_BODIES = {"mnist_png": 3, "canvas": 2, "scan": 2, "photo_2mp": 2, "photo_12mp": 1}
"""Bodies rendered per kind here: a 12 MP photo takes most of a second to render."""

EXPECTED = {  # kind -> (format, mode after decoding, (min, max) longest side)
    "mnist_png": ("PNG", "L", (28, 28)),
    "canvas": ("PNG", "RGBA", (300, 600)),
    "scan": ("PNG", "L", (400, 1100)),
    "photo_2mp": ("JPEG", "RGB", (1440, 2048)),
    "photo_12mp": ("JPEG", "RGB", (4032, 4032)),
}


@pytest.fixture(scope="module")
def uploads() -> dict[str, list[UploadFile]]:
    sample = load_digits()  # 64 digits: enough for every label in the balanced pick
    return {kind: realistic_uploads(kind, sample, count=count) for kind, count in SMOKE_BODIES.items()}


def test_every_payload_kind_has_expected_bodies() -> None:
    assert set(EXPECTED) == set(PAYLOAD_KINDS) == set(SMOKE_BODIES)


@pytest.mark.parametrize("kind", list(SMOKE_BODIES))
def test_each_payload_kind_is_a_real_file_of_its_kind_labelled_with_its_digit(
    kind: str, uploads: dict[str, list[UploadFile]]
) -> None:
    sample = load_digits()
    fmt, mode, (shortest_longest, longest_longest) = EXPECTED[kind]
    expected_labels = ([int(label) for label in sample.labels[: SMOKE_BODIES[kind]]] if kind == "mnist_png"
                       else [int(sample.labels[i]) for i in balanced_indices(sample.labels, SMOKE_BODIES[kind])])

    assert [f.label for f in uploads[kind]] == expected_labels
    for file in uploads[kind]:
        with Image.open(io.BytesIO(file.data)) as image:
            image.load()  # the whole file decodes
            assert (image.format, image.mode, image.size) == (fmt, mode, (file.width, file.height))
            assert shortest_longest <= max(image.size) <= longest_longest
            if kind == "canvas":  # a transparent background: the corners are fully transparent
                corner = image.getpixel((0, 0))
                assert isinstance(corner, tuple) and corner[3] == 0


def test_balanced_indices_take_every_label_in_turn() -> None:
    sample = load_digits()
    chosen = balanced_indices(sample.labels, 12)

    assert [int(sample.labels[i]) for i in chosen] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert len(set(chosen)) == 12


def test_rendering_is_reproducible_from_the_seed() -> None:
    sample = load_digits()
    first = realistic_uploads("canvas", sample, count=2, seed=3)

    assert [f.data for f in first] == [f.data for f in realistic_uploads("canvas", sample, count=2, seed=3)]
    assert [f.data for f in first] != [f.data for f in realistic_uploads("canvas", sample, count=2, seed=4)]


def test_a_jpeg_upload_is_named_and_typed_as_one(uploads: dict[str, list[UploadFile]]) -> None:
    payload = files_payload(uploads["photo_2mp"], "/predict")

    assert len(payload.bodies) == 2 and payload.labels == [[f.label] for f in uploads["photo_2mp"]]
    assert b'filename="digit0.jpeg"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8' in payload.bodies[0]


def test_the_reference_decode_reduces_big_jpegs_and_keeps_small_files_whole(
    uploads: dict[str, list[UploadFile]]
) -> None:
    assert decode_upload(uploads["photo_12mp"][0].data).size == (504, 378)  # 4032x3024 at 1/8
    photo = uploads["photo_2mp"][0]
    assert 384 <= max(decode_upload(photo.data).size) < max(photo.width, photo.height) / 2
    canvas = uploads["canvas"][0]
    assert decode_upload(canvas.data).size == (canvas.width, canvas.height)
    with pytest.raises(RefusedImage, match="pixel limit"):
        decode_upload(uploads["photo_12mp"][0].data, max_pixels=6_000_000)  # from the header, nothing decoded
    with pytest.raises(RefusedImage, match="not an accepted image"):
        decode_upload(b"%PDF-1.4 not an image")


def test_the_reference_decode_applies_the_exif_orientation() -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: a viewer turns it 90 degrees
    Image.new("RGB", (1600, 1200), "white").save(buffer, "JPEG", exif=exif)

    assert decode_upload(buffer.getvalue()).size == (300, 400)  # 1/4 scale, then upright


@pytest.fixture(scope="module")
def decode_ceiling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    spec = server_spec("decode_ceiling", 1, Path("unused"))
    with RunningServer(spec, tmp_path_factory.mktemp("logs"), ready_timeout_s=30) as server:
        yield server


def _post(server: RunningServer, body: bytes) -> tuple[int, str | None, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", "/predict", body=body,
                           headers={"Content-Type": files_payload([], "/").content_type or ""})
        response = connection.getresponse()
        return response.status, response.getheader("X-Decoded"), response.read()
    finally:
        connection.close()


def test_the_decode_ceiling_decodes_each_kind_and_answers_the_constant(
    decode_ceiling: RunningServer, uploads: dict[str, list[UploadFile]]
) -> None:
    for kind in ("mnist_png", "canvas", "photo_12mp"):
        file = uploads[kind][0]
        status, decoded, body = _post(decode_ceiling, files_payload([file], "/predict").bodies[0])

        assert status == 200, body
        assert decoded == ("504x378" if kind == "photo_12mp" else f"{file.width}x{file.height}")
        assert body.startswith(b'{"model": "cnn_noise"')
    payload = files_payload(uploads["canvas"], "/predict")
    assert decode_ceiling.check(payload, samples=2, allow_refusals=True) == {
        "checked_images": 0, "correct": 0, "refused": {}}  # answered, and a constant has no digit to check
    status, _, body = _post(decode_ceiling, multipart_body([b"GIF89a-truncated"]))
    assert status == 415 and b"not an accepted image" in body


def test_the_preparation_timer_gives_medians_for_decode_and_prepare(uploads: dict[str, list[UploadFile]]) -> None:
    result = measure_kind(uploads["canvas"], max_pixels=50_000_000, min_samples=3, budget_s=0.0)

    medians = result["median_ms"]
    assert result["bodies"] == 2 and result["samples_per_function"] >= 3
    assert 0 < medians["reference_decode"] < medians["service_prepare"]
    assert result["prep_ms"] == pytest.approx(medians["service_prepare"] - medians["reference_decode"], abs=1e-3)


def test_every_payload_kind_runs_against_the_service_and_both_references_at_1_and_n_workers(
    digits: Digits, uploads: dict[str, list[UploadFile]]
) -> None:
    kinds = {kind: files_payload(files, "/predict") for kind, files in uploads.items()}
    sessions = build_sessions(Plan(workers=2, concurrency=(1, 32)), Path("model_store"), digits, kinds)

    found = {(s.spec.key, s.spec.workers): {sc.name: sc for sc in s.scenarios} for s in sessions}
    for key in ("service", "decode_ceiling", "naive_ort"):
        for workers in (1, 2):
            assert {kind_scenario(k) for k in PAYLOAD_KINDS} <= set(found[key, workers])
            assert found[key, workers]["upload_photo_12mp"].concurrency == (32,)
    assert found["service", 2]["upload"].concurrency == (1, 32)  # round 1's upload is the mnist_png kind
    assert "upload_canvas" not in found["naive_keras", 2] and ("naive_keras", 1) not in found
    only = build_sessions(Plan(workers=2, only_payloads=True), Path("model_store"), digits, kinds)
    assert {(s.spec.key, s.spec.workers) for s in only} == {(k, w) for k in ("service", "decode_ceiling", "naive_ort")
                                                            for w in (1, 2)}


def _kind_run(server: str, kind: str, workers: int, rps: float, **extra: Any) -> dict[str, Any]:
    return {**_run(server, rps, workers=workers, role="compare" if workers == 2 else "scaling"),
            "scenario": kind_scenario(kind), "payload": kind, **extra}


def test_payload_targets_are_ratios_per_kind_at_every_worker_count() -> None:
    rss = {"workers_rss_max_mb": [140.0], "workers_rss_after_mb": [120.0], "workers_hwm_mb": [141.0]}
    runs = [
        _kind_run("service", "canvas", 1, 70), _kind_run("decode_ceiling", "canvas", 1, 100),
        _kind_run("naive_ort", "canvas", 1, 50), _kind_run("service", "canvas", 2, 110),
        _kind_run("decode_ceiling", "canvas", 2, 200), _kind_run("naive_ort", "canvas", 2, 100),
        _kind_run("service", "photo_12mp", 1, 10, **rss), _kind_run("decode_ceiling", "photo_12mp", 1, 12),
        _kind_run("naive_ort", "photo_12mp", 1, 4),
        _kind_run("service", "photo_12mp", 2, 18, **{**rss, "workers_rss_max_mb": [150.0, 160.0]}),
        _kind_run("decode_ceiling", "photo_12mp", 2, 24), _kind_run("naive_ort", "photo_12mp", 2, 20),
        _kind_run("service", "mnist_png", 2, 2500),
    ]
    kinds = {"canvas": {"description": "canvas", "bodies": 2, "formats": ["PNG"], "sizes": ["400x400"],
                        "mean_bytes": 9000, "labels": [0, 1]},
             "photo_12mp": {"description": "photo", "bodies": 1, "formats": ["JPEG"], "sizes": ["4032x3024"],
                            "mean_bytes": 2_000_000, "labels": [0]}}
    prep = {"bodies": 2, "median_ms": {"reference_decode": 2.0, "service_decode": 2.5, "service_prepare": 5.0},
            "prep_ms": 3.0, "prep_over_decode": 1.5, "failures_per_round": {}}
    report = {
        "http": {"plan": {"workers": 2, "concurrency": [32], "only_payloads": True}, "payloads": kinds,
                 "servers": [], "runs": runs},
        "preparation": {"kinds": {"canvas": prep, "photo_12mp": {**prep, "prep_ms": 1.0, "prep_over_decode": 0.5}}},
        "baseline": {"date": "then", "git": "abc", "model": "cnn_noise",
                     "upload_c32_requests_per_s": {"service": {"2": 2462.0}, "ceiling": {}}},
    }

    status = {t.name: (t.status, t.measured) for t in payload_targets(report)}

    assert status["canvas: /predict c=32 vs decode ceiling"][0] == "MISS"  # 70% at 1 worker, but 55% at 2
    assert status["canvas: /predict c=32 vs naive ORT"] == (
        "PASS", "1 worker: 1.40x (70 vs 50 req/s); 2 workers: 1.10x (110 vs 100 req/s)")
    assert status["canvas: preparation CPU per image vs decode"][0] == "MISS"  # 3 ms of prep for 2 ms of decode
    assert status["photo_12mp: /predict c=32 vs decode ceiling"][0] == "PASS"  # 83%, 75%
    assert status["photo_12mp: /predict c=32 vs naive ORT"][0] == "MISS"  # 0.9x at 2 workers
    assert status["photo_12mp: preparation CPU per image vs decode"][0] == "PASS"
    assert status["Resident memory per worker, during and after 12 MP photos"] == (
        "MISS", "during 160 MB, after 120 MB")
    assert status["MNIST 28x28 PNG /predict c=32 vs the committed report"][0] == "PASS"  # 2,500 vs 2,462
    report["targets"] = [t.to_dict() for t in evaluate_targets(report)]
    markdown = render_markdown(report)
    assert "| canvas | 2 | 110 | 200 | 100 | 55% | 1.10x |" in markdown
    assert "| canvas | 2 | 2.000 | 2.500 | 5.000 | 3.000 | 1.50x | - |" in markdown
    assert "| canvas | 2 | 13.64 | 7.50 | 15.00 | 55% | 1.10x | 0.00 / 0.00 / 0.00 |" in markdown  # 1.5 cores each
