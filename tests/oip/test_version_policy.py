"""Version policies (`DIGITS_VERSION_POLICY`): parsing and which versions each kind selects."""

from __future__ import annotations

import pytest

from service.models.versions import LATEST, VersionPolicy, parse_policies, parse_policy


@pytest.mark.parametrize(("text", "available", "selected"), [
    ("latest:1", [1, 2, 3], [3]),
    ("latest:2", [3, 1, 2], [3, 2]),
    ("latest:5", [1, 2], [2, 1]),
    ("all", [2, 1, 7], [7, 2, 1]),
    ("specific:1,3", [1, 2, 3], [3, 1]),
    ("specific:4", [1, 2, 3], []),
])
def test_each_kind_selects_its_versions(text: str, available: list[int], selected: list[int]) -> None:
    assert parse_policy(text).select(available) == selected


def test_per_model_entries_and_the_default() -> None:
    policies = parse_policies("latest:2; cnn=all; mlp=specific:1,3")
    assert policies.for_model("cnn") == VersionPolicy("all")
    assert policies.for_model("mlp") == VersionPolicy("specific", versions=(1, 3))
    assert policies.for_model("cnn_noise") == VersionPolicy("latest", 2)
    assert parse_policies("").for_model("cnn") == LATEST
    assert str(policies.for_model("mlp")) == "specific:1,3"


@pytest.mark.parametrize(("text", "message"), [
    ("latest:0", "version policy 'latest:0': expected latest:N (N >= 1), all, or specific:V,V,..."),
    ("newest", "version policy 'newest': expected latest:N (N >= 1), all, or specific:V,V,..."),
    ("specific:", "version policy 'specific:': expected latest:N (N >= 1), all, or specific:V,V,..."),
    ("all; latest:2", "version policy: two defaults (entries without a model name)"),
    ("cnn=all; cnn=latest:1", "version policy: 'cnn' is given twice"),
    ("../x=all", "version policy: '../x' is not a model name"),
])
def test_malformed_policies_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_policies(text)
    assert str(error.value) == message
