"""The model registry: the lifecycle of every model of the store (load all, reload, ready or
failed, lookups and the default model).

Each model goes through the load-time checks of `service.models.checks` (card, file hash, session,
signature, warm-up); the first one that fails becomes the model's `reason` while the other models
load and serve. Sessions and their providers come from `service.models.sessions`.

Loaded models live in an immutable mapping that `load()` replaces in one assignment, so a request
that fetched a model keeps a consistent model (card and session) while a reload swaps in new ones.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np
import numpy.typing as npt

from digit_contract.card import ModelCard
from digit_contract.inputs import INPUT_NAME, MNIST_INPUT, OUTPUT_NAME, InputSpec
from digit_contract.ranking import rank_cards
from digit_contract.store import CARD_FILE, MODEL_FILE, read_upload_accuracy, scan_store, version_dir
from service.errors import ModelNotFound, ModelNotReady, NoModelReady, StoreUnavailable
from service.models.checks import (
    ModelLoadError,
    check_input_spec,
    check_signature,
    open_session,
    read_card,
    read_model_bytes,
    warm_up,
)
from service.models.sessions import (
    ARENA_GROWTH,
    SHRINK_AFTER_IMAGES,
    InferenceSessionLike,
    ProviderPlan,
    SessionFactory,
    TensorInfo,
    create_onnx_session,
    shrink_after_run,
)
from service.models.versions import VersionPolicies
from service.observability.latency import LatencyStats, RequestLatency

# Names other modules have imported from here since before the split (the registry re-exports them).
__all__ = [
    "InferenceSessionLike",
    "LatencyStats",
    "ModelLoadError",
    "ModelRegistry",
    "ModelState",
    "ServedModel",
    "SessionFactory",
    "TensorInfo",
    "create_onnx_session",
    "rank_cards",
    "rank_models",
]

log = logging.getLogger(__name__)

ModelState = Literal["ready", "failed"]


@dataclass(frozen=True)
class ServedModel:
    """One model as the registry holds it: ready with a session, or failed with a reason."""

    name: str
    version: int
    state: ModelState
    reason: str | None = None
    card: ModelCard | None = None
    session: InferenceSessionLike | None = field(default=None, repr=False, compare=False)
    providers: tuple[str, ...] = ()
    latency: LatencyStats | None = None
    """Single-image latency measured at warm-up (an idle server's best case)."""
    requests: RequestLatency = field(default_factory=RequestLatency, repr=False, compare=False)
    """What real requests took: a rolling window the data plane records into."""
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def input_spec(self) -> InputSpec:
        """The input the model takes, from its card (a model without one, which cannot serve: MNIST's)."""
        return self.card.input if self.card is not None else MNIST_INPUT

    def predict(self, images: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Probabilities (N, 10) for model input (N, *card.input.sample_shape). Blocking: call it off the event loop."""
        if self.session is None:
            raise ModelNotReady(self.name, self.reason or "not loaded")
        if len(images) <= SHRINK_AFTER_IMAGES:
            outputs = self.session.run([OUTPUT_NAME], {INPUT_NAME: images})
        else:
            with ARENA_GROWTH.large_run():  # given back after the burst: ModelRegistry.give_arena_back
                outputs = self.session.run([OUTPUT_NAME], {INPUT_NAME: images})
        return np.asarray(outputs[0], dtype=np.float32)

    def shrink_arena(self) -> None:
        """Run one blank image with the arena's shrinkage on: every free region of the arena goes back."""
        if self.session is None:
            return
        blank = np.zeros((1, *self.input_spec.sample_shape), np.float32)
        self.session.run([OUTPUT_NAME], {INPUT_NAME: blank}, shrink_after_run())


class ModelRegistry:
    """Every model of the store, each ready or failed, behind an atomically replaced mapping."""

    def __init__(
        self,
        store: Path,
        plan: ProviderPlan,
        *,
        intra_op_threads: int = 1,
        warmup_runs: int = 20,
        default_model: str | None = None,
        default_upload_model: str | None = None,
        session_factory: SessionFactory = create_onnx_session,
        version_policies: VersionPolicies | None = None,
    ) -> None:
        self.store = store
        self.version_policies = version_policies or VersionPolicies()
        self.plan = plan
        self.intra_op_threads = intra_op_threads
        self.warmup_runs = warmup_runs
        self.configured_default = default_model
        self.configured_upload_default = default_upload_model
        self._upload_accuracy: Mapping[str, float] = MappingProxyType({})
        self._session_factory = session_factory
        self._models: Mapping[str, ServedModel] = MappingProxyType({})
        self._versions: Mapping[str, Mapping[int, ServedModel]] = MappingProxyType({})
        self._rejected: Mapping[str, ServedModel] = MappingProxyType({})
        self._unloaded: frozenset[str] = frozenset()  # unloaded through Triton's repository extension
        self._load_lock = threading.Lock()
        # default_name's answers for one snapshot of the models (see there): (its key, {uploads: name}).
        self._default_names: tuple[tuple[object, ...], dict[bool, str | None]] = ((), {})

    # -- lifecycle ---------------------------------------------------------------------------

    def load(self) -> Mapping[str, ServedModel]:
        """Load the latest version of every model in the store and swap them in at once.

        A model that fails keeps its reason and the others still load. If a model was ready
        before and its new version fails, the ready one keeps serving (a reload never makes a
        serving model worse).

        Raises:
            StoreUnavailable: the store holds no model, or `default_model` is not in it.
            DeviceUnavailable: an explicit GPU device cannot be used (see `service.models.sessions`).
        """
        with self._load_lock:
            try:
                listing = scan_store(self.store)
            except OSError as exc:
                reason = exc.strerror or type(exc).__name__
                raise StoreUnavailable(f"the model store {self.store.resolve()} cannot be read ({reason})",
                                       public=f"the model store cannot be read ({reason})") from exc
            found = listing.versions
            if not found and not listing.unreadable:
                raise StoreUnavailable(
                    f"no models in the model store {self.store.resolve()}: expected <name>/<version>/"
                    f"{{{MODEL_FILE},{CARD_FILE}}}; set DIGITS_MODEL_STORE (or --model-store) to the store",
                    public="the model store holds no models",
                )
            for setting, configured in (("DIGITS_DEFAULT_MODEL", self.configured_default),
                                        ("DIGITS_DEFAULT_UPLOAD_MODEL", self.configured_upload_default)):
                if configured is not None and configured not in found and configured not in listing.unreadable:
                    message = f"{setting}={configured} is not in the store; models there: {', '.join(found)}"
                    raise StoreUnavailable(message, public=message)
            previous = self._models
            loaded: dict[str, ServedModel] = {}
            rejected: dict[str, ServedModel] = {}
            # Each model's versions to load, highest first, by its version policy (default: the latest).
            candidates = {name: self.version_policies.for_model(name).select(versions)
                          for name, versions in found.items() if name not in self._unloaded}
            every_version: dict[str, Mapping[int, ServedModel]] = {}
            for name in sorted(candidates.keys() | (listing.unreadable.keys() - self._unloaded)):
                if name in listing.unreadable:
                    # Version 0: which version it holds cannot be known without reading it.
                    reason = f"the model directory cannot be read ({listing.unreadable[name]})"
                    log.error("model %s is not ready: %s", name, reason)
                    model = ServedModel(name, 0, "failed", reason=reason)
                elif not candidates[name]:
                    policy = self.version_policies.for_model(name)
                    reason = f"the version policy {policy} selects none of its versions ({found[name]})"
                    log.error("model %s is not ready: %s", name, reason)
                    model = ServedModel(name, listing.latest[name], "failed", reason=reason)
                else:
                    model = self._load_one(name, candidates[name][0])
                old = previous.get(name)
                if not model.ready and old is not None and old.ready:
                    log.error("model %s v%d failed (%s); v%d keeps serving", name, model.version, model.reason, old.version)
                    rejected[name] = model
                    model = old
                loaded[name] = model
                # The older versions the policy keeps (a ready one already loaded is kept as it is).
                kept = {model.version: model}
                for version in candidates.get(name, [])[1:]:
                    earlier = self._versions.get(name, {}).get(version)
                    kept[version] = earlier if earlier is not None and earlier.ready else self._load_one(name, version)
                every_version[name] = MappingProxyType(kept)
            # The swap: one reference assignment. A request that already holds a model (and so its
            # session) finishes on it; the next lookup sees the new mapping.
            self._upload_accuracy = MappingProxyType(read_upload_accuracy(self.store))
            self._versions = MappingProxyType(every_version)
            self._models = MappingProxyType(loaded)
            self._rejected = MappingProxyType(rejected)
            return self._models

    def unload(self, name: str) -> None:
        """Stop serving `name` (every version) until `admit(name)` and the next `load()`.

        Raises:
            ModelNotFound: no such model is loaded.
        """
        with self._load_lock:
            if name not in self._models:
                raise ModelNotFound(name, self._models)
            self._unloaded = self._unloaded | {name}
            self._versions = MappingProxyType({n: v for n, v in self._versions.items() if n != name})
            self._models = MappingProxyType({n: m for n, m in self._models.items() if n != name})

    def admit(self, name: str) -> None:
        """Let the next `load()` load `name` again (it was unloaded; a no-op otherwise)."""
        with self._load_lock:
            self._unloaded = self._unloaded - {name}

    @property
    def unloaded(self) -> frozenset[str]:
        """The models of the store that `unload` took out of service."""
        return self._unloaded

    def give_arena_back(self) -> bool:
        """Once a burst of large batches is over, return the arenas' growth to the system: through
        every ready model, so that sessions with arenas of their own give theirs back too (with the
        shared arena, the first does it and the rest find nothing to free). Blocking: call it off the
        event loop. False when nothing had grown or a large batch is still running."""
        if not ARENA_GROWTH.take_if_idle():
            return False
        for model in self.models.values():
            if model.ready:
                model.shrink_arena()
        return True

    def close(self) -> None:
        """Drop every session (they are freed once no request holds them)."""
        self._models = MappingProxyType({})
        self._versions = MappingProxyType({})

    def _load_one(self, name: str, version: int) -> ServedModel:
        directory = version_dir(self.store, name, version)
        card: ModelCard | None = None
        try:
            card = read_card(directory / CARD_FILE, name, version)
            spec = check_input_spec(card)
            data = read_model_bytes(directory / MODEL_FILE, card)
            # Raises DeviceUnavailable (not ModelLoadError): a wrong device fails start-up, not one model.
            session = open_session(data, self.plan, self.intra_op_threads, self._session_factory, name)
            check_signature(session, spec)
            latency = warm_up(session, self.warmup_runs, spec)
        except ModelLoadError as exc:
            log.error("model %s v%d is not ready: %s", name, version, exc)
            return ServedModel(name, version, "failed", reason=str(exc), card=card)
        providers = tuple(session.get_providers())
        log.info("model %s v%d ready on %s (p50 %.3f ms)", name, version, ", ".join(providers), latency.p50_ms)
        return ServedModel(name, version, "ready", card=card, session=session, providers=providers, latency=latency)

    # -- lookup ------------------------------------------------------------------------------

    @property
    def models(self) -> Mapping[str, ServedModel]:
        """The current mapping (a snapshot: a reload replaces it, never mutates it)."""
        return self._models

    def versions(self, name: str) -> Mapping[int, ServedModel]:
        """Every loaded version of `name` by number (the one in `models` among them); empty if unknown.

        `models` holds each model's latest loaded version, the one `/predict` and `/models` use; the
        version policy (`DIGITS_VERSION_POLICY`) may keep older ones beside it for the protocol's
        `/v2/models/{name}/versions/{v}`.
        """
        current = self._models.get(name)
        kept = self._versions.get(name, MappingProxyType({}))
        if current is not None and current.version not in kept:  # the previous version kept serving
            return MappingProxyType({**kept, current.version: current})
        return kept

    @property
    def rejected(self) -> Mapping[str, ServedModel]:
        """Failed loads of the last `load()` that were not swapped in because an earlier version
        of the same model was ready and kept serving (their `reason` says why)."""
        return self._rejected

    def get(self, name: str) -> ServedModel:
        """The model called `name`, ready or not. Names are only ever looked up, never made into paths."""
        models = self._models
        if name not in models:
            raise ModelNotFound(name, models)
        return models[name]

    def get_ready(self, name: str | None, *, uploads: bool = False) -> ServedModel:
        """The ready model `name`, or the default model (for image uploads, with `uploads`) when None.

        Raises:
            ModelNotFound: no such model.
            ModelNotReady: it exists but failed to load.
            NoModelReady: no name given and no model is ready.
        """
        models = self._models  # one snapshot for the whole lookup: a reload may swap the mapping meanwhile
        if name is None:
            name = self.default_name(models, uploads=uploads)
            if name is None:
                raise NoModelReady("no model is ready to answer")
        if name not in models:
            raise ModelNotFound(name, models)
        model = models[name]
        if not model.ready:
            raise ModelNotReady(model.name, model.reason or "not loaded")
        return model

    def default_name(self, models: Mapping[str, ServedModel] | None = None, *, uploads: bool = False) -> str | None:
        """The model that answers a request naming none.

        For pixel input: the configured default, else the ready model ranked first by test accuracy.
        For image uploads (`uploads`): the configured upload default, else the ready model with the
        best accuracy on the user-style validation uploads recorded in the store, else as for pixels.

        Args:
            models: the snapshot to choose from (a caller that also reads the models passes the one
                it read, so both agree across a reload); the current mapping when omitted.
        """
        models = self._models if models is None else models
        # Every request naming no model asks this; ranking the store's cards each time cost ~0.1 ms
        # of a 1.3 ms MNIST upload (bench/profile_path.py). The answer depends only on which versions
        # are ready and on the settings, so it is kept until they change (a key of a few µs to build,
        # holding no model: an unloaded model's session is not kept alive by it).
        key = (tuple((name, m.version, m.ready, m.card and (m.card.test_accuracy, m.card.test_loss))
                     for name, m in models.items()),
               self._upload_accuracy, self.configured_default, self.configured_upload_default)
        known_key, known = self._default_names
        if known_key != key:
            known = {}
            self._default_names = (key, known)
        if uploads not in known:
            known[uploads] = self._rank_default(models, uploads=uploads)
        return known[uploads]

    def _rank_default(self, models: Mapping[str, ServedModel], *, uploads: bool) -> str | None:
        """default_name's choice, computed (no cache)."""
        if uploads and self.configured_upload_default is not None:
            return self.configured_upload_default
        if uploads and self._upload_accuracy:
            evaluated = {name: m for name, m in models.items() if name in self._upload_accuracy}
            best = rank_models(evaluated, uploads=self._upload_accuracy)
            if best:
                return best[0]
        if self.configured_default is not None:
            return self.configured_default
        ranked = rank_models(models)
        return ranked[0] if ranked else None

    @property
    def upload_accuracy(self) -> Mapping[str, float]:
        """Accuracy on the user-style validation uploads, per model, as recorded in the store."""
        return self._upload_accuracy


def rank_models(models: Mapping[str, ServedModel], uploads: Mapping[str, float] | None = None) -> list[str]:
    """Ready models, best first, by `digit_contract.ranking.rank_cards` (the zoo's one ranking rule)."""
    return rank_cards({name: m.card for name, m in models.items() if m.ready and m.card is not None}, uploads)
