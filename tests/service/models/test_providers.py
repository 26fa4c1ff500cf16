"""Device selection, without a GPU: injected provider lists and sessions that report what a GPU gives."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.errors import DeviceUnavailable
from service.models.sessions import CPU, CUDA, TENSORRT, ProviderPlan, check_session_providers, plan_providers
from service.settings import Device
from tests.service.models.conftest import fake_factory

CPU_ONLY = ["AzureExecutionProvider", CPU]
WITH_CUDA = [TENSORRT, CUDA, CPU]


@pytest.mark.parametrize(
    ("device", "available", "requested", "required"),
    [
        ("cpu", CPU_ONLY, (CPU,), CPU),
        ("cpu", WITH_CUDA, (CPU,), CPU),
        ("auto", CPU_ONLY, (CPU,), None),
        ("auto", WITH_CUDA, (CUDA, CPU), None),
        ("cuda", WITH_CUDA, (CUDA, CPU), CUDA),
        ("tensorrt", WITH_CUDA, (TENSORRT, CUDA, CPU), TENSORRT),
        ("tensorrt", [TENSORRT, CPU], (TENSORRT, CPU), TENSORRT),
    ],
)
def test_plan_asks_for_the_best_provider_the_package_offers(
    device: Device, available: list[str], requested: tuple[str, ...], required: str | None
) -> None:
    assert plan_providers(device, available) == ProviderPlan(device, requested, required)


@pytest.mark.parametrize(("device", "missing"), [("cuda", CUDA), ("tensorrt", TENSORRT)])
def test_an_explicit_gpu_device_the_package_lacks_fails_clearly(device: Device, missing: str) -> None:
    with pytest.raises(DeviceUnavailable) as caught:
        plan_providers(device, CPU_ONLY)
    message = str(caught.value)
    assert message.startswith(f"device={device} needs {missing}, but this onnxruntime offers only "
                              "AzureExecutionProvider, CPUExecutionProvider; install onnxruntime-gpu")


def test_an_explicit_gpu_session_that_fell_back_to_the_cpu_fails() -> None:
    plan = plan_providers("cuda", WITH_CUDA)
    with pytest.raises(DeviceUnavailable, match=r"^device=cuda: the session for model 'cnn' runs on "
                                                 r"CPUExecutionProvider, not CUDAExecutionProvider \(ONNX Runtime fell back"):
        check_session_providers(plan, [CPU], "cnn")
    check_session_providers(plan, [CUDA, CPU], "cnn")  # really on the GPU: accepted


def test_auto_accepts_a_cpu_fallback_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    plan = plan_providers("auto", WITH_CUDA)
    with caplog.at_level(logging.WARNING, logger="service.models.sessions"):
        check_session_providers(plan, [CPU], "cnn")
    assert "model cnn: CUDAExecutionProvider is installed but the session fell back to the CPU" in caplog.text


# -- at start-up, through the app --------------------------------------------------------------


def test_device_cuda_without_cuda_refuses_to_start(app_factory: Callable[..., FastAPI]) -> None:
    app = app_factory(device="cuda", available_providers=CPU_ONLY)
    with pytest.raises(DeviceUnavailable, match=r"^device=cuda needs CUDAExecutionProvider"), TestClient(app):
        pass


def test_device_cuda_whose_sessions_fall_back_refuses_to_start(app_factory: Callable[..., FastAPI]) -> None:
    app = app_factory(device="cuda", available_providers=WITH_CUDA, session_factory=fake_factory(providers=[CPU]))
    with pytest.raises(DeviceUnavailable, match="runs on CPUExecutionProvider, not CUDAExecutionProvider"), TestClient(app):
        pass


@pytest.mark.parametrize(("device", "reported"), [("auto", [CUDA, CPU]), ("cuda", [CUDA, CPU]), ("auto", [CPU])])
def test_the_providers_a_session_really_runs_on_are_shown(
    app_factory: Callable[..., FastAPI], device: Device, reported: list[str]
) -> None:
    app = app_factory(device=device, available_providers=WITH_CUDA, session_factory=fake_factory(providers=reported))
    with TestClient(app) as client:
        models = client.get("/models").json()["models"]
        assert {tuple(m["providers"]) for m in models} == {tuple(reported)}
        metrics = client.get("/metrics").text
    assert f'digits_model_info{{model="cnn",providers="{",".join(reported)}",version="' in metrics


def test_device_cpu_runs_on_the_cpu(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory(device="cpu")) as client:
        assert {tuple(m["providers"]) for m in client.get("/models").json()["models"]} == {(CPU,)}
