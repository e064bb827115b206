"""Concurrent requests gathered into one model call, run off the event loop.

Each request puts its files on a queue and awaits its own results. One loop takes the first job,
gathers more until it holds `max_images` images or `wait_s` has passed, and hands them to the
model thread as one call (per decision rule: requests with another threshold get their own call).
It waits only while other uploads are still arriving (`receiving`): a lone request goes straight
to the model. While the model works, new requests queue up and make the next batch, so under load
batches grow by themselves. With batching off every
request is one model call, in arrival order.
"""
import asyncio
import concurrent.futures
import contextlib
import itertools
from dataclasses import dataclass
from typing import Callable, Dict, Hashable, List, Sequence

from .uploads import RequestError


@dataclass
class Job:
    sources: Sequence[bytes]
    names: Sequence[str]
    decision: Hashable                  # what model_call needs besides the files (threshold, band)
    future: asyncio.Future


def split(results: Sequence, jobs: Sequence[Job]) -> List[List]:
    """One model call's results, in job order, back into one list per job."""
    bounds = list(itertools.accumulate(len(job.sources) for job in jobs))
    return [list(results[start:stop]) for start, stop in zip([0] + bounds, bounds)]


def by_decision(jobs: Sequence[Job]) -> Dict[Hashable, List[Job]]:
    groups: Dict[Hashable, List[Job]] = {}
    for job in jobs:
        groups.setdefault(job.decision, []).append(job)
    return groups


class Batcher:
    def __init__(self, model_call: Callable[[List[bytes], List[str], Hashable], Sequence],
                 executor: concurrent.futures.Executor, max_images: int, wait_s: float, enabled: bool,
                 max_queued_images: int, on_batch: Callable[[int], None] = lambda size: None):
        self.model_call, self.executor = model_call, executor
        self.max_images = max_images if enabled else 1      # 1: the first job fills the batch alone
        self.wait_s, self.max_queued_images, self.on_batch = wait_s, max_queued_images, on_batch
        self.queue: asyncio.Queue = asyncio.Queue()
        self.queued_images = 0
        self.arriving = 0                   # requests still reading their upload

    @contextlib.contextmanager
    def receiving(self):
        """Around reading a request's upload: the next batch may wait for it."""
        self.arriving += 1
        try:
            yield
        finally:
            self.arriving -= 1

    async def classify(self, sources: Sequence[bytes], names: Sequence[str], decision: Hashable) -> List:
        """The model's results for these files, in their order."""
        if self.queued_images + len(sources) > self.max_queued_images:     # memory stays bounded
            raise RequestError(503, "busy", f"more than {self.max_queued_images} images are waiting; retry later")
        job = Job(sources, names, decision, asyncio.get_running_loop().create_future())
        self.queued_images += len(sources)
        await self.queue.put(job)
        return await job.future

    async def _gather(self) -> List[Job]:
        jobs = [await self.queue.get()]
        count = len(jobs[0].sources)
        deadline = asyncio.get_running_loop().time() + self.wait_s
        while count < self.max_images and (self.arriving or not self.queue.empty()):
            try:
                job = self.queue.get_nowait() if not self.queue.empty() else await asyncio.wait_for(
                    self.queue.get(), deadline - asyncio.get_running_loop().time())
            except asyncio.TimeoutError:
                break
            jobs.append(job)
            count += len(job.sources)
        return jobs

    async def run(self) -> None:
        """Serve the queue until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._gather()
            self.queued_images -= sum(len(job.sources) for job in jobs)
            for decision, group in by_decision(jobs).items():
                sources = [source for job in group for source in job.sources]
                names = [name for job in group for name in job.names]
                self.on_batch(len(sources))
                try:
                    results = await loop.run_in_executor(self.executor, self.model_call, sources, names, decision)
                except Exception as error:              # a bug: those requests fail, the service goes on
                    for job in group:
                        if not job.future.done():
                            job.future.set_exception(error)
                    continue
                for job, answer in zip(group, split(results, group)):
                    if not job.future.done():           # its client may have gone
                        job.future.set_result(answer)
