"""The adaptive batcher: merges concurrent requests, never splits one, gives each its own rows,
refuses with 503 when its queue is full, and passes errors to every request of a batch."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest

from digit_contract.store import version_dir
from service.errors import InvalidInput
from service.inference_protocol.batching import Batcher, BatchQueueFull
from service.models.registry import ServedModel
from service.server.app import create_app
from tests.service.conftest import make_settings
from training.data import RawSplit

from .conftest import MODEL, as_model_input

MODEL_A = ServedModel("a", 1, "ready")


def tagged(count: int, tag: float) -> npt.NDArray[np.float32]:
    """`count` images whose first pixel says which request they belong to."""
    images = np.zeros((count, 28, 28, 1), dtype=np.float32)
    images[:, 0, 0, 0] = tag
    return images


class GatedRunner:
    """A model run that waits until the test opens the gate, and answers each image's tag in column 0."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.batches: list[int] = []

    async def __call__(self, model: ServedModel, images: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        self.batches.append(len(images))
        await self.gate.wait()
        answer = np.zeros((len(images), 10), dtype=np.float32)
        answer[:, 0] = images[:, 0, 0, 0]
        return answer


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_requests_that_queue_behind_a_batch_run_together_and_get_their_rows() -> None:
    async def scenario() -> None:
        runner = GatedRunner()
        batcher = Batcher(runner, max_size=64, max_delay=0.0, queue_limit=1000)
        first = asyncio.create_task(batcher.infer(MODEL_A, tagged(1, 1.0)))
        await settle()  # the first request runs alone, at once: no waiting at low load
        assert runner.batches == [1]
        later = [asyncio.create_task(batcher.infer(MODEL_A, tagged(n, float(n + 10)))) for n in (1, 2, 3)]
        await settle()
        runner.gate.set()
        results = await asyncio.gather(first, *later)
        assert runner.batches == [1, 6]  # the three that queued meanwhile made one batch
        for result, (count, tag) in zip(results, [(1, 1.0), (1, 11.0), (2, 12.0), (3, 13.0)], strict=True):
            assert result.shape == (count, 10)
            assert np.all(result[:, 0] == tag)
        await batcher.close()

    asyncio.run(scenario())


def test_batches_hold_whole_requests_up_to_the_max_size() -> None:
    async def scenario() -> None:
        runner = GatedRunner()
        runner.gate.set()
        batcher = Batcher(runner, max_size=4, max_delay=0.05, queue_limit=1000)
        sizes = [3, 2, 2, 5]
        results = await asyncio.gather(*(batcher.infer(MODEL_A, tagged(n, float(i))) for i, n in enumerate(sizes)))
        # 3 fits, 3+2 does not; 2+2 fits; 5 is over the max but runs alone rather than being split.
        assert runner.batches == [3, 4, 5]
        assert [len(r) for r in results] == sizes
        await batcher.close()

    asyncio.run(scenario())


def test_a_full_queue_refuses_with_503() -> None:
    async def scenario() -> None:
        runner = GatedRunner()
        batcher = Batcher(runner, max_size=8, max_delay=0.0, queue_limit=4)
        running = asyncio.create_task(batcher.infer(MODEL_A, tagged(1, 1.0)))
        await settle()
        queued = asyncio.create_task(batcher.infer(MODEL_A, tagged(3, 2.0)))
        await settle()
        with pytest.raises(BatchQueueFull) as refused:
            await batcher.infer(MODEL_A, tagged(2, 3.0))
        assert refused.value.status_code == 503
        assert refused.value.message == "model 'a' has 3 images waiting for a batch, the limit is 4: retry later"
        runner.gate.set()
        await asyncio.gather(running, queued)
        await batcher.close()

    asyncio.run(scenario())


def test_an_error_reaches_every_request_of_the_batch() -> None:
    async def failing(model: ServedModel, images: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        raise InvalidInput("the model refused")

    async def scenario() -> None:
        batcher = Batcher(failing, max_size=8, max_delay=0.01, queue_limit=100)
        results = await asyncio.gather(*(batcher.infer(MODEL_A, tagged(1, 0.0)) for _ in range(3)),
                                       return_exceptions=True)
        assert all(isinstance(r, InvalidInput) and r.message == "the model refused" for r in results)
        await batcher.close()

    asyncio.run(scenario())


def test_the_app_with_batching_answers_each_request_as_without(oip_store: Path, digits: RawSplit) -> None:
    images = as_model_input(digits.images[:24])
    session = ort.InferenceSession(str(version_dir(oip_store, MODEL, 1) / "model.onnx"), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"image": images})[0].argmax(axis=1).tolist()  # the model's own answers

    def body(i: int) -> dict[str, object]:
        return {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 28, 28, 1],
                            "data": images[i].ravel().tolist()}], "outputs": [{"name": "digit"}]}

    async def scenario() -> tuple[list[int], list[int]]:
        app = create_app(make_settings(oip_store, batching=True, batch_max_delay_ms=5.0, warmup_runs=1))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                answers = await asyncio.gather(*(client.post(f"/v2/models/{MODEL}/infer", json=body(i))
                                                 for i in range(len(images))))
            sizes = list(app.state.batcher.batch_sizes)
        return [a.json()["outputs"][0]["data"][0] for a in answers], sizes

    digits_back, sizes = asyncio.run(scenario())
    assert digits_back == expected
    assert sum(sizes) == len(images)  # every image ran exactly once
    assert max(sizes) > 1  # with a 5 ms window, 24 simultaneous requests are merged
