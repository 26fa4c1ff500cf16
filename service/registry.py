"""The model registry: loads every model of the store, validates it, and hands out sessions.

Each model goes through the same steps at load time, and the first one that fails becomes the
model's `reason` while the other models load and serve:

1. its card parses and validates (`ModelCard`), and names this model and version;
2. `model.onnx` has the size and SHA-256 the card records (the bytes hashed are the bytes loaded);
3. ONNX Runtime builds a session on the planned providers (an explicit GPU device that the session
   does not really get stops the whole start-up: see `service.providers`);
4. the graph has the one signature every model shares (`digit_contract.inputs`);
5. a warm-up batch gives finite probabilities that sum to 1, and timed single-image runs measure
   this server's inference latency.

Loaded models live in an immutable mapping that `load()` replaces in one assignment, so a request
that fetched a model keeps a consistent model (card and session) while a reload swaps in new ones.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from digit_contract.card import ModelCard
from digit_contract.inputs import IMAGE_SIDE, INPUT_NAME, INPUT_SHAPE, NUM_CLASSES, OUTPUT_NAME
from digit_contract.store import CARD_FILE, MODEL_FILE, read_upload_accuracy, scan_store, version_dir
from service.errors import ModelNotFound, ModelNotReady, NoModelReady, StoreUnavailable
from service.providers import ProviderPlan, check_session_providers
from service.versions import VersionPolicies

log = logging.getLogger(__name__)

ModelState = Literal["ready", "failed"]


class TensorInfo(Protocol):
    """What the registry reads of an ONNX Runtime `NodeArg`."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def shape(self) -> Sequence[int | str | None]: ...


class InferenceSessionLike(Protocol):
    """The part of `onnxruntime.InferenceSession` the service uses (tests substitute fakes)."""

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any]) -> Sequence[Any]: ...
    def get_inputs(self) -> Sequence[TensorInfo]: ...
    def get_outputs(self) -> Sequence[TensorInfo]: ...
    def get_providers(self) -> list[str]: ...


SessionFactory = Callable[[bytes, ProviderPlan, int], InferenceSessionLike]


def create_onnx_session(model: bytes, plan: ProviderPlan, intra_op_threads: int) -> InferenceSessionLike:
    """An ONNX Runtime session on the planned providers, built from the (already verified) bytes."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only; provider fall-backs are detected and logged by us
    session: InferenceSessionLike = ort.InferenceSession(model, sess_options=options, providers=list(plan.requested))
    return session


@dataclass(frozen=True)
class LatencyStats:
    """Wall-clock latency of single-image inferences measured at warm-up, in milliseconds."""

    runs: int
    p50_ms: float
    p95_ms: float
    mean_ms: float

    @classmethod
    def from_seconds(cls, samples: Sequence[float]) -> LatencyStats:
        ms = np.asarray(samples, dtype=np.float64) * 1000.0
        return cls(len(ms), float(np.percentile(ms, 50)), float(np.percentile(ms, 95)), float(ms.mean()))


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
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def predict(self, images: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Probabilities (N, 10) for model input (N, 28, 28, 1). Blocking: call it off the event loop."""
        if self.session is None:
            raise ModelNotReady(self.name, self.reason or "not loaded")
        outputs = self.session.run([OUTPUT_NAME], {INPUT_NAME: images})
        return np.asarray(outputs[0], dtype=np.float32)


class ModelLoadError(Exception):
    """A model cannot serve; the message is the client-visible reason (no server paths in it)."""


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
        self._load_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def load(self) -> Mapping[str, ServedModel]:
        """Load the latest version of every model in the store and swap them in at once.

        A model that fails keeps its reason and the others still load. If a model was ready
        before and its new version fails, the ready one keeps serving (a reload never makes a
        serving model worse).

        Raises:
            StoreUnavailable: the store holds no model, or `default_model` is not in it.
            DeviceUnavailable: an explicit GPU device cannot be used (see `service.providers`).
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
                          for name, versions in found.items()}
            every_version: dict[str, Mapping[int, ServedModel]] = {}
            for name in sorted(candidates.keys() | listing.unreadable.keys()):
                if name in listing.unreadable:
                    # Version 0: which version it holds cannot be known without reading it.
                    reason = f"the model directory cannot be read ({listing.unreadable[name]})"
                    log.error("model %s is not ready: %s", name, reason)
                    model = ServedModel(name, 0, "failed", reason=reason)
                elif not candidates[name]:
                    policy = self.version_policies.for_model(name)
                    reason = f"the version policy {policy} selects none of its versions ({found[name]})"
                    log.error("model %s is not ready: %s", name, reason)
                    model = ServedModel(name, found[name][-1], "failed", reason=reason)
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

    def close(self) -> None:
        """Drop every session (they are freed once no request holds them)."""
        self._models = MappingProxyType({})
        self._versions = MappingProxyType({})

    def _load_one(self, name: str, version: int) -> ServedModel:
        directory = version_dir(self.store, name, version)
        card: ModelCard | None = None
        try:
            card = read_card(directory / CARD_FILE, name, version)
            session = self._open_session(directory / MODEL_FILE, card, name)
            check_signature(session)
            latency = warm_up(session, self.warmup_runs)
        except ModelLoadError as exc:
            log.error("model %s v%d is not ready: %s", name, version, exc)
            return ServedModel(name, version, "failed", reason=str(exc), card=card)
        providers = tuple(session.get_providers())
        log.info("model %s v%d ready on %s (p50 %.3f ms)", name, version, ", ".join(providers), latency.p50_ms)
        return ServedModel(name, version, "ready", card=card, session=session, providers=providers, latency=latency)

    def _open_session(self, path: Path, card: ModelCard, name: str) -> InferenceSessionLike:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelLoadError(f"{MODEL_FILE} cannot be read ({exc.strerror or 'I/O error'})") from exc
        if len(data) != card.onnx.size_bytes:
            raise ModelLoadError(f"{MODEL_FILE} is {len(data)} bytes but its card says {card.onnx.size_bytes}")
        digest = hashlib.sha256(data).hexdigest()
        if digest != card.onnx.sha256:
            raise ModelLoadError(f"{MODEL_FILE} SHA-256 {digest[:12]}... does not match its card's {card.onnx.sha256[:12]}...")
        try:
            session = self._session_factory(data, self.plan, self.intra_op_threads)
        except Exception as exc:  # ONNX Runtime raises its own Fail/InvalidGraph/... types
            raise ModelLoadError(f"ONNX Runtime cannot load {MODEL_FILE}: {_first_line(exc)}") from exc
        # Raises DeviceUnavailable (not ModelLoadError): a wrong device fails start-up, not one model.
        check_session_providers(self.plan, session.get_providers(), name)
        return session

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
    """Ready models, best first, by `rank_cards`."""
    return rank_cards({name: m.card for name, m in models.items() if m.ready and m.card is not None}, uploads)


def rank_cards(cards: Mapping[str, ModelCard], uploads: Mapping[str, float] | None = None) -> list[str]:
    """The one ranking rule: by accuracy on the validation uploads when given, then by test
    accuracy, then lower test loss, then name (so the order never depends on the mapping's)."""
    scores = uploads or {}
    ranked = sorted((-scores.get(name, 0.0), -card.test_accuracy, card.test_loss, name) for name, card in cards.items())
    return [row[-1] for row in ranked]


# -- load steps (module functions so tests can exercise them one by one) ---------------------


def read_card(path: Path, name: str, version: int) -> ModelCard:
    """Read and validate a card, and check it describes this model and version."""
    try:
        card = ModelCard.read(path)
    except FileNotFoundError as exc:
        raise ModelLoadError(f"{CARD_FILE} is missing") from exc
    except OSError as exc:
        raise ModelLoadError(f"{CARD_FILE} cannot be read ({exc.strerror or 'I/O error'})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "card"
        raise ModelLoadError(f"{CARD_FILE} is invalid: {where}: {first['msg']} ({exc.error_count()} error(s))") from exc
    if card.name != name or card.version != version:
        raise ModelLoadError(f"{CARD_FILE} describes {card.name} v{card.version}, not {name} v{version}")
    if card.onnx.input_name != INPUT_NAME or card.onnx.output_name != OUTPUT_NAME:
        raise ModelLoadError(f"{CARD_FILE} names tensors {card.onnx.input_name}/{card.onnx.output_name}, "
                             f"expected {INPUT_NAME}/{OUTPUT_NAME}")
    return card


def check_signature(session: InferenceSessionLike) -> None:
    """The graph takes `image` float32 [N, 28, 28, 1] and gives `probabilities` float32 [N, 10]."""
    expected = (
        ("input", session.get_inputs(), INPUT_NAME, (*INPUT_SHAPE,)),
        ("output", session.get_outputs(), OUTPUT_NAME, (NUM_CLASSES,)),
    )
    for kind, tensors, name, tail in expected:
        if len(tensors) != 1:
            raise ModelLoadError(f"graph has {len(tensors)} {kind}s, expected one named {name!r}")
        tensor = tensors[0]
        shape = list(tensor.shape)
        wanted = f"{name!r} tensor(float) [N, {', '.join(map(str, tail))}]"
        dims_ok = len(shape) == len(tail) + 1 and not isinstance(shape[0], int) and tuple(shape[1:]) == tail
        if tensor.name != name or tensor.type != "tensor(float)" or not dims_ok:
            raise ModelLoadError(
                f"graph {kind} is {tensor.name!r} {tensor.type} {_format_shape(shape)}, expected {wanted} "
                "with a dynamic batch dimension"
            )


def warm_up(session: InferenceSessionLike, runs: int) -> LatencyStats:
    """Check a small batch gives probabilities, then time `runs` single-image inferences."""
    probe = np.random.default_rng(0).random((3, IMAGE_SIDE, IMAGE_SIDE, 1), dtype=np.float32)
    try:
        out = np.asarray(session.run([OUTPUT_NAME], {INPUT_NAME: probe})[0])
    except Exception as exc:  # a graph that loads but cannot run
        raise ModelLoadError(f"warm-up inference failed: {_first_line(exc)}") from exc
    if out.shape != (len(probe), NUM_CLASSES):
        raise ModelLoadError(f"warm-up output has shape {list(out.shape)}, expected [{len(probe)}, {NUM_CLASSES}]")
    if not np.all(np.isfinite(out)) or not np.allclose(out.sum(axis=1), 1.0, atol=1e-3) or out.min() < 0:
        raise ModelLoadError("warm-up output is not a probability distribution (softmax missing?)")
    single = probe[:1]
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run([OUTPUT_NAME], {INPUT_NAME: single})
        samples.append(time.perf_counter() - start)
    return LatencyStats.from_seconds(samples)


def _format_shape(shape: Sequence[Any]) -> str:
    return "[" + ", ".join("N" if isinstance(d, str) or d is None else str(d) for d in shape) + "]"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # ONNX Runtime messages can name build or file paths; keep the reason short and path-free.
    text = " ".join(word for word in text.split() if "/" not in word and "\\" not in word)
    return text[:200] if text else type(exc).__name__

