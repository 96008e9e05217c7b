"""The event log: per-task monotonic sequence numbers, written in the same transaction as the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrion.domain.events import Event
from orchestrion.domain.tasks import utcnow
from orchestrion.store.database import WriteTx
from orchestrion.store.models import EventRow, TaskRow


async def append_event(tx: WriteTx, task_id: str, type_: str, data: dict[str, Any] | None = None) -> Event:
    """Allocate the task's next sequence number and record the event; published after commit."""
    seq = (
        await tx.session.execute(
            update(TaskRow)
            .where(TaskRow.id == task_id)
            .values(event_seq=TaskRow.event_seq + 1)
            .returning(TaskRow.event_seq)
        )
    ).scalar_one()
    event = Event(task_id=task_id, seq=seq, type=str(type_), data=dict(data or {}), created_at=utcnow())
    tx.session.add(
        EventRow(task_id=task_id, seq=seq, type=event.type, data=event.data, created_at=event.created_at)
    )
    tx.events.append(event)
    return event


async def read_events(
    session: AsyncSession, task_id: str, *, after: int = 0, limit: int = 1000
) -> list[Event]:
    """Events of a task with seq > `after`, oldest first."""
    rows = (
        await session.execute(
            select(EventRow)
            .where(EventRow.task_id == task_id, EventRow.seq > after)
            .order_by(EventRow.seq)
            .limit(limit)
        )
    ).scalars()
    return [
        Event(task_id=r.task_id, seq=r.seq, type=r.type, data=r.data, created_at=r.created_at) for r in rows
    ]
