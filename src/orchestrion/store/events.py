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


def append_events(tx: WriteTx, task_id: str, items: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Record events for a task in this transaction; published after it commits.

    Events are written when the unit returns: per task, one counter update and one batched insert
    for all the events the unit recorded, in the order it recorded them.
    """
    if not items:
        return
    if not tx.pending_events:
        tx.before_commit(_flush)
    tx.pending_events.setdefault(task_id, []).extend((str(kind), dict(data)) for kind, data in items)


def append_event(tx: WriteTx, task_id: str, type_: str, data: dict[str, Any] | None = None) -> None:
    """Record one event (see `append_events`)."""
    append_events(tx, task_id, [(type_, data or {})])


def _flush(tx: WriteTx) -> None:
    now = utcnow()
    for task_id, items in tx.pending_events.items():
        last = tx.conn.execute(_BUMP, {"k_id": task_id, "v_count": len(items)}).scalar_one()
        first = last - len(items) + 1
        events = [
            Event(task_id=task_id, seq=first + i, type=kind, data=data, created_at=now)
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
    tx.pending_events.clear()


def read_events(conn: Connection, task_id: str, *, after: int = 0, limit: int = 1000) -> list[Event]:
    """Events of a task with seq > `after`, oldest first."""
    rows = conn.execute(_READ, {"k_task": task_id, "k_after": after, "k_limit": limit})
    return [
        Event(task_id=r.task_id, seq=r.seq, type=r.type, data=r.data, created_at=r.created_at) for r in rows
    ]
