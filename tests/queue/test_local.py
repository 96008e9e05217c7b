"""The local job queue: claims, leases and a clean stop."""

from __future__ import annotations

import asyncio
import uuid

from orchestrion.domain.tasks import Plan, Step, Task, TaskStatus, utcnow
from orchestrion.queue.base import Job
from orchestrion.queue.local import LocalJobQueue
from orchestrion.store import tasks as task_store
from orchestrion.store import users as user_store
from orchestrion.store.database import Database


async def _queued_task(db: Database) -> str:
    user = await db.write(
        lambda tx: user_store.create_user(tx, name=f"u{uuid.uuid4().hex[:6]}", role="operator")
    )
    task = Task(
        id=str(uuid.uuid4()),
        owner_id=user.id,
        title="t",
        task_type="x",
        target=None,
        inputs={},
        priority=5,
        agents=("a",),
        status=TaskStatus.QUEUED,
        plan=Plan(steps=(Step(id="a", agent_id="a"),)),
        created_at=utcnow(),
    )
    await db.write(lambda tx: task_store.insert_task(tx, task))
    return task.id


async def test_stop_while_a_worker_is_leaving_is_not_swallowed(database: Database) -> None:
    queue = LocalJobQueue(database, worker_id="w1", concurrency=1, lease_seconds=30, sweep_interval=60)
    stopping: list[asyncio.Future[None]] = []
    handled: list[str] = []

    async def handler(job: Job) -> None:
        handled.append(job.task_id)
        await asyncio.sleep(0.05)  # the heartbeat is now running (asleep until its next beat)
        # Ask for the stop exactly while the worker cancels and awaits its heartbeat on the way out.
        asyncio.get_running_loop().call_soon(lambda: stopping.append(asyncio.ensure_future(queue.stop())))

    task_id = await _queued_task(database)
    await queue.start(handler)
    async with asyncio.timeout(5):
        while not stopping:
            await asyncio.sleep(0.01)
    # asyncio.wait neither cancels nor can be swallowed: it only reports whether stop() finished.
    done, _ = await asyncio.wait(stopping, timeout=5)
    assert done, "stop() hung: a worker swallowed its cancellation"
    assert handled == [task_id]


async def test_a_run_is_claimed_by_one_worker_only(database: Database) -> None:
    task_id = await _queued_task(database)
    seen: list[str] = []

    async def handler(job: Job) -> None:
        seen.append(job.worker_id)
        await asyncio.sleep(0.2)

    queues = [
        LocalJobQueue(database, worker_id=f"w{i}", concurrency=2, lease_seconds=30, sweep_interval=60)
        for i in range(3)
    ]
    for queue in queues:
        await queue.start(handler)
    for queue in queues:
        await queue.enqueue(task_id)
    await asyncio.sleep(0.5)
    for queue in queues:
        await queue.stop()
    assert len(seen) == 1
