"""Version policies: which versions of each model the registry loads, Triton's three kinds.

    DIGITS_VERSION_POLICY="latest:1"                          # the default: the latest version only
    DIGITS_VERSION_POLICY="latest:2; cnn=all; mlp=specific:1,3"

Entries are separated by `;`. `name=policy` sets one model's policy; a policy without a name sets
the default for every other model. A policy is `latest:N` (the N highest versions), `all`, or
`specific:V,V,...` (those versions, where they exist). Whatever the policy, `/predict`, `/models`
and the protocol's requests without a version use a model's latest loaded version; the others are
reached with `/v2/models/{name}/versions/{v}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class VersionPolicy:
    """`kind` is latest, all or specific; `count` for latest, `versions` for specific."""

    kind: str
    count: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: Sequence[int]) -> list[int]:
        """The versions to load, highest first, out of those in the store."""
        ordered = sorted(set(available), reverse=True)
        if self.kind == "all":
            return ordered
        if self.kind == "latest":
            return ordered[: self.count]
        return [v for v in ordered if v in self.versions]

    def __str__(self) -> str:
        if self.kind == "latest":
            return f"latest:{self.count}"
        if self.kind == "all":
            return "all"
        return "specific:" + ",".join(map(str, self.versions))


LATEST = VersionPolicy("latest", 1)


@dataclass(frozen=True)
class VersionPolicies:
    default: VersionPolicy = LATEST
    per_model: Mapping[str, VersionPolicy] | None = None

    def for_model(self, name: str) -> VersionPolicy:
        return (self.per_model or {}).get(name, self.default)


def parse_policy(text: str) -> VersionPolicy:
    text = text.strip()
    kind, _, argument = text.partition(":")
    if kind == "all" and not argument:
        return VersionPolicy("all")
    if kind == "latest" and argument.strip().isascii() and argument.strip().isdigit() and int(argument) >= 1:
        return VersionPolicy("latest", int(argument))
    if kind == "specific":
        parts = [p.strip() for p in argument.split(",")]
        if parts and all(p.isascii() and p.isdigit() and int(p) >= 1 for p in parts):
            return VersionPolicy("specific", versions=tuple(sorted({int(p) for p in parts})))
    raise ValueError(f"version policy {text[:40]!r}: expected latest:N (N >= 1), all, or specific:V,V,...")


def parse_policies(text: str) -> VersionPolicies:
    """`latest:2; cnn=all; mlp=specific:1,3` as policies (see the module docstring).

    Raises:
        ValueError: an entry is not a policy, a name is not a model name, or one is given twice.
    """
    default: VersionPolicy | None = None
    per_model: dict[str, VersionPolicy] = {}
    for entry in (e.strip() for e in text.split(";")):
        if not entry:
            continue
        name, separator, policy = entry.partition("=")
        if not separator:
            if default is not None:
                raise ValueError("version policy: two defaults (entries without a model name)")
            default = parse_policy(entry)
            continue
        name = name.strip()
        if not _NAME.fullmatch(name):
            raise ValueError(f"version policy: {name[:40]!r} is not a model name")
        if name in per_model:
            raise ValueError(f"version policy: {name!r} is given twice")
        per_model[name] = parse_policy(policy)
    return VersionPolicies(default or LATEST, per_model)
