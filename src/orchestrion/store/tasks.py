"""Task, plan and step persistence, leases included."""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from orchestrion.domain.tasks import Plan, Prediction, Step, StepStatus, Task, TaskStatus
from orchestrion.exceptions import ValidationError
from orchestrion.store.database import WriteTx
from orchestrion.store.models import StepRow, TaskRow


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """Serialise a plan's structure (statuses live in the steps table)."""
    return {
        "steps": [
            {
                "id": s.id,
                "agent_id": s.agent_id,
                "depends_on": list(s.depends_on),
                "trigger": s.trigger,
                "timeout_seconds": s.timeout_seconds,
                "max_retries": s.max_retries,
            }
            for s in plan.steps
        ],
        "reasons": list(plan.reasons),
    }


def _plan_from_json(data: dict[str, Any] | None, rows: list[StepRow] | None) -> Plan | None:
    if not data:
        return None
    states = {r.step_id: r for r in rows or []}
    steps = []
    for s in data["steps"]:
        row = states.get(s["id"])
        steps.append(
            Step(
                id=s["id"],
                agent_id=s["agent_id"],
                depends_on=tuple(s["depends_on"]),
                trigger=s.get("trigger", "all_succeeded"),
                timeout_seconds=s["timeout_seconds"],
                max_retries=s["max_retries"],
                status=StepStatus(row.status) if row else StepStatus.PENDING,
                attempts=row.attempts if row else 0,
                error=row.error if row else None,
            )
        )
    return Plan(steps=tuple(steps), reasons=tuple(data.get("reasons", ())))


def _task_from_row(row: TaskRow, steps: list[StepRow] | None = None, *, with_inputs: bool = False) -> Task:
    return Task(
        id=row.id,
        owner_id=row.owner_id,
        title=row.title,
        task_type=row.task_type,
        target=row.target,
        inputs=row.inputs if with_inputs else {},
        priority=row.priority,
        agents=tuple(row.agents),
        status=TaskStatus(row.status),
        budget=row.budget,
        deadline_seconds=row.deadline_seconds,
        plan=_plan_from_json(row.plan, steps),
        prediction=Prediction(**row.prediction) if row.prediction else None,
        error=row.error,
        attempt=row.attempt,
        created_at=row.created_at,
        queued_at=row.queued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


async def insert_task(tx: WriteTx, task: Task) -> None:
    """Persist a new task with its plan and one row per step."""
    tx.session.add(
        TaskRow(
            id=task.id,
            owner_id=task.owner_id,
            title=task.title,
            task_type=task.task_type,
            target=task.target,
            inputs=task.inputs,
            priority=task.priority,
            agents=list(task.agents),
            status=task.status.value,
            budget=task.budget,
            deadline_seconds=task.deadline_seconds,
            plan=plan_to_json(task.plan) if task.plan else None,
            prediction=asdict(task.prediction) if task.prediction else None,
            attempt=0,
            event_seq=0,
            created_at=task.created_at,
            queued_at=task.queued_at,
        )
    )
    await tx.session.flush()
    if task.plan:
        for position, step in enumerate(task.plan.steps):
            tx.session.add(
                StepRow(
                    task_id=task.id,
                    step_id=step.id,
                    position=position,
                    agent_id=step.agent_id,
                    depends_on=list(step.depends_on),
                    status=StepStatus.PENDING.value,
                    attempts=0,
                )
            )


async def get_task(
    session: AsyncSession, task_id: str, *, owner_id: str | None = None, with_inputs: bool = False
) -> Task | None:
    """A task by id; with `owner_id`, only if that user owns it."""
    query = select(TaskRow).where(TaskRow.id == task_id)
    if owner_id is not None:
        query = query.where(TaskRow.owner_id == owner_id)
    if with_inputs:
        query = query.options(undefer(TaskRow.inputs))
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        return None
    return _task_from_row(row, await _step_rows(session, task_id), with_inputs=with_inputs)


async def _step_rows(session: AsyncSession, task_id: str) -> list[StepRow]:
    query = select(StepRow).where(StepRow.task_id == task_id).order_by(StepRow.position)
    return list((await session.execute(query)).scalars())


def encode_cursor(created_at: datetime, task_id: str) -> str:
    """Opaque keyset cursor for task listings."""
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{task_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of `encode_cursor`; ValidationError on garbage."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        stamp, task_id = text.split("|", 1)
        return datetime.fromisoformat(stamp), task_id
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("cursor is not one this server issued", field="cursor") from exc


async def list_tasks(
    session: AsyncSession,
    *,
    owner_id: str | None,
    status: str | None = None,
    task_type: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Task], str | None]:
    """Newest first, keyset-paginated; returns the page and the next cursor (None at the end)."""
    query = select(TaskRow)
    if owner_id is not None:
        query = query.where(TaskRow.owner_id == owner_id)
    if status is not None:
        query = query.where(TaskRow.status == status)
    if task_type is not None:
        query = query.where(TaskRow.task_type == task_type)
    if cursor:
        created, last_id = decode_cursor(cursor)
        query = query.where(
            or_(TaskRow.created_at < created, and_(TaskRow.created_at == created, TaskRow.id < last_id))
        )
    query = query.order_by(TaskRow.created_at.desc(), TaskRow.id.desc()).limit(limit + 1)
    rows = list((await session.execute(query)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    tasks = [_task_from_row(r) for r in rows]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
    return tasks, next_cursor


async def set_task_fields(tx: WriteTx, task_id: str, **fields: Any) -> None:
    """Update columns of one task."""
    if "status" in fields and isinstance(fields["status"], TaskStatus):
        fields["status"] = fields["status"].value
    await tx.session.execute(update(TaskRow).where(TaskRow.id == task_id).values(**fields))


async def set_step_fields(tx: WriteTx, task_id: str, step_id: str, **fields: Any) -> None:
    """Update columns of one step."""
    if "status" in fields and isinstance(fields["status"], StepStatus):
        fields["status"] = fields["status"].value
    await tx.session.execute(
        update(StepRow).where(StepRow.task_id == task_id, StepRow.step_id == step_id).values(**fields)
    )


async def reset_unfinished_steps(tx: WriteTx, task_id: str) -> None:
    """Put failed, cancelled, skipped and interrupted steps back to pending (retry resumes the rest)."""
    await tx.session.execute(
        update(StepRow)
        .where(StepRow.task_id == task_id, StepRow.status != StepStatus.SUCCEEDED.value)
        .values(status=StepStatus.PENDING.value, error=None)
    )


async def claim_task(tx: WriteTx, task_id: str, *, worker_id: str, lease_seconds: float, now: float) -> bool:
    """Take the run's lease if it is queued, or running under an expired lease."""
    result = await tx.session.execute(
        update(TaskRow)
        .where(
            TaskRow.id == task_id,
            or_(
                TaskRow.status == TaskStatus.QUEUED.value,
                and_(TaskRow.status == TaskStatus.RUNNING.value, TaskRow.lease_expires_at < now),
            ),
        )
        .values(
            status=TaskStatus.RUNNING.value,
            lease_owner=worker_id,
            lease_expires_at=now + lease_seconds,
            attempt=TaskRow.attempt + 1,
        )
        .returning(TaskRow.id)
    )
    return result.scalar_one_or_none() is not None


async def renew_lease(
    tx: WriteTx, task_id: str, *, worker_id: str, lease_seconds: float, now: float
) -> tuple[bool, bool]:
    """Extend the lease; returns (still held, cancel requested)."""
    result = await tx.session.execute(
        update(TaskRow)
        .where(
            TaskRow.id == task_id,
            TaskRow.lease_owner == worker_id,
            TaskRow.status == TaskStatus.RUNNING.value,
        )
        .values(lease_expires_at=now + lease_seconds)
        .returning(TaskRow.cancel_requested)
    )
    value = result.scalar_one_or_none()
    return value is not None, bool(value)


async def release_leases(tx: WriteTx, task_ids: list[str], *, worker_id: str) -> None:
    """Expire this worker's leases on `task_ids` so that any worker may resume them now."""
    await tx.session.execute(
        update(TaskRow)
        .where(
            TaskRow.id.in_(task_ids),
            TaskRow.lease_owner == worker_id,
            TaskRow.status == TaskStatus.RUNNING.value,
        )
        .values(lease_expires_at=0.0)
    )


async def find_resumable(session: AsyncSession, *, now: float, limit: int = 500) -> list[str]:
    """Ids of runs waiting for a worker: queued, or running under an expired lease (a dead worker)."""
    query = (
        select(TaskRow.id)
        .where(
            or_(
                TaskRow.status == TaskStatus.QUEUED.value,
                and_(TaskRow.status == TaskStatus.RUNNING.value, TaskRow.lease_expires_at < now),
            )
        )
        .order_by(TaskRow.priority.desc(), TaskRow.created_at)
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def count_by_status(session: AsyncSession) -> dict[str, int]:
    """Number of tasks in each status."""
    rows = await session.execute(select(TaskRow.status, func.count()).group_by(TaskRow.status))
    return {str(status): int(count) for status, count in rows.all()}


async def recent_outcomes(
    session: AsyncSession, task_type: str, *, limit: int = 200
) -> list[tuple[str, float | None]]:
    """(status, duration seconds) of the latest finished tasks of a type, for the prior."""
    query = (
        select(TaskRow.status, TaskRow.started_at, TaskRow.finished_at)
        .where(TaskRow.task_type == task_type, TaskRow.finished_at.is_not(None))
        .order_by(TaskRow.finished_at.desc())
        .limit(limit)
    )
    out: list[tuple[str, float | None]] = []
    for status, started, finished in (await session.execute(query)).all():
        duration = (finished - started).total_seconds() if started and finished else None
        out.append((status, duration))
    return out
