"""Adaptive batching: concurrent inference requests for one model merged into one model run.

Opt-in (`DIGITS_BATCHING=true`). Each model gets a queue and `runners` tasks that take from it:

- a runner takes every image waiting, up to `max_size`, and runs them as one batch in a worker
  thread; while that batch runs, new requests queue up and form the next batch. Under light load
  a request is run at once, alone (no added latency); under heavy load batches grow by themselves;
- with `max_delay` > 0, a runner that finds fewer than `max_size` images waits up to that long
  for more before it runs them (more merging, more latency);
- at most `queue_limit` images wait per model: a request that would pass it is refused at once
  with 503 (`BatchQueueFull`), so an overloaded server sheds load instead of growing a backlog.

A request's images are never split across batches, and each gets back exactly its rows. What a
batch costs and gains is measured in bench/v2.py (`batching` scenario); the README reports it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from digit_contract.errors import ServiceError
from service.models.registry import ServedModel

log = logging.getLogger(__name__)

Runner = Callable[[ServedModel, npt.NDArray[np.float32]], Awaitable[npt.NDArray[np.float32]]]
"""Runs one batch of model input through a model and returns its probabilities, row for row."""


class BatchQueueFull(ServiceError):
    """The model's batch queue holds `queue_limit` images already: retry later."""

    status_code = 503
    title = "batch queue full"
    headers = {"Retry-After": "1"}  # noqa: RUF012 (read-only, shared by every instance)


@dataclass
class _Waiting:
    images: npt.NDArray[np.float32]
    future: asyncio.Future[npt.NDArray[np.float32]]


@dataclass
class _ModelQueue:
    model: ServedModel
    waiting: deque[_Waiting] = field(default_factory=deque)
    images: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    runners: list[asyncio.Task[None]] = field(default_factory=list)
    retired: bool = False
    """Its model was replaced or removed: the runners finish what waits, then end (and let the model go)."""


class Batcher:
    """One queue per model (by name and version), its runners started on first use."""

    def __init__(self, run: Runner, *, max_size: int, max_delay: float, queue_limit: int, runners: int = 1) -> None:
        self._run = run
        self.max_size = max_size
        self.max_delay = max_delay
        self.queue_limit = queue_limit
        self.runner_count = runners
        self._queues: dict[tuple[str, int], _ModelQueue] = {}
        self.batch_sizes: list[int] = []
        """Images in each batch run so far (the last 10,000), for tests and the benchmark report."""

    async def infer(self, model: ServedModel, images: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Probabilities for `images`, computed in a batch with whatever else is waiting for `model`.

        Raises:
            BatchQueueFull: the model's queue is full.
        """
        queue = self._queue(model)
        if queue.images + len(images) > self.queue_limit and queue.images > 0:
            raise BatchQueueFull(f"model {model.name!r} has {queue.images} images waiting for a batch, the "
                                 f"limit is {self.queue_limit}: retry later")
        future: asyncio.Future[npt.NDArray[np.float32]] = asyncio.get_running_loop().create_future()
        queue.waiting.append(_Waiting(images, future))
        queue.images += len(images)
        queue.arrived.set()
        return await future

    async def close(self) -> None:
        """Stop the runners; requests still waiting get an error."""
        for queue in self._queues.values():
            for task in queue.runners:
                task.cancel()
            await asyncio.gather(*queue.runners, return_exceptions=True)
            while queue.waiting:
                waiting = queue.waiting.popleft()
                if not waiting.future.done():
                    waiting.future.set_exception(BatchQueueFull("the server is shutting down"))
        self._queues.clear()

    def retire_stale(self, live: Collection[ServedModel]) -> None:
        """Retire the queues of models not in `live` (after a reload): their runners end once idle.

        A runner holds its queue's model; left waiting forever, the runners of every reloaded model
        kept the old sessions alive until a full garbage collection (+36 MB per reload) and were
        destroyed pending at exit.
        """
        keep = {id(model) for model in live}
        for key, queue in list(self._queues.items()):
            if id(queue.model) not in keep:
                self._retire(queue)
                del self._queues[key]

    @staticmethod
    def _retire(queue: _ModelQueue) -> None:
        queue.retired = True
        queue.arrived.set()  # wakes idle runners, which see the flag and end

    def _queue(self, model: ServedModel) -> _ModelQueue:
        key = (model.name, model.version)
        queue = self._queues.get(key)
        if queue is None or queue.model is not model:  # a reload swapped the model: new queue, new runners
            if queue is not None:
                self._retire(queue)
            queue = self._queues[key] = _ModelQueue(model)
            queue.runners = [asyncio.create_task(self._serve(queue)) for _ in range(self.runner_count)]
        return queue

    async def _serve(self, queue: _ModelQueue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not queue.waiting:
                if queue.retired:
                    return
                queue.arrived.clear()
                await queue.arrived.wait()
            if self.max_delay > 0 and queue.images < self.max_size:
                deadline = loop.time() + self.max_delay
                while queue.images < self.max_size and (left := deadline - loop.time()) > 0:
                    queue.arrived.clear()
                    try:
                        await asyncio.wait_for(queue.arrived.wait(), left)
                    except TimeoutError:
                        break
            taken = self._take(queue)
            if taken:
                await self._run_batch(queue.model, taken)

    def _take(self, queue: _ModelQueue) -> list[_Waiting]:
        """Whole requests from the front, up to `max_size` images (always at least one request)."""
        taken: list[_Waiting] = []
        count = 0
        while queue.waiting and (not taken or count + len(queue.waiting[0].images) <= self.max_size):
            waiting = queue.waiting.popleft()
            queue.images -= len(waiting.images)
            if waiting.future.done():  # the client went away while it waited
                continue
            taken.append(waiting)
            count += len(waiting.images)
        return taken

    async def _run_batch(self, model: ServedModel, taken: list[_Waiting]) -> None:
        batch = taken[0].images if len(taken) == 1 else np.concatenate([w.images for w in taken])
        self.batch_sizes.append(len(batch))
        del self.batch_sizes[:-10_000]
        try:
            probabilities = await self._run(model, batch)
        except Exception as exc:  # every request of the batch gets the error (a ServiceError keeps its status)
            for waiting in taken:
                if not waiting.future.done():
                    waiting.future.set_exception(exc)
            return
        start = 0
        for waiting in taken:
            end = start + len(waiting.images)
            if not waiting.future.done():
                waiting.future.set_result(probabilities[start:end])
            start = end
