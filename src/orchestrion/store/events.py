"""The event log: per-task monotonic sequence numbers, written in the same transaction as the change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, bindparam, func, insert, select, true, update

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
# RETURNING in parameter order gives each event its global id (SQLAlchemy's "insertmanyvalues"; on
# SQLite one statement per row, a few microseconds more per event than a plain executemany).
_INSERT = insert(EVENTS).returning(EVENTS.c.id, sort_by_parameter_order=True)
_COLUMNS: list[Any] = [
    EVENTS.c.id,
    EVENTS.c.task_id,
    EVENTS.c.seq,
    EVENTS.c.type,
    EVENTS.c.data,
    EVENTS.c.created_at,
]
_READ = (
    select(*_COLUMNS)
    .where(EVENTS.c.task_id == bindparam("k_task"), EVENTS.c.seq > bindparam("k_after"))
    .order_by(EVENTS.c.seq)
    .limit(bindparam("k_limit"))
)
# Events after a global id, optionally of one task and/or of one owner's tasks, in id order.
_READ_AFTER_ID = {
    (by_task, by_owner): (
        select(*_COLUMNS)
        .select_from(EVENTS.join(TASKS, TASKS.c.id == EVENTS.c.task_id) if by_owner else EVENTS)
        .where(
            EVENTS.c.id > bindparam("k_after"),
            EVENTS.c.task_id == bindparam("k_task") if by_task else true(),
            TASKS.c.owner_id == bindparam("k_owner") if by_owner else true(),
        )
        .order_by(EVENTS.c.id)
        .limit(bindparam("k_limit"))
    )
    for by_task in (False, True)
    for by_owner in (False, True)
}
_LAST_ID = select(func.coalesce(func.max(EVENTS.c.id), 0))
_TASK_SEQ = {
    at: select(func.coalesce(func.max(EVENTS.c.seq), 0)).where(
        EVENTS.c.task_id == bindparam("k_task"), EVENTS.c.id <= bindparam("k_at") if at else true()
    )
    for at in (False, True)
}
_OWNERS = select(TASKS.c.id, TASKS.c.owner_id).where(TASKS.c.id.in_(bindparam("k_ids", expanding=True)))


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
        rows = [
            {"task_id": task_id, "seq": first + i, "type": kind, "data": data, "created_at": now}
            for i, (kind, data) in enumerate(items)
        ]
        ids = tx.conn.execute(_INSERT, rows).scalars().all()
        tx.events.extend(
            Event(id=i, task_id=task_id, seq=r["seq"], type=r["type"], data=r["data"], created_at=now)
            for r, i in zip(rows, ids, strict=True)
        )
    tx.pending_events.clear()


def read_events(conn: Connection, task_id: str, *, after: int = 0, limit: int = 1000) -> list[Event]:
    """Events of a task with seq > `after`, oldest first."""
    rows = conn.execute(_READ, {"k_task": task_id, "k_after": after, "k_limit": limit})
    return [_event(r) for r in rows]


def read_events_after_id(
    conn: Connection,
    *,
    after_id: int,
    task_id: str | None = None,
    owner_id: str | None = None,
    limit: int = 1000,
) -> list[Event]:
    """Events with a global id > `after_id`, oldest first; of one task and/or one owner's tasks."""
    params: dict[str, Any] = {"k_after": after_id, "k_limit": limit}
    if task_id is not None:
        params["k_task"] = task_id
    if owner_id is not None:
        params["k_owner"] = owner_id
    rows = conn.execute(_READ_AFTER_ID[(task_id is not None, owner_id is not None)], params)
    return [_event(r) for r in rows]


def read_last_event_id(conn: Connection) -> int:
    """The highest global event id (0 when the log is empty)."""
    return int(conn.execute(_LAST_ID).scalar_one())


def read_task_seq(conn: Connection, task_id: str, *, at_id: int | None = None) -> int:
    """The task's last event seq (0 without events); with `at_id`, the last among events with id <= it."""
    params: dict[str, Any] = {"k_task": task_id}
    if at_id is not None:
        params["k_at"] = at_id
    return int(conn.execute(_TASK_SEQ[at_id is not None], params).scalar_one())


def read_task_owners(conn: Connection, task_ids: Sequence[str]) -> dict[str, str]:
    """The owner of each of these tasks that exists (to route their events to the right users)."""
    if not task_ids:
        return {}
    return {r.id: r.owner_id for r in conn.execute(_OWNERS, {"k_ids": list(task_ids)})}


def _event(row: Row[Any]) -> Event:
    return Event(
        id=row.id, task_id=row.task_id, seq=row.seq, type=row.type, data=row.data, created_at=row.created_at
    )
