"""The manifests probe and scrape the management listener (issue 22), and turn the host allow-list on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from service.settings import Settings
from tests.deploy.conftest import DEPLOY, OVERLAYS, by_kind, kustomize


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_use_the_management_port(overlay: str) -> None:
    pod = by_kind(kustomize(DEPLOY / "overlays" / overlay), "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["management"] == int(env["DIGITS_MANAGEMENT_PORT"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == "management", probe
    hosts = Settings(allowed_hosts=env["DIGITS_ALLOWED_HOSTS"]).allowed_hosts
    assert "digit-serving" in hosts and "localhost" in hosts


def test_the_service_does_not_expose_the_management_port() -> None:
    service = yaml.safe_load((DEPLOY / "base" / "service.yaml").read_text())
    assert {port["port"] for port in service["spec"]["ports"]} == {8000, 8001}


def test_prometheus_operator_scrapes_the_management_port() -> None:
    monitor = yaml.safe_load(Path(DEPLOY / "observability" / "podmonitor.yaml").read_text())
    assert [endpoint["port"] for endpoint in monitor["spec"]["podMetricsEndpoints"]] == ["management"]
