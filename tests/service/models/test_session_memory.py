"""Sessions share one CPU arena (issue 24): each arena keeps the peak it ever reached, so one per
model held the sum of every model's largest batch (939 MB after batch 1,024 on 15 models)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from service.models import sessions
from service.models.sessions import ArenaGrowth, ProviderPlan, create_onnx_session

STORE = Path(__file__).resolve().parents[3] / "model_store"
CPU_PLAN = ProviderPlan("cpu", ("CPUExecutionProvider",), required="CPUExecutionProvider")


def model_bytes(name: str) -> bytes:
    return (STORE / name / "1" / "model.onnx").read_bytes()


def test_sessions_draw_from_the_shared_arena() -> None:
    session = create_onnx_session(model_bytes("cnn"), CPU_PLAN, 1)
    options = session.get_session_options()  # type: ignore[attr-defined]
    assert options.get_session_config_entry("session.use_env_allocators") == "1"


def test_the_shared_arena_gives_the_same_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    shared = create_onnx_session(model_bytes("cnn"), CPU_PLAN, 1)
    monkeypatch.setattr(sessions, "SHARED_CPU_ARENA", False)
    own = create_onnx_session(model_bytes("cnn"), CPU_PLAN, 1)
    with pytest.raises(RuntimeError, match="does not have configuration with key"):
        own.get_session_options().get_session_config_entry("session.use_env_allocators")  # type: ignore[attr-defined]
    images = np.random.default_rng(0).random((64, 28, 28, 1), dtype=np.float32)
    np.testing.assert_array_equal(shared.run(None, {"image": images})[0], own.run(None, {"image": images})[0])


SHRINK_CHECK = """
import sys
import numpy as np
from service.models.registry import ServedModel
from service.models.sessions import ARENA_GROWTH, ProviderPlan, create_onnx_session

def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

plan = ProviderPlan("cpu", ("CPUExecutionProvider",), required="CPUExecutionProvider")
session = create_onnx_session(open(sys.argv[1], "rb").read(), plan, 1)
model = ServedModel("cnn", 1, "ready", session=session)
small = np.random.default_rng(0).random((8, 28, 28, 1), dtype=np.float32)
large = np.random.default_rng(1).random((1024, 28, 28, 1), dtype=np.float32)
model.predict(small)
before = rss_mb()
for _ in range(3):
    model.predict(large)
kept = rss_mb() - before
if ARENA_GROWTH.take_if_idle():
    model.shrink_arena()
print(kept, rss_mb() - before)
"""


def test_large_batches_keep_their_working_memory_until_the_burst_is_over() -> None:
    # One process: the arena is the process's. Without the shrinkage a batch of 1,024 on `cnn`
    # kept ~220 MB in the arena for good; shrinking after every such batch made it 2.5x slower.
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", SHRINK_CHECK, str(STORE / "cnn" / "1" / "model.onnx")],  # noqa: S603
                         capture_output=True, text=True, check=True, cwd=STORE.parent)
    kept, after = (float(v) for v in out.stdout.strip().splitlines()[-1].split())
    assert kept > 80.0, "the batches of a burst reuse the arena instead of faulting it in afresh"
    assert after < 40.0, "given back once the burst is over"


def test_the_growth_is_given_back_once_and_only_when_no_large_run_is_in_flight() -> None:
    growth = ArenaGrowth()
    assert not growth.take_if_idle()
    with growth.large_run():
        assert not growth.take_if_idle()
        with growth.large_run():
            pass
        assert not growth.take_if_idle(), "one large run is still in flight"
    assert growth.take_if_idle()
    assert not growth.take_if_idle(), "given back once"


def test_a_session_does_not_keep_the_model_bytes() -> None:
    # Built from bytes, onnxruntime's wrapper holds them as long as the session lives: every
    # model cost its file twice (15 MB on the committed store).
    model = model_bytes("dense_large")
    references = sys.getrefcount(model)
    session = create_onnx_session(model, CPU_PLAN, 1)
    assert sys.getrefcount(model) == references
    assert session.run(None, {"image": np.zeros((1, 28, 28, 1), np.float32)})[0].shape == (1, 10)


def test_without_memfd_the_session_is_built_from_the_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sessions.os, "memfd_create")
    images = np.random.default_rng(1).random((4, 28, 28, 1), dtype=np.float32)
    from_bytes = create_onnx_session(model_bytes("cnn"), CPU_PLAN, 1)
    monkeypatch.undo()
    from_memfd = create_onnx_session(model_bytes("cnn"), CPU_PLAN, 1)
    np.testing.assert_array_equal(from_bytes.run(None, {"image": images})[0],
                                  from_memfd.run(None, {"image": images})[0])
