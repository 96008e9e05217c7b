"""The event log: per-task monotonic sequence numbers, written in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from orchestrion.domain.events import Event
from orchestrion.domain.tasks import utcnow
from orchestrion.store.database import WriteTx
from orchestrion.store.models import EventRow, TaskRow

TASKS = cast(Table, TaskRow.__table__)
EVENTS = cast(Table, EventRow.__table__)


_BUMP = (
    update(TASKS)
    .where(TASKS.c.id == bindparam("k_id"))
    .values(event_seq=TASKS.c.event_seq + bindparam("v_count"))
    .returning(TASKS.c.event_seq)
)
_INSERT = insert(EVENTS)
_READ = (
    select(EVENTS.c.task_id, EVENTS.c.seq, EVENTS.c.type, EVENTS.c.data, EVENTS.c.created_at)
    .where(EVENTS.c.task_id == bindparam("k_task"), EVENTS.c.seq > bindparam("k_after"))
    .order_by(EVENTS.c.seq)
    .limit(bindparam("k_limit"))
)


def append_events(tx: WriteTx, task_id: str, items: Sequence[tuple[str, dict[str, Any]]]) -> list[Event]:
    """Record events for one task: one counter update for all of them, one batched insert."""
    if not items:
        return []
    last = tx.conn.execute(_BUMP, {"k_id": task_id, "v_count": len(items)}).scalar_one()
    now = utcnow()
    first = last - len(items) + 1
    events = [
        Event(task_id=task_id, seq=first + i, type=str(kind), data=dict(data), created_at=now)
        for i, (kind, data) in enumerate(items)
    ]
    tx.conn.execute(
        _INSERT,
        [
            {"task_id": e.task_id, "seq": e.seq, "type": e.type, "data": e.data, "created_at": now}
            for e in events
        ],
    )
    tx.events.extend(events)
    return events


def append_event(tx: WriteTx, task_id: str, type_: str, data: dict[str, Any] | None = None) -> Event:
    """Record one event; published after the transaction commits."""
    return append_events(tx, task_id, [(type_, data or {})])[0]


def read_events(conn: Connection, task_id: str, *, after: int = 0, limit: int = 1000) -> list[Event]:
    """Events of a task with seq > `after`, oldest first."""
    rows = conn.execute(_READ, {"k_task": task_id, "k_after": after, "k_limit": limit})
    return [
        Event(task_id=r.task_id, seq=r.seq, type=r.type, data=r.data, created_at=r.created_at) for r in rows
    ]
