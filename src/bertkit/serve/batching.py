"""Dynamic batching: concurrent requests of one input kind are run together in one forward pass."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import time

from .schema import RequestError

log = logging.getLogger("bertkit.serve")


@dataclasses.dataclass
class _Job:
    kind: str
    items: list
    future: asyncio.Future


class DynamicBatcher:
    """Collects concurrent requests into batches and runs `run(kind, items) -> results` on one
    worker thread. `submit` returns this request's results, in order."""

    def __init__(self, run, max_batch_size: int = 32, max_wait_ms: float = 5.0, max_queue_items: int = 4096):
        self.run, self.max_batch_size, self.max_wait_s = run, max(1, max_batch_size), max_wait_ms / 1000
        self.max_queue_items = max_queue_items
        self.stats = {"requests": 0, "items": 0, "batches": 0, "largest_batch": 0, "model_seconds": 0.0}
        self._queued_items = 0

    async def start(self) -> None:
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bertkit-model")
        self._worker = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._executor.shutdown(wait=True)

    async def submit(self, kind: str, items: list) -> list:
        if self._queued_items + len(items) > self.max_queue_items:
            raise RequestError(503, "the server is overloaded; retry later")
        job = _Job(kind, items, asyncio.get_running_loop().create_future())
        self._queued_items += len(items)
        self._queue.put_nowait(job)
        return await job.future

    async def _loop(self) -> None:
        carry = None
        while True:
            first = carry or await self._queue.get()
            jobs, carry = await self._collect(first)
            await self._run(first.kind, jobs)

    async def _collect(self, first: _Job):
        """`first` plus queued jobs of its kind, up to max_batch_size items or max_wait.
        Returns (jobs, a job that did not fit, or None)."""
        loop = asyncio.get_running_loop()
        jobs, n, deadline = [first], len(first.items), loop.time() + self.max_wait_s
        while n < self.max_batch_size:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            if job.kind != first.kind or n + len(job.items) > self.max_batch_size:
                return jobs, job
            jobs.append(job)
            n += len(job.items)
        return jobs, None

    async def _run(self, kind: str, jobs: list[_Job]) -> None:
        items = [item for job in jobs for item in job.items]
        start = time.perf_counter()
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._executor, self.run, kind, items)
        except Exception as e:  # the model failed: fail these requests, keep serving
            log.exception("batch of %d items failed", len(items))
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(RequestError(500, f"prediction failed: {type(e).__name__}: {e}"))
            return
        finally:
            self._queued_items -= len(items)
        self.stats["requests"] += len(jobs)
        self.stats["items"] += len(items)
        self.stats["batches"] += 1
        self.stats["largest_batch"] = max(self.stats["largest_batch"], len(items))
        self.stats["model_seconds"] += time.perf_counter() - start
        offset = 0
        for job in jobs:
            if not job.future.done():  # done = the client went away
                job.future.set_result(results[offset: offset + len(job.items)])
            offset += len(job.items)
