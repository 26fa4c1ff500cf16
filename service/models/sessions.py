"""ONNX Runtime sessions: the execution providers they ask for, whether they got them, and how
they are built (threading and optimisation options).

ONNX Runtime quietly falls back to the CPU when a GPU provider cannot start (missing CUDA or
cuDNN libraries, no device): `InferenceSession(..., providers=["CUDAExecutionProvider", ...])`
succeeds and `get_providers()` lists only the CPU. So the choice is made in two steps, both pure
functions of lists so they are unit-tested without a GPU:

1. `plan_providers(device, available)` picks the providers to ask for from what the installed
   onnxruntime offers (`onnxruntime.get_available_providers()`); an explicit GPU device that the
   package does not even offer fails here.
2. `check_session_providers(plan, actual)` compares that plan with the providers a created session
   reports; an explicit GPU device the session did not get fails here. `auto` accepts the CPU.

`create_onnx_session` is the one place an `onnxruntime.InferenceSession` is made; the registry
takes any `SessionFactory`, so tests substitute fakes that follow `InferenceSessionLike`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from service.errors import DeviceUnavailable
from service.settings import Device

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"

# What each explicit device asks for, best first. The CPU stays last in every list: ONNX Runtime
# places operators a GPU provider does not implement on the next provider in the list.
_PREFERENCES: dict[Device, tuple[str, ...]] = {
    "cpu": (CPU,),
    "cuda": (CUDA, CPU),
    "tensorrt": (TENSORRT, CUDA, CPU),
}

_GPU_HINT = (
    "install onnxruntime-gpu instead of onnxruntime (the `gpu` extra, or the GPU image), check that "
    "the CUDA and cuDNN libraries it was built for are on the library path, and that a GPU is visible "
    "(docker run --gpus all); or set DIGITS_DEVICE=auto or cpu"
)


class TensorInfo(Protocol):
    """What the service reads of an ONNX Runtime `NodeArg`."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def shape(self) -> Sequence[int | str | None]: ...


class InferenceSessionLike(Protocol):
    """The part of `onnxruntime.InferenceSession` the service uses (tests substitute fakes)."""

    def run(self, output_names: list[str] | None, input_feed: dict[str, Any], run_options: Any = None) -> Sequence[Any]: ...
    def get_inputs(self) -> Sequence[TensorInfo]: ...
    def get_outputs(self) -> Sequence[TensorInfo]: ...
    def get_providers(self) -> list[str]: ...


@dataclass(frozen=True)
class ProviderPlan:
    """The providers to request for every session, and the one a session must really get."""

    device: Device
    requested: tuple[str, ...]
    required: str | None
    """The provider `get_providers()` must list first; None where the CPU is acceptable (auto)."""


SessionFactory = Callable[[bytes, ProviderPlan, int], InferenceSessionLike]


def plan_providers(device: Device, available: Sequence[str]) -> ProviderPlan:
    """Choose providers for `device` among those the installed onnxruntime offers.

    Raises:
        DeviceUnavailable: `device` is `cuda` or `tensorrt` and onnxruntime does not offer it.
    """
    if device == "auto":
        # Prefer CUDA where the package offers it; TensorRT only when asked for, since building
        # its engines makes start-up slow.
        requested = (CUDA, CPU) if CUDA in available else (CPU,)
        return ProviderPlan(device, requested, required=None)
    wanted = _PREFERENCES[device]
    if wanted[0] not in available:
        raise DeviceUnavailable(
            f"device={device} needs {wanted[0]}, but this onnxruntime offers only "
            f"{', '.join(available) or 'no providers'}; {_GPU_HINT}"
        )
    return ProviderPlan(device, tuple(p for p in wanted if p in available or p == CPU), required=wanted[0])


SHARED_CPU_ARENA = True
"""Every session's CPU memory from one arena of the process (ONNX Runtime's environment allocator),
not one arena per session. Each arena keeps the peak it ever reached: with 15 models run once at
batch 1,024, per-session arenas held 938 MB and the shared one 336 MB; loading costs the same
(bench/memory.py). Inference speed is the same within the noise."""

SHRINK_AFTER_IMAGES = 64
"""Runs of more images than this grow the arena for good (one batch of 1,024 kept ~220 MB: a worker
at 300 MB instead of 86), so the growth is given back once they are over (`ArenaGrowth`). Giving it
back at the end of every such run instead made a batch of 1,024 on `cnn` take 2.5x as long (31 ->
77 ms, one thread), each run faulting its working memory in afresh. Batches up to 64 grow the arena
by ~15 MB, which is kept."""


class ArenaGrowth:
    """Whether runs larger than `SHRINK_AFTER_IMAGES` have grown the arena since it was last given
    back, and how many are running now: the growth goes back when a burst of them is over."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._grown = False

    @contextmanager
    def large_run(self) -> Iterator[None]:
        with self._lock:
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                self._grown = True

    def take_if_idle(self) -> bool:
        """True once per growth, and only while no large run is in flight: the caller gives it back."""
        with self._lock:
            if self._grown and self._running == 0:
                self._grown = False
                return True
            return False


ARENA_GROWTH = ArenaGrowth()
"""The process's, as the arena is (`SHARED_CPU_ARENA`)."""


@cache
def shrink_after_run() -> Any:
    """Run options that return the CPU arena's growth to the system at the end of the run."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


_shared_arena_lock = threading.Lock()
_shared_arena_registered = False


def _register_shared_cpu_arena(ort: Any) -> bool:
    """Register the process's shared CPU arena once; False when this onnxruntime cannot."""
    global _shared_arena_registered
    with _shared_arena_lock:
        if not _shared_arena_registered:
            try:
                memory = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
                # No cap (0), grown by what is asked (1: kSameAsRequested), not to the next power of two.
                ort.create_and_register_allocator(memory, ort.OrtArenaCfg(0, 1, -1, -1))
            except (AttributeError, RuntimeError) as exc:  # an onnxruntime without the API, or refusing it
                log.warning("sessions keep their own CPU arenas: %s", exc)
                return False
            _shared_arena_registered = True
        return True


def create_onnx_session(model: bytes, plan: ProviderPlan, intra_op_threads: int) -> InferenceSessionLike:
    """An ONNX Runtime session on the planned providers, built from the (already verified) bytes."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if SHARED_CPU_ARENA and _register_shared_cpu_arena(ort):
        options.add_session_config_entry("session.use_env_allocators", "1")
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only; provider fall-backs are detected and logged by us
    with _as_private_file(model) as source:
        session: InferenceSessionLike = ort.InferenceSession(source, sess_options=options,
                                                             providers=list(plan.requested))
    return session


@contextmanager
def _as_private_file(model: bytes) -> Iterator[str | bytes]:
    """The verified bytes as a path ONNX Runtime can open: an anonymous in-memory file (Linux).

    Built from bytes, `onnxruntime.InferenceSession` keeps them for as long as the session lives
    (its Python wrapper holds them for a fall-back that the service never uses), so every model
    cost its file size twice: 15 MB on the committed store. Built from a path, it keeps nothing.
    The path is to a copy of the bytes whose SHA-256 was checked, not to the store's file, which
    could have been replaced since. Where there is no memfd (not Linux), the bytes themselves.
    """
    create = getattr(os, "memfd_create", None)
    if create is None or not os.path.isdir("/proc/self/fd"):
        yield model
        return
    descriptor = create("model.onnx", os.MFD_CLOEXEC)
    try:
        with open(descriptor, "wb", closefd=False) as file:
            file.write(model)
        yield f"/proc/self/fd/{descriptor}"
    finally:
        os.close(descriptor)


def check_session_providers(plan: ProviderPlan, actual: Sequence[str], model: str) -> None:
    """Refuse a session that silently fell back from the provider an explicit device requires.

    Raises:
        DeviceUnavailable: the plan requires a provider the session does not run on.
    """
    if plan.required is not None and (not actual or actual[0] != plan.required):
        raise DeviceUnavailable(
            f"device={plan.device}: the session for model {model!r} runs on {', '.join(actual) or 'nothing'}, "
            f"not {plan.required} (ONNX Runtime fell back, most often because the GPU libraries failed to "
            f"load); {_GPU_HINT}"
        )
    if plan.device == "auto" and plan.requested[0] != CPU and actual and actual[0] == CPU:
        log.warning("model %s: %s is installed but the session fell back to the CPU", model, plan.requested[0])
