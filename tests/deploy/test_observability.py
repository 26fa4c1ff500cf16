"""Prometheus and Grafana files under deploy/observability/, checked with the real tools.

- promtool (Debian's `prometheus` package) checks the config and rules and runs the rules' unit tests;
- every `digits_*` series the rules, the dashboard and the autoscalers query is one the service
  really exports (read from /metrics of an app started in-process);
- a real Prometheus scrapes a real two-worker `python -m service`: the request counts it stores,
  summed over the workers, match the requests sent, and every dashboard query returns data.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from bench.toolkit import free_port
from service.server.app import create_app
from tests.service.conftest import REPO, make_settings

OBS = REPO / "deploy" / "observability"
DASHBOARD = OBS / "grafana" / "digit-serving.json"
METRIC = re.compile(r"\b(digits_[a-z0-9_]+)")
# A digit-like 28x28 image (a vertical bar), in [0, 1]: the models answer it.
BAR = [[1.0 if 12 <= x <= 15 and 4 <= y <= 23 else 0.0 for x in range(28)] for y in range(28)]


def promtool(*args: str, cwd: Path = OBS) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p["targets"]]


def all_queries() -> dict[str, str]:
    """Every PromQL expression we ship, by where it is."""
    found: dict[str, str] = {}
    for group in yaml.safe_load((OBS / "rules.yml").read_text())["groups"]:
        for rule in group["rules"]:
            found[f"rules.yml {rule.get('record') or rule.get('alert')}"] = rule["expr"]
    for i, expr in enumerate(dashboard_exprs()):
        found[f"dashboard target {i}"] = expr
    keda = yaml.safe_load((REPO / "deploy/overlays/cpu-keda/scaledobject.yaml").read_text())
    for t in keda["spec"]["triggers"]:
        if t["type"] == "prometheus":
            found["keda"] = t["metadata"]["query"]
    adapter = yaml.safe_load((REPO / "deploy/autoscaling/prometheus-adapter-rules.yaml").read_text())
    for rule in yaml.safe_load(adapter["data"]["config.yaml"])["rules"]:
        found["prometheus-adapter"] = rule["seriesQuery"]
    return found


def exported_series(exposition: str) -> set[str]:
    """Names of the series a /metrics page defines, with the suffixes of counters and histograms."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        if family.type == "counter":
            names |= {f"{family.name}_total", f"{family.name}_created"}
        elif family.type == "histogram":
            names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count", "created")}
        else:
            names.add(family.name)
    return names


# -- promtool -----------------------------------------------------------------------------------


def test_promtool_accepts_the_config_and_the_rules() -> None:
    config = promtool("check", "config", "--syntax-only", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    rules = promtool("check", "rules", "rules.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr


def test_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", "rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_catch_a_wrong_threshold(tmp_path: Path) -> None:
    """The unit tests can fail: an error alert at 50% instead of 1% does not fire where they expect it."""
    broken = (OBS / "rules.yml").read_text().replace("digits:http_errors:ratio5m > 0.01", "digits:http_errors:ratio5m > 0.5")
    assert broken != (OBS / "rules.yml").read_text()
    (tmp_path / "rules.yml").write_text(broken)
    shutil.copy(OBS / "rules_test.yml", tmp_path)
    result = promtool("test", "rules", "rules_test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "DigitsHighErrorRate" in result.stdout + result.stderr


# -- the dashboard -------------------------------------------------------------------------------


def test_dashboard_is_well_formed() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"]
    panels = dash["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    variables = {v["name"] for v in dash["templating"]["list"]}
    for panel in panels:
        assert panel["type"] in {"timeseries", "stat", "table"}
        assert panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys()
        for target in panel["targets"]:
            used = set(re.findall(r"\$\{?([a-z]+)", target["expr"])) - {"__rate_interval"}
            assert used <= variables, (panel["title"], used - variables)
    titles = " ".join(p["title"].lower() for p in panels)
    for needed in ("request rate", "latency", "error", "model", "digit", "confidence"):
        assert needed in titles
    provisioning = yaml.safe_load((OBS / "grafana" / "dashboards.yaml").read_text())
    assert provisioning["providers"][0]["type"] == "file"


def test_every_queried_series_is_exported_by_the_service() -> None:
    with TestClient(create_app(make_settings(REPO / "model_store"))) as client:
        assert client.post("/predict", json={"images": [BAR]}).status_code == 200
        exposition = client.get("/metrics").text
    exported = exported_series(exposition)
    for where, expr in all_queries().items():
        unknown = set(METRIC.findall(expr)) - exported
        assert not unknown, f"{where} queries {unknown}, which /metrics does not export"


# -- a real Prometheus against a real service ------------------------------------------------------



def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
        return json.load(response)


def post_json(url: str, body: Any, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(  # noqa: S310 (loopback)
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def post_png(url: str) -> int:
    """POST the bar as a PNG upload (multipart), which goes through the decoding stage."""
    buffer = io.BytesIO()
    Image.fromarray((np.array(BAR) * 255).astype(np.uint8)).save(buffer, "PNG")
    boundary = "digits-test-boundary"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="bar.png"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode() + buffer.getvalue() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(  # noqa: S310 (loopback)
        url, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return int(response.status)


def wait_for(check: Any, what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A two-worker service and a Prometheus scraping it every second: (service URL, Prometheus URL)."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("prometheus is not installed (Debian package prometheus)")
    work = tmp_path_factory.mktemp("prom")
    port, prom_port = free_port(), free_port()
    env = {**os.environ, "DIGITS_PORT": str(port), "DIGITS_WORKERS": "2", "DIGITS_DEVICE": "cpu",
           "DIGITS_MODEL_STORE": str(REPO / "model_store"), "DIGITS_WARMUP_RUNS": "2",
           "DIGITS_ADMIN_TOKEN": "admin-secret", "DIGITS_LOG_LEVEL": "warning"}
    env.pop("DIGITS_METRICS_TOKEN", None)
    (work / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(OBS / "rules.yml")],
        "scrape_configs": [{"job_name": "digit-serving", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
    }))
    service = subprocess.Popen([sys.executable, "-m", "service"], cwd=REPO, env=env)
    prom = subprocess.Popen(  # noqa: S603
        [prometheus, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base, prom_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{prom_port}"
        wait_for(lambda: get_json(f"{base}/health/ready"), "the service to be ready", 120)
        wait_for(lambda: urllib.request.urlopen(f"{prom_url}/-/ready", timeout=2), "Prometheus to be ready", 60)  # noqa: S310
        yield base, prom_url
    finally:
        for process in (prom, service):
            process.terminate()
        for process in (prom, service):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def query(prom_url: str, expr: str) -> list[dict[str, Any]]:
    answer = get_json(f"{prom_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


SENT = 30


@pytest.fixture(scope="module")
def traffic(live: tuple[str, str]) -> tuple[str, str]:
    base, prom_url = live
    for _ in range(SENT):
        assert post_json(f"{base}/predict?model=cnn", {"images": [BAR]}) == 200
    assert post_json(f"{base}/predict", {"images": [[[0.0]]]}) == 422  # one error for the error panels
    assert post_png(f"{base}/predict?model=mlp") == 200  # an upload: the preprocessing stage's histogram
    assert post_json(f"{base}/admin/reload", {}, {"Authorization": "Bearer admin-secret"}) == 200

    def counted() -> bool:
        result = query(prom_url, 'sum(digits_http_requests_total{route="/predict", status="200"})')
        return bool(result) and float(result[0]["value"][1]) >= SENT

    # Two scrapes after the last request: a rate over the window needs two samples of the new values.
    wait_for(counted, "Prometheus to scrape the requests", 60)
    time.sleep(3)
    return live


def test_prometheus_stores_the_documented_metrics_summed_over_workers(traffic: tuple[str, str]) -> None:
    _, prom_url = traffic
    pids = query(prom_url, "count(digits_model_ready)")
    assert pids, "no digits_model_ready series"
    ok = query(prom_url, 'sum(digits_http_requests_total{route="/predict", status="200", model="cnn"})')
    assert float(ok[0]["value"][1]) == SENT
    predictions = query(prom_url, 'sum(digits_predictions_total{model="cnn"})')
    assert float(predictions[0]["value"][1]) == SENT
    confidence = query(prom_url, 'sum(digits_prediction_confidence_count{model="cnn"})')
    assert float(confidence[0]["value"][1]) == SENT
    ready = query(prom_url, "min(digits_model_ready)")
    assert float(ready[0]["value"][1]) == 1.0


def test_every_dashboard_and_rule_query_returns_data(traffic: tuple[str, str]) -> None:
    _, prom_url = traffic
    empty = []
    for where, expr in all_queries().items():
        if where.startswith("rules.yml Digits"):
            continue  # alerts: healthy traffic must not fire them (they are tested by promtool)
        if where in ("prometheus-adapter", "keda"):
            # Labels only Kubernetes discovery (namespace, pod) and the PodMonitor (variant) add.
            expr = re.sub(r'(namespace|pod|variant)!?="[^"]*",?\s*', "", expr)
        concrete = (expr.replace("$__rate_interval", "15s").replace("$job", ".*").replace("$model", ".*"))
        if not query(prom_url, concrete):
            empty.append(where)
    assert not empty, f"no data for {empty}"
