"""Triton's model-configuration, statistics and model-repository extensions, for both transports.

What Triton's tools ask before they infer (perf_analyzer reads a model's configuration first;
tritonclient has `get_model_config`, `get_inference_statistics`, `get_model_repository_index`,
`load_model`, `unload_model`). The REST routes (`rest_extensions.py`) and the gRPC methods
(`grpc_server.py`) call these and add nothing but their transport.

- Configuration: `triton_config.model_config`, the same declaration as the store's `config.pbtxt`,
  with this server's `image_file` input and both inputs `optional`.
- Statistics: `statistics.InferenceStatistics`, counted by the plane per model and version.
- Repository: the index lists every model of the store, loaded or not; `load` (re)loads the store
  (the reloader's path: validated, warmed up, swapped in) with the model admitted again, `unload`
  takes a model out of service until it is loaded again. Both need the admin token
  (`DIGITS_ADMIN_TOKEN`), as `POST /admin/reload` does; without one they are refused.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from digit_contract.errors import ServiceError
from digit_contract.store import scan_store
from service.api.dependencies import check_bearer_token
from service.errors import ModelNotFound, NotAuthorized
from service.inference.dataplane import input_spec
from service.inference_protocol.plane import MAX_BATCH, InferencePlane
from service.inference_protocol.triton_config import model_config
from service.models.registry import ModelRegistry
from service.models.reloader import StoreReloader

READY, UNAVAILABLE = "READY", "UNAVAILABLE"
"""Triton's model states in the repository index."""


class RepositoryRequestFailed(ServiceError):
    """A repository load or unload that cannot be done: the reason says why."""

    status_code = 400
    title = "model repository request failed"


class TritonExtensions:
    """The three extensions over one plane (its registry and statistics) and the store's reloader."""

    def __init__(self, plane: InferencePlane, reloader: StoreReloader, admin_token: SecretStr | None) -> None:
        self.plane = plane
        self.reloader = reloader
        self.admin_token = admin_token

    @property
    def registry(self) -> ModelRegistry:
        return self.plane.dataplane.registry

    # -- model configuration -----------------------------------------------------------------

    def model_config(self, name: str, version: str | None) -> dict[str, Any]:
        """The model's configuration (Triton's `ModelConfig` as JSON). Raises ModelNotFound, VersionNotFound."""
        model = self.plane.model(name, version)
        return model_config(model.name, input_spec(model), MAX_BATCH, served=True)

    # -- statistics --------------------------------------------------------------------------

    def model_statistics(self, name: str | None, version: str | None) -> dict[str, Any]:
        """`{"model_stats": [...]}` for one model (one version, or each loaded one), or for every model."""
        registry = self.registry
        if name:
            found = self.plane.model(name, version)  # an unknown model or version: NOT_FOUND, as Triton
            versions = [str(found.version)] if version else [str(v) for v in sorted(registry.versions(name))]
            names = [(name, v) for v in versions]
        else:
            names = [(n, str(v)) for n in sorted(registry.models) for v in sorted(registry.versions(n))]
        return {"model_stats": [self.plane.statistics.report(n, v) for n, v in names]}

    # -- model repository --------------------------------------------------------------------

    def repository_index(self, ready_only: bool = False) -> list[dict[str, str]]:
        """Every model of the store with each loaded version's state; unloaded and new ones as UNAVAILABLE."""
        registry = self.registry
        entries: list[dict[str, str]] = []
        listing = scan_store(registry.store)
        for name in sorted(listing.versions.keys() | listing.unreadable.keys() | registry.models.keys()):
            versions = registry.versions(name)
            if not versions:
                reason = "unloaded" if name in registry.unloaded else "not loaded (POST its load to load it)"
                entries.append({"name": name, "version": "", "state": UNAVAILABLE, "reason": reason})
            for number, model in sorted(versions.items()):
                entries.append({"name": name, "version": str(number), "state": READY if model.ready else UNAVAILABLE,
                                "reason": model.reason or ""})
        return [entry for entry in entries if entry["state"] == READY] if ready_only else entries

    async def load(self, name: str, token: str | None) -> None:
        """Load `name` from the store (again), with the newest version of every model.

        Raises:
            NotAuthenticated, NotAuthorized: no admin token configured, or not this one.
            ModelNotFound: the store has no such model. RepositoryRequestFailed: it did not load.
            ReloadFailed: the store as a whole cannot be loaded.
        """
        self._check_token(token)
        registry = self.registry
        listing = scan_store(registry.store)
        if name not in listing.versions and name not in listing.unreadable:
            raise ModelNotFound(name, listing.versions)
        registry.admit(name)
        await self.reloader.reload("admin")
        model = registry.models.get(name)
        if model is None or not model.ready:
            reason = model.reason if model is not None else "it is not in the store any more"
            raise RepositoryRequestFailed(f"model {name!r} did not load: {reason}")

    async def unload(self, name: str, token: str | None) -> None:
        """Take `name` out of service (every version) until it is loaded again.

        Raises:
            NotAuthenticated, NotAuthorized: no admin token configured, or not this one.
            ModelNotFound: no such model is loaded. RepositoryRequestFailed: it is the configured default.
        """
        self._check_token(token)
        registry = self.registry
        defaults = {registry.configured_default, registry.configured_upload_default}
        if name in defaults:
            raise RepositoryRequestFailed(f"model {name!r} is the configured default (DIGITS_DEFAULT_MODEL or "
                                          "DIGITS_DEFAULT_UPLOAD_MODEL): it cannot be unloaded")
        registry.unload(name)
        metrics = self.reloader.metrics
        metrics.forget_model(name)
        metrics.observe_registry(registry.models)

    def _check_token(self, token: str | None) -> None:
        if self.admin_token is None:
            raise NotAuthorized("model load and unload are disabled: set DIGITS_ADMIN_TOKEN to enable them")
        check_bearer_token(token, self.admin_token, needs="model load and unload need", kind="admin token")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (HTTP, or gRPC's `authorization` metadata)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
