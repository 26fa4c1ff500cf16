"""The Kubernetes and KServe manifests under deploy/: every overlay renders with `kubectl kustomize`
and each built-in resource passes the Kubernetes API schemas (kubernetes-validate). No cluster runs
here, so this is what can be proved offline: the YAML is well-formed, the fields exist with the
right types, and the settings this service depends on (probes, ports, security context) are there.
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import DEPLOY, OVERLAYS, by_kind, kustomize

# Custom resources: their schemas belong to their operators (KEDA, KServe), not to Kubernetes.
CUSTOM_KINDS = {"ScaledObject", "InferenceService"}
K8S_VERSION = "1.32"


def test_every_overlay_is_found() -> None:
    assert {"cpu", "gpu", "cpu-keda"} <= set(OVERLAYS)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_passes_the_kubernetes_schemas(overlay: str) -> None:
    docs = kustomize(DEPLOY / "overlays" / overlay)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "PodDisruptionBudget"} <= kinds
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            continue
        # strict: a misspelt field (`readinesProbe`) is an error, not silently ignored.
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validator_rejects_a_misspelt_field() -> None:
    """The schema check above can fail: a typo in the Deployment is caught."""
    doc = by_kind(kustomize(DEPLOY / "overlays" / "cpu"), "Deployment")
    container = doc["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_locked_down_and_probed(overlay: str) -> None:
    docs = kustomize(DEPLOY / "overlays" / overlay)
    pod = by_kind(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's USER
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    # The read-only root needs a writable /tmp for uploads and multiprocess metrics.
    assert any(m["mountPath"] == "/tmp" for m in container["volumeMounts"])  # noqa: S108
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DIGITS_DEVICE"] == ("cuda" if overlay == "gpu" else "cpu")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == 8000
    assert ports["grpc"] == int(env["DIGITS_GRPC_PORT"])
    limits = container["resources"]["limits"]
    assert "memory" in limits
    assert ("nvidia.com/gpu" in limits) == (overlay == "gpu")
    # The Service and PDB select exactly the Deployment's pods.
    labels = pod_labels = by_kind(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert by_kind(docs, "Service")["spec"]["selector"].items() <= pod_labels.items()
    assert by_kind(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_cpu_and_gpu_variants_do_not_select_each_others_pods() -> None:
    cpu = by_kind(kustomize(DEPLOY / "overlays" / "cpu"), "Deployment")
    gpu = by_kind(kustomize(DEPLOY / "overlays" / "gpu"), "Deployment")
    assert cpu["metadata"]["name"] != gpu["metadata"]["name"]
    gpu_selector = gpu["spec"]["selector"]["matchLabels"]
    assert not gpu_selector.items() <= cpu["spec"]["template"]["metadata"]["labels"].items()


def test_keda_overlay_replaces_the_cpu_hpa_with_a_request_rate_trigger() -> None:
    docs = kustomize(DEPLOY / "overlays" / "cpu-keda")
    assert "HorizontalPodAutoscaler" not in {d["kind"] for d in docs}  # KEDA makes its own
    scaled = by_kind(docs, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == by_kind(docs, "Deployment")["metadata"]["name"]
    (prom,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "prometheus"]
    assert "digits_http_requests_total" in prom["metadata"]["query"]


def test_request_rate_hpa_passes_the_schemas() -> None:
    doc = yaml.safe_load((DEPLOY / "autoscaling" / "hpa-requests.yaml").read_text())
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    adapter = yaml.safe_load((DEPLOY / "autoscaling" / "prometheus-adapter-rules.yaml").read_text())
    kubernetes_validate.validate(adapter, K8S_VERSION, strict=True)
    rules = yaml.safe_load(adapter["data"]["config.yaml"])["rules"]
    metric_names = {p["metric"]["name"] for m in doc["spec"]["metrics"] if (p := m.get("pods"))}
    assert metric_names == {r["name"]["as"] for r in rules}


def test_inference_service_uses_the_v2_health_paths_and_the_pod_template_fields() -> None:
    isvc = yaml.safe_load((DEPLOY / "kserve" / "inferenceservice.yaml").read_text())
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    predictor = isvc["spec"]["predictor"]
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    # The predictor's containers are core/v1 Containers: check them against the Pod schema.
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "isvc-check"},
        "spec": {
            "containers": predictor["containers"],
            "volumes": predictor["volumes"],
            "securityContext": predictor["securityContext"],
        },
    }
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)


# -- what a real cluster needs (issue 25) --------------------------------------------------------

REPO = DEPLOY.parent


def package_version() -> str:
    import tomllib

    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def container_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = by_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_have_one_name_and_the_package_version_as_tag(overlay: str) -> None:
    # Before: digit-serving:latest for the CPU, digit-serving-gpu:latest for the GPU (the README built
    # digit-serving:gpu), no registry: no cluster could pull either.
    image = container_of(kustomize(DEPLOY / "overlays" / overlay))["image"]
    name, tag = image.rsplit(":", 1)
    assert name == "registry.example.com/digit-serving"  # the placeholder users replace (kustomize images:)
    assert tag == package_version() + ("-gpu" if overlay == "gpu" else "")
    isvc = yaml.safe_load((DEPLOY / "kserve" / "inferenceservice.yaml").read_text())
    assert isvc["spec"]["predictor"]["containers"][0]["image"] == f"{name}:{package_version()}"


def test_the_readme_builds_the_images_the_overlays_name() -> None:
    readme = (REPO / "README.md").read_text()
    version = package_version()
    assert f"-t digit-serving:{version} " in readme and f"-t digit-serving:{version}-gpu " in readme
    assert "digit-serving:gpu" not in readme and "digit-serving-gpu" not in readme


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_shutdown_waits_for_the_endpoints_and_outlasts_the_drain(overlay: str) -> None:
    import re

    docs = kustomize(DEPLOY / "overlays" / overlay)
    pod = by_kind(docs, "Deployment")["spec"]["template"]["spec"]
    pre_stop = container_of(docs)["lifecycle"]["preStop"]["sleep"]["seconds"]
    # The server's drain after SIGTERM, read from where it is set (the longest, if several listeners).
    server = (REPO / "service" / "server" / "http_server.py").read_text()
    drain = max(map(int, re.findall(r"timeout_graceful_shutdown=(\d+)", server)))
    assert 1 <= pre_stop <= 15
    # Before: 30 s, equal to the drain, with no preStop.
    assert pod["terminationGracePeriodSeconds"] > pre_stop + drain


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_replicas_are_spread_over_nodes_and_zones_of_their_own_variant(overlay: str) -> None:
    docs = kustomize(DEPLOY / "overlays" / overlay)
    template = by_kind(docs, "Deployment")["spec"]["template"]
    constraints = {c["topologyKey"]: c for c in template["spec"]["topologySpreadConstraints"]}
    assert set(constraints) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    for constraint in constraints.values():
        selector = constraint["labelSelector"]["matchLabels"]
        # Counts this variant's pods only: the other variant's on a node must not skew the spread.
        assert selector.items() <= template["metadata"]["labels"].items()
        assert "app.kubernetes.io/variant" in selector
        assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"


def test_the_pod_monitor_scrapes_without_the_optional_metrics_secret() -> None:
    monitor = yaml.safe_load((DEPLOY / "observability" / "podmonitor.yaml").read_text())
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["authorization"]["credentials"]["optional"] is True
    env = {e["name"]: e for e in container_of(kustomize(DEPLOY / "overlays" / "cpu"))["env"]}
    assert env["DIGITS_METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True


def test_the_keda_query_counts_only_its_own_namespace_and_variant() -> None:
    docs = kustomize(DEPLOY / "overlays" / "cpu-keda")
    (prom,) = [t for t in by_kind(docs, "ScaledObject")["spec"]["triggers"] if t["type"] == "prometheus"]
    query = prom["metadata"]["query"]
    variant = by_kind(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/variant"]
    assert f'variant="{variant}"' in query and 'namespace="' in query
