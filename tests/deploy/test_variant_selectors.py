"""The CPU and GPU overlays in one namespace: no Service, PodDisruptionBudget, HorizontalPodAutoscaler
or ScaledObject of one variant selects (or scales) the other variant's pods."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.conftest import DEPLOY, kustomize

SELECTING_KINDS = ("Service", "PodDisruptionBudget")


def _pod_labels(docs: list[dict[str, Any]]) -> dict[str, str]:
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def _selector(doc: dict[str, Any]) -> dict[str, str]:
    spec = doc["spec"]
    selector: dict[str, str] = spec["selector"] if doc["kind"] == "Service" else spec["selector"]["matchLabels"]
    return selector


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize(("mine", "other"), [("cpu", "gpu"), ("gpu", "cpu"), ("cpu-keda", "gpu")])
def test_no_selector_of_one_variant_matches_the_others_pods(mine: str, other: str) -> None:
    own, others = kustomize(DEPLOY / "overlays" / mine), kustomize(DEPLOY / "overlays" / other)
    names = {(d["kind"], d["metadata"]["name"]) for d in own}
    assert not names & {(d["kind"], d["metadata"]["name"]) for d in others}, "the two variants' names collide"
    own_pods, other_pods = _pod_labels(own), _pod_labels(others)
    for doc in own:
        if doc["kind"] in SELECTING_KINDS:
            assert _selects(_selector(doc), own_pods), f"{doc['kind']} {doc['metadata']['name']} misses its own pods"
            assert not _selects(_selector(doc), other_pods), f"{doc['kind']} {doc['metadata']['name']} selects {other} pods"
        if doc["kind"] in ("HorizontalPodAutoscaler", "ScaledObject"):
            target = doc["spec"]["scaleTargetRef"]["name"]
            assert target == next(d for d in own if d["kind"] == "Deployment")["metadata"]["name"]


def test_the_check_can_fail() -> None:
    """Without the CPU overlay's variant label, its Service selects the GPU pods too (the bug found)."""
    gpu_pods = _pod_labels(kustomize(DEPLOY / "overlays" / "gpu"))
    assert _selects({"app.kubernetes.io/name": "digit-serving"}, gpu_pods)
