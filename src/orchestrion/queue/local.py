"""In-process worker pool with store leases, heartbeats and a sweeper."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Mapping

from orchestrion.queue.base import ClaimHook, Job, JobHandler, JobQueue
from orchestrion.queue.scheduler import PriorityScheduler, Waiting
from orchestrion.store import tasks as task_store
from orchestrion.store.database import Database, WriteTx

logger = logging.getLogger(__name__)


class LocalJobQueue(JobQueue):
    """Runs tasks in this process with `concurrency` workers.

    A worker claims a run with a lease in the store and renews it every third of the lease. The sweeper
    finds runs left queued, or running under an expired lease (their process died), and queues them
    here again, so a restart resumes everything that was in flight.

    Waiting runs are taken by priority, then age, with aging against starvation (`PriorityScheduler`);
    a run starts only while its engine has fewer than `engine_limits[engine]` runs executing here, so
    one engine's backlog never takes every worker.
    """

    def __init__(
        self,
        db: Database,
        *,
        worker_id: str,
        concurrency: int = 4,
        lease_seconds: float = 30.0,
        sweep_interval: float = 5.0,
        engine_limits: Mapping[str, int] | None = None,
        aging_seconds: float = 30.0,
    ) -> None:
        self._db = db
        self.worker_id = worker_id
        self._concurrency = concurrency
        self._lease = lease_seconds
        self._sweep_interval = sweep_interval
        self._scheduler = PriorityScheduler(aging_seconds=aging_seconds)
        self._ready = asyncio.Condition()
        self._limits = dict(engine_limits or {})
        self._engine_of: dict[str, str] = {}  # running task id -> engine
        self._jobs: dict[str, Job] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._handler: JobHandler | None = None
        self._on_claim: ClaimHook | None = None

    async def enqueue(
        self, task_id: str, *, priority: int = 5, engine: str = "team", queued_at: float | None = None
    ) -> None:
        if task_id in self._jobs:
            return
        when = time.time() if queued_at is None else queued_at
        if self._scheduler.push(task_id, priority=priority, engine=engine, queued_at=when):
            async with self._ready:
                self._ready.notify()

    def can_start(self, engine: str) -> bool:
        """Whether `engine` has a free slot here."""
        limit = self._limits.get(engine)
        return limit is None or self.running_by_engine().get(engine, 0) < limit

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
        return len(self._scheduler)

    def running(self) -> int:
        return len(self._jobs)

    def depth_by_engine(self) -> Mapping[str, int]:
        return self._scheduler.depth_by_engine()

    def running_by_engine(self) -> Mapping[str, int]:
        return Counter(self._engine_of.values())

    def oldest_wait(self, now: float) -> float:
        """Seconds the longest-waiting run here has waited."""
        return self._scheduler.oldest_wait(now)

    async def _sweep(self) -> None:
        now = time.time()
        runs = await self._db.read(lambda conn: task_store.find_resumable(conn, now=now))
        for run in runs:
            await self.enqueue(run.task_id, priority=run.priority, engine=run.engine, queued_at=run.queued_at)

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                await self._sweep()
            except Exception:
                logger.exception("sweep failed")

    async def _next(self) -> Waiting:
        async with self._ready:
            while True:
                run = self._scheduler.pop(time.time(), self.can_start)
                if run is not None:
                    self._engine_of[run.task_id] = run.engine
                    return run
                await self._ready.wait()

    async def _work(self) -> None:
        while True:
            run = await self._next()
            try:
                await self._run_one(run.task_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("run failed outside its handler", extra={"task_id": run.task_id})
            finally:
                self._engine_of.pop(run.task_id, None)
                async with self._ready:
                    self._ready.notify_all()  # a slot of its engine is free again

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
