"""A task's outcome: its final status from its steps' states, and the transaction that writes it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from orchestrion.domain.events import EventType
from orchestrion.domain.tasks import StepStatus, Task, TaskStatus, utcnow
from orchestrion.store import tasks as task_store
from orchestrion.store.database import WriteTx
from orchestrion.store.events import append_event


def write_outcome(task: Task, status: TaskStatus, error: str | None, worker_id: str, tx: WriteTx) -> None:
    """The final status, its event and the release of the lease, in the caller's transaction.

    Applies only while the task is running under this worker's lease, so an outcome is written once:
    not twice when a deadline fires as the engine's last round commits, and never by a worker that
    lost its lease to another.
    """
    finished = utcnow()
    started = task.started_at or finished
    kind = {
        TaskStatus.CANCELLED: EventType.TASK_CANCELLED,
        TaskStatus.FAILED: EventType.TASK_FAILED,
    }.get(status, EventType.TASK_COMPLETED)
    if not task_store.transition_task(
        tx,
        task.id,
        from_status=TaskStatus.RUNNING,
        expect_owner=worker_id,
        status=status,
        finished_at=finished,
        error=error,
        lease_owner=None,
        lease_expires_at=None,
    ):
        return
    if status is not TaskStatus.SUCCEEDED:
        task_store.cancel_unfinished_steps(tx, task.id)
    duration = round((finished - started).total_seconds(), 4)
    append_event(tx, task.id, kind, {"status": status.value, "error": error, "duration_seconds": duration})


def queue_wait(task: Task, *, claimed_at: datetime) -> float | None:
    """Seconds a claimed run waited for a worker since it was queued; None when that is unknown."""
    if task.queued_at is None:
        return None
    if task.attempt > 1 and task.started_at is not None and task.queued_at < task.started_at:
        # Queued before its first start yet claimed again: the sweeper resumed it after its worker died,
        # and it was running, not waiting, for most of the time since it was queued.
        return None
    return max(0.0, (claimed_at - task.queued_at).total_seconds())


def final_status(task: Task, states: Mapping[str, StepStatus]) -> tuple[TaskStatus, str | None]:
    """From the final step states: the last step writes the report; the others do the work."""
    assert task.plan is not None
    reporter = task.plan.steps[-1].id
    workers = [s.id for s in task.plan.steps if s.id != reporter]
    failed = [s for s in workers if states.get(s) is not StepStatus.SUCCEEDED]
    if states.get(reporter) is not StepStatus.SUCCEEDED:
        return TaskStatus.FAILED, "the report could not be produced"
    if len(failed) == len(workers):
        return TaskStatus.FAILED, f"every step failed: {listed(failed)}"
    if failed:
        return TaskStatus.PARTIAL, f"{len(failed)} of {len(workers)} steps failed: {listed(failed)}"
    return TaskStatus.SUCCEEDED, None


def listed(step_ids: Sequence[str], shown: int = 20) -> str:
    """Step ids, the first `shown` of them, then how many more (the result lists them all)."""
    text = ", ".join(step_ids[:shown])
    return text if len(step_ids) <= shown else f"{text} and {len(step_ids) - shown} more"
