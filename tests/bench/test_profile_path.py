"""bench.profile_path's reading of py-spy stacks: buckets by rule order, waits left out, raw format parsed."""

from __future__ import annotations

from bench.profile_path import OTHER, bucket_of, read_raw, short_frame, summarise

LOOP = "Runner.run (asyncio/runners.py:118)"
MIDDLEWARE = "MetricsMiddleware.__call__ (service/observability/metrics.py:210)"
SEND = "RequestResponseCycle.send (uvicorn/protocols/http/httptools_impl.py:482)"


def test_subsystem_anywhere_in_the_stack_wins_over_the_layers_around_it() -> None:
    # The metrics middleware wraps every request: its frame must not claim the inference under it.
    stack = [LOOP, MIDDLEWARE, "DataPlane.infer (service/inference/dataplane.py:300)", "Session.run (onnxruntime/capi/x.py:220)"]
    assert bucket_of(stack) == "model inference (ONNX Runtime)"


def test_the_access_log_inside_a_send_is_logging_not_the_http_server() -> None:
    stack = [LOOP, MIDDLEWARE, SEND, "Logger.info (logging/__init__.py:1489)", "basename (<frozen posixpath>:144)"]
    assert bucket_of(stack) == "logging (access log, log records)"


def test_wrapping_layers_count_only_as_the_innermost_frame() -> None:
    assert bucket_of([LOOP, MIDDLEWARE]) == "metrics (the service's recording code)"
    assert bucket_of([LOOP, MIDDLEWARE, SEND]) == "HTTP server (uvicorn, httptools)"
    assert bucket_of([LOOP, "helper (somewhere/else.py:1)"]) == OTHER


def test_waits_are_left_out_of_the_buckets_and_counted_apart() -> None:
    stacks = read_raw(
        f"{LOOP};{MIDDLEWARE};{SEND} 30\n"
        "_bootstrap (threading.py:1002);_worker (concurrent/futures/thread.py:81);"
        "Condition.wait (threading.py:327) 70\n"
        "not a sample line\n"
    )
    summary = summarise(stacks, cpu_ms_per_request=2.0)
    assert summary["samples"] == 30
    assert summary["wait_share"] == 0.7
    assert summary["buckets"] == [{"bucket": "HTTP server (uvicorn, httptools)", "share": 1.0, "ms_per_request": 2.0}]


def test_frames_are_shortened_to_their_package_path() -> None:
    frame = "Session.run (/work/.venv/lib/python3.11/site-packages/onnxruntime/capi/session.py:220)"
    assert short_frame(frame) == "Session.run (onnxruntime/capi/session.py)"
