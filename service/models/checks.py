"""The load-time checks of one model version, in the order the registry runs them.

1. `read_card`: its card parses and validates (`ModelCard`), and names this model and version;
2. `read_model_bytes`: `model.onnx` has the size and SHA-256 the card records (the bytes hashed are
   the bytes loaded);
3. `open_session`: ONNX Runtime builds a session on the planned providers (an explicit GPU device
   that the session does not really get stops the whole start-up: see `service.models.sessions`);
4. `check_input_spec`: the card's input spec is one the service can prepare uploads for (its size
   is its encoding's: 28x28 for "mnist", 8x8 for "uci-8x8");
5. `check_signature`: the graph has the signature every model shares (`digit_contract.inputs`),
   its input shaped as the card's input spec says ([N, 28, 28, 1], [N, 64], ...);
6. `warm_up`: a warm-up batch (of the spec's shape and range) gives finite probabilities that sum
   to 1, and timed single-image runs measure this server's inference latency.

Each check raises `ModelLoadError` with a client-visible reason (no server paths in it); the
registry makes that the model's `reason` and keeps the other models serving.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from digit_contract.card import ModelCard
from digit_contract.inputs import INPUT_NAME, MNIST_INPUT, NUM_CLASSES, OUTPUT_NAME, InputSpec, check_encoding
from digit_contract.store import CARD_FILE, MODEL_FILE
from service.models.sessions import InferenceSessionLike, ProviderPlan, SessionFactory, check_session_providers
from service.observability.latency import LatencyStats


class ModelLoadError(Exception):
    """A model cannot serve; the message is the client-visible reason (no server paths in it)."""


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


def read_model_bytes(path: Path, card: ModelCard) -> bytes:
    """The bytes of `model.onnx`, once their size and SHA-256 match the card's."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{MODEL_FILE} cannot be read ({exc.strerror or 'I/O error'})") from exc
    if len(data) != card.onnx.size_bytes:
        raise ModelLoadError(f"{MODEL_FILE} is {len(data)} bytes but its card says {card.onnx.size_bytes}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != card.onnx.sha256:
        raise ModelLoadError(f"{MODEL_FILE} SHA-256 {digest[:12]}... does not match its card's {card.onnx.sha256[:12]}...")
    return data


def open_session(
    data: bytes, plan: ProviderPlan, intra_op_threads: int, factory: SessionFactory, name: str
) -> InferenceSessionLike:
    """A session for the verified bytes, on the providers the plan requires.

    Raises:
        ModelLoadError: ONNX Runtime cannot load the graph.
        DeviceUnavailable: the session fell back from an explicit device (this fails start-up,
            not one model).
    """
    try:
        session = factory(data, plan, intra_op_threads)
    except Exception as exc:  # ONNX Runtime raises its own Fail/InvalidGraph/... types
        raise ModelLoadError(f"ONNX Runtime cannot load {MODEL_FILE}: {_first_line(exc)}") from exc
    check_session_providers(plan, session.get_providers(), name)
    return session


def check_input_spec(card: ModelCard) -> InputSpec:
    """The card's input spec, if uploads can be prepared for it (its size is its encoding's)."""
    problem = check_encoding(card.input)
    if problem is not None:
        raise ModelLoadError(f"{CARD_FILE} input: {problem}")
    return card.input


def check_signature(session: InferenceSessionLike, spec: InputSpec = MNIST_INPUT) -> None:
    """The graph takes `image` float32 [N, *spec.sample_shape] ([N, 28, 28, 1] for MNIST's input)
    and gives `probabilities` float32 [N, 10]."""
    expected = (
        ("input", session.get_inputs(), INPUT_NAME, spec.sample_shape),
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
            # A card with another input than MNIST's says which: the graph disagrees with its card.
            card = f", as its card's input says ({spec.describe()})" if kind == "input" and spec != MNIST_INPUT else ""
            raise ModelLoadError(
                f"graph {kind} is {tensor.name!r} {tensor.type} {_format_shape(shape)}, expected {wanted} "
                f"with a dynamic batch dimension{card}"
            )


def warm_up(session: InferenceSessionLike, runs: int, spec: InputSpec = MNIST_INPUT) -> LatencyStats:
    """Check a small batch (of the spec's shape, values in its range) gives probabilities, then time
    `runs` single-image inferences."""
    unit = np.random.default_rng(0).random((3, *spec.sample_shape), dtype=np.float32)
    probe = unit if (spec.low, spec.high) == (0.0, 1.0) else np.float32(spec.low) + unit * np.float32(spec.high - spec.low)
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
