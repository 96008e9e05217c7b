"""In-process worker pool with store leases, heartbeats and a sweeper."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time

from orchestrion.queue.base import ClaimHook, Job, JobHandler, JobQueue
from orchestrion.store import tasks as task_store
from orchestrion.store.database import Database, WriteTx

logger = logging.getLogger(__name__)


class LocalJobQueue(JobQueue):
    """Runs tasks in this process with `concurrency` workers.

    A worker claims a run with a lease in the store and renews it every third of the lease. The sweeper
    finds runs left queued, or running under an expired lease (their process died), and queues them
    here again, so a restart resumes everything that was in flight.
    """

    def __init__(
        self,
        db: Database,
        *,
        worker_id: str,
        concurrency: int = 4,
        lease_seconds: float = 30.0,
        sweep_interval: float = 5.0,
    ) -> None:
        self._db = db
        self.worker_id = worker_id
        self._concurrency = concurrency
        self._lease = lease_seconds
        self._sweep_interval = sweep_interval
        self._queue: asyncio.PriorityQueue[tuple[int, int, str]] = asyncio.PriorityQueue()
        self._counter = itertools.count()
        self._waiting: set[str] = set()
        self._jobs: dict[str, Job] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._handler: JobHandler | None = None
        self._on_claim: ClaimHook | None = None

    async def enqueue(self, task_id: str, *, priority: int = 5) -> None:
        if task_id in self._waiting or task_id in self._jobs:
            return
        self._waiting.add(task_id)
        await self._queue.put((-priority, next(self._counter), task_id))

    async def start(self, handler: JobHandler, *, on_claim: ClaimHook | None = None) -> None:
        self._handler = handler
        self._on_claim = on_claim
        await self._sweep()
        self._tasks = [
            asyncio.create_task(self._work(), name=f"worker-{i}") for i in range(self._concurrency)
        ]
        self._tasks.append(asyncio.create_task(self._sweeper(), name="sweeper"))

    async def stop(self) -> None:
        in_flight = list(self._jobs)
        for task in self._tasks:
            task.cancel()
        # gather(return_exceptions=True) collects the workers' cancellations without swallowing a
        # cancellation of stop() itself (which `suppress(CancelledError)` around an await would do).
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if in_flight:
            # Hand the runs back at once: the next start (here or elsewhere) resumes them without
            # waiting for their leases to expire.
            await self._db.write(
                lambda tx: task_store.release_leases(tx, in_flight, worker_id=self.worker_id)
            )

    def request_cancel(self, task_id: str) -> bool:
        job = self._jobs.get(task_id)
        if job is None:
            return False
        job.cancel_requested.set()
        return True

    def depth(self) -> int:
        return len(self._waiting)

    def running(self) -> int:
        return len(self._jobs)

    async def _sweep(self) -> None:
        now = time.time()
        ids = await self._db.read(lambda conn: task_store.find_resumable(conn, now=now))
        for task_id in ids:
            await self.enqueue(task_id)

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                await self._sweep()
            except Exception:
                logger.exception("sweep failed")

    async def _work(self) -> None:
        while True:
            _, _, task_id = await self._queue.get()
            self._waiting.discard(task_id)
            try:
                await self._run_one(task_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("run failed outside its handler", extra={"task_id": task_id})

    async def _run_one(self, task_id: str) -> None:
        if self._handler is None:
            return
        job = Job(task_id=task_id, worker_id=self.worker_id)
        now = time.time()

        def claim(tx: WriteTx) -> bool:
            claimed = task_store.claim_task(
                tx, task_id, worker_id=self.worker_id, lease_seconds=self._lease, now=now
            )
            if claimed is not None and self._on_claim is not None:
                job.claimed = self._on_claim(tx, job, *claimed)
            return claimed is not None

        if not await self._db.write(claim):
            return
        self._jobs[task_id] = job
        heartbeat = asyncio.create_task(self._heartbeat(job), name=f"heartbeat-{task_id}")
        try:
            await self._handler(job)
        finally:
            self._jobs.pop(task_id, None)
            heartbeat.cancel()
            # Not `suppress(CancelledError)`: a stop arriving now must still end this worker.
            await asyncio.gather(heartbeat, return_exceptions=True)

    async def _heartbeat(self, job: Job) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            now = time.time()
            try:
                held, cancel = await self._db.write(
                    functools.partial(
                        task_store.renew_lease,
                        task_id=job.task_id,
                        worker_id=job.worker_id,
                        lease_seconds=self._lease,
                        now=now,
                    )
                )
            except Exception:
                logger.exception("heartbeat failed", extra={"task_id": job.task_id})
                continue
            if cancel:
                job.cancel_requested.set()
            if not held:
                job.lease_lost.set()
                return
