"""`python -m service`: settings from the environment and the command line, and a real server."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from service import __main__ as cli
from service.observability.metrics import MULTIPROC_ENV
from service.settings import Settings
from tests.factories import bar_digit, encode
from tests.service.conftest import multipart
from tests.service.live_server import live_server


def test_every_setting_is_documented() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description and len(field.description) > 20, name


def test_settings_come_from_digits_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGITS_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("DIGITS_DEVICE", "cuda")
    monkeypatch.setenv("DIGITS_ADMIN_TOKEN", "s3cret")
    settings = Settings()
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.device == "cuda"
    assert settings.admin_token is not None and settings.admin_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_invalid_settings_exit_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--port", "0"]) == 2
    assert "invalid settings" in capsys.readouterr().err


def test_the_command_line_reaches_the_workers_through_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    calls: list[Settings] = []
    monkeypatch.setattr("service.server.http_server.serve", lambda settings: calls.append(settings) or 0)
    for key in ("DIGITS_MODEL_STORE", "DIGITS_DEVICE", "DIGITS_WORKERS", "DIGITS_PORT", MULTIPROC_ENV):
        monkeypatch.setenv(key, "")  # so that monkeypatch restores (removes) what main() sets
        monkeypatch.delenv(key)
    assert cli.main(["--port", "9123", "--workers", "2", "--model-store", str(tmp_path), "--device", "cpu"]) == 0
    [settings] = calls
    assert (settings.port, settings.workers, settings.model_store, settings.device) == (9123, 2, tmp_path, "cpu")
    # The workers build their own settings from the environment: the same values must be there.
    assert Settings().port == 9123 and Settings().workers == 2
    assert (os.environ["DIGITS_MODEL_STORE"], os.environ["DIGITS_DEVICE"]) == (str(tmp_path), "cpu")
    assert Path(os.environ[MULTIPROC_ENV]).is_dir()  # metrics shared between the two workers


def test_a_real_server_with_two_workers_answers_and_sums_its_metrics(store: Path) -> None:
    with live_server(store, workers="2", log_level="warning") as server:
        deadline = time.monotonic() + 60
        while httpx.get(f"{server.base_url}/health/ready", timeout=2).status_code != 200:
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.3)
        for _ in range(6):  # a fresh connection each time, so both workers get some
            response = httpx.post(f"{server.base_url}/predict", files=multipart(encode(bar_digit(200))), timeout=10)
            assert response.status_code == 200 and response.json()["digit"] == 1
        for _ in range(4):
            text = httpx.get(f"{server.base_url}/metrics", timeout=10).text
            total = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                        if line.startswith("digits_predictions_total{"))
            assert total == 6  # whichever worker answers the scrape
        server.signal(signal.SIGTERM)
        returncode, output = server.wait_exit()
    assert returncode == 0, output


def test_the_grpc_port_can_be_given_on_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Settings] = []
    monkeypatch.setattr("service.server.http_server.serve", lambda settings: calls.append(settings) or 0)
    monkeypatch.setenv("DIGITS_GRPC_PORT", "")
    monkeypatch.delenv("DIGITS_GRPC_PORT")
    assert cli.main(["--grpc-port", "8001"]) == 0
    assert calls[0].grpc_port == 8001 and Settings().grpc_port == 8001
