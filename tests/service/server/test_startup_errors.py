"""What an operator sees when `python -m service` cannot start (issue 15, "the rough edges").

A start-up that fails exits non-zero with one or several workers, says why in one line (no
traceback), names the mistake in the store path, finds a busy port before any model loads, and
names settings by their environment variables; a misspelled `DIGITS_*` variable is warned about.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from bench.toolkit import command_of, free_port, process_tree
from service import __main__ as cli
from service.observability.metrics import MULTIPROC_ENV
from service.server.startup import StartupFailure, check_store
from service.settings import Settings, describe_errors, unknown_variables
from tests.service.conftest import REPO
from tests.service.live_server import LiveServer, live_server


def run_service(*args: str, timeout: float = 90, pythonpath: Path | None = None, **settings: str) -> tuple[int, str, float]:
    """Run `python -m service ARGS` to its end: (exit status, its output, seconds it took).

    `pythonpath` goes first on the workers' module path (to shadow a dependency with a broken one).
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("DIGITS_") and key != MULTIPROC_ENV}
    env.update({"DIGITS_WARMUP_RUNS": "2", **{f"DIGITS_{key.upper()}": value for key, value in settings.items()}})
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), *filter(None, [env.get("PYTHONPATH")])])
    started = time.monotonic()
    result = subprocess.run(  # noqa: S603 (our own interpreter and fixed arguments)
        [sys.executable, "-m", "service", "--port", str(free_port()), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )
    return result.returncode, result.stdout + result.stderr, time.monotonic() - started


# -- the exit status and the message, with one worker and with two ------------------------------


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_missing_store_exits_non_zero_with_one_line(workers: str, tmp_path: Path) -> None:
    code, output, _ = run_service("--workers", workers, "--model-store", str(tmp_path / "nowhere"))
    assert code == 3, output
    assert output.strip().splitlines() == [
        f"cannot start: the model store {tmp_path / 'nowhere'} does not exist; set DIGITS_MODEL_STORE (or "
        "--model-store) to a store, or get one with `python -m service store fetch`"
    ]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cuda_without_a_gpu_exits_non_zero_with_one_line(workers: str, copy_store: Callable[..., Path]) -> None:
    pytest.importorskip("onnxruntime")
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime offers CUDA: the device is usable here")
    code, output, _ = run_service("--workers", workers, "--model-store", str(copy_store("mlp")), "--device", "cuda")
    assert code == 3, output
    [line] = output.strip().splitlines()
    assert line.startswith("cannot start: device=cuda needs CUDAExecutionProvider, but this onnxruntime offers only ")


def test_workers_that_fail_while_loading_make_the_supervisor_exit_non_zero(copy_store: Callable[..., Path]) -> None:
    # A failure only a worker finds (here: the default model is not in the store): each worker logs
    # one line and exits with uvicorn's start-up status, and so must the supervisor (it exited 0).
    code, output, _ = run_service("--workers", "2", "--model-store", str(copy_store("mlp")), "--default-model", "nope")
    assert code == 3, output
    assert "cannot start: DIGITS_DEFAULT_MODEL=nope is not in the store; models there: mlp" in output
    assert "Traceback" not in output, output


def test_a_worker_failure_is_one_line_not_a_traceback_with_one_worker(copy_store: Callable[..., Path]) -> None:
    code, output, _ = run_service("--model-store", str(copy_store("mlp")), "--default-model", "nope")
    assert code == 3, output
    assert "Traceback" not in output and output.count("cannot start: DIGITS_DEFAULT_MODEL=nope") == 1, output
    assert len(output.strip().splitlines()) <= 6, output  # uvicorn's few lines around the one that says why


# -- which mistake the store path is -----------------------------------------------------------


def test_each_store_path_mistake_is_named(copy_store: Callable[..., Path], tmp_path: Path) -> None:
    store = copy_store("cnn", "mlp")
    [version] = [p for p in (store / "cnn").iterdir() if p.is_dir()]
    a_file = tmp_path / "store.tar.gz"
    a_file.write_bytes(b"not a directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        tmp_path / "missing": "does not exist",
        a_file: "is a file, not a directory (an archive? unpack it with `python -m service store fetch",
        store / "cnn": f"is one model's directory (versions {version.name}), not a model store: give the store "
                       f"above it, {store.resolve()}",
        version: f"is one version of a model (it holds model.onnx/card.json), not a model store: give the store "
                 f"above it, {store.resolve()}",
        empty: "no models in the model store",
    }
    for path, expected in cases.items():
        with pytest.raises(StartupFailure) as caught:
            check_store(path)
        assert expected in str(caught.value), (path, str(caught.value))
    check_store(store)  # the store itself is fine


def test_a_model_directory_given_as_the_store_fails_before_uvicorn_starts(copy_store: Callable[..., Path]) -> None:
    code, output, _ = run_service("--workers", "2", "--model-store", str(copy_store("mlp") / "mlp"))
    assert code == 3 and "is one model's directory" in output, output
    assert "Started parent process" not in output  # no worker was started to find it out


def shadow_fastapi(tmp_path: Path, body: str) -> Path:
    """A folder whose `fastapi` package runs `body` on import: only the workers import FastAPI."""
    (tmp_path / "shadow" / "fastapi").mkdir(parents=True)
    (tmp_path / "shadow" / "fastapi" / "__init__.py").write_text(body)
    return tmp_path / "shadow"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_worker_that_cannot_import_the_app_stops_the_service_in_one_line(workers: str, store: Path,
                                                                           tmp_path: Path) -> None:
    # uvicorn's supervisor replaced such a worker forever (78 tracebacks in 25 s), exit status unseen.
    shadow = shadow_fastapi(tmp_path, 'raise ImportError("fastapi is broken here")\n')
    code, output, seconds = run_service("--workers", workers, "--model-store", str(store), pythonpath=shadow,
                                        timeout=60)
    assert code == 3, output
    assert "Traceback" not in output, output
    failures = [line for line in output.splitlines() if line.startswith("cannot start:")]
    assert failures and set(failures) == {
        "cannot start: a worker could not build the app: ImportError: fastapi is broken here"
    }
    assert len(failures) <= int(workers), output  # each worker tried once: nothing was restarted
    assert seconds < 30


def test_a_worker_that_dies_before_serving_stops_the_service_non_zero(store: Path, tmp_path: Path) -> None:
    # A worker ending with a status of its own (a crash, an exit) during start-up would end the
    # same way every time it is replaced.
    shadow = shadow_fastapi(tmp_path, "import os\nos._exit(7)\n")
    code, output, seconds = run_service("--workers", "2", "--model-store", str(store), pythonpath=shadow, timeout=60)
    assert code == 3, output
    assert "exited with status 7 before it served; stopping the service." in output, output
    assert "died" not in output  # uvicorn's "Child process [...] died" precedes a replacement
    assert seconds < 30


def test_a_worker_that_dies_after_serving_is_replaced(store: Path) -> None:
    with live_server(store, workers="2", log_level="info") as server:
        wait_for_ready(server)
        time.sleep(2)  # the supervisor's next checks see both workers serving
        workers = [pid for pid in process_tree(server.pid)[1:] if "multiprocessing.spawn" in command_of(pid)
                   and "resource_tracker" not in command_of(pid)]
        assert len(workers) == 2, [command_of(pid) for pid in workers]
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while server.output().count("Started server process") < 3:
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.2)
        wait_for_ready(server)
        assert server.process is not None and server.process.poll() is None  # the service goes on
        assert f"Child process [{workers[0]}] died" in server.output()


def wait_for_ready(server: LiveServer, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{server.base_url}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.2)


# -- the port, before the models ---------------------------------------------------------------


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_busy_port_is_found_before_any_model_loads(workers: str, store: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITS_") and k != MULTIPROC_ENV}
        result = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "service", "--port", str(port), "--workers", workers, "--model-store", str(store)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert output.strip().splitlines() == [
        f"cannot start: cannot listen on 127.0.0.1:{port}: it is in use (another server is listening there); "
        "choose another with --port or DIGITS_PORT"
    ]


# -- settings named as the operator set them ---------------------------------------------------


def clear_digits_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("DIGITS_")] + [MULTIPROC_ENV]:
        monkeypatch.delenv(key, raising=False)


def test_a_settings_error_names_the_environment_variable(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    clear_digits_environment(monkeypatch)
    monkeypatch.setenv("DIGITS_DEVICE", "gpu")
    monkeypatch.setenv("DIGITS_WORKERS", "0")
    assert cli.main([]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "invalid settings: DIGITS_DEVICE: Input should be 'auto', 'cpu', 'cuda' or 'tensorrt' (got 'gpu'); "
        "DIGITS_WORKERS: Input should be greater than or equal to 1 (got '0')"
    )


def test_a_settings_error_from_the_command_line_names_the_flag(monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    clear_digits_environment(monkeypatch)
    assert cli.main(["--port", "0"]) == 2
    assert capsys.readouterr().err.strip() == "invalid settings: --port: Input should be greater than or equal to 1 (got 0)"


def test_a_token_is_never_echoed_in_a_settings_error() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(metrics_token=12345678, workers=0)
    message = describe_errors(caught.value)
    assert "DIGITS_METRICS_TOKEN: Input should be a valid string" in message and "12345678" not in message
    assert "DIGITS_WORKERS" in message


def test_choices_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_digits_environment(monkeypatch)
    monkeypatch.setenv("DIGITS_LOG_LEVEL", "INFO")
    monkeypatch.setenv("DIGITS_DEVICE", "CPU")
    assert (Settings().log_level, Settings().device) == ("info", "cpu")
    args = cli.build_parser().parse_args(["--log-level", "DEBUG", "--device", "Auto"])
    assert (args.log_level, args.device) == ("debug", "auto")


def test_a_misspelled_variable_is_warned_about_with_the_closest_one(monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    clear_digits_environment(monkeypatch)
    monkeypatch.setenv("DIGITS_LOG_LEVL", "debug")
    monkeypatch.setenv("DIGITS_MODELSTORE", "/srv/store")
    calls: list[Settings] = []
    monkeypatch.setattr("service.server.http_server.serve", lambda settings: calls.append(settings) or 0)
    assert cli.main([]) == 0
    err = capsys.readouterr().err
    assert "warning: DIGITS_LOG_LEVL is not a setting and is ignored: did you mean DIGITS_LOG_LEVEL?" in err
    assert "warning: DIGITS_MODELSTORE is not a setting and is ignored: did you mean DIGITS_MODEL_STORE?" in err
    assert calls[0].log_level == "info"  # ignored, as the warning says


def test_only_unknown_variables_are_warned_about() -> None:
    environ = {"DIGITS_PORT": "1", "DIGITS_TEST_STORE": "x", "DIGITS_REQUIRE_BROWSER": "1", "HOME": "/root",
               "DIGITS_WIBBLE": "1"}
    assert unknown_variables(environ) == [
        "DIGITS_WIBBLE is not a setting and is ignored: the settings are listed by `python -m service --help`"
    ]
