"""Task, plan and step persistence, leases included."""

from __future__ import annotations

import base64
import binascii
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, and_, bindparam, func, insert, or_, select, true, update

from orchestrion.domain.intelligence import AgentScore, Selection
from orchestrion.domain.tasks import Plan, Prediction, Step, StepStatus, Task, TaskStatus
from orchestrion.exceptions import LeaseLostError, ValidationError
from orchestrion.store.database import WriteTx
from orchestrion.store.models import StepRow, TaskRow
from orchestrion.store.statements import update_params, update_statement

TASKS = cast(Table, TaskRow.__table__)
STEPS = cast(Table, StepRow.__table__)
_TASK_COLUMNS = [c for c in TASKS.c if c.name != "inputs"]

_INSERT_TASK = insert(TASKS)
_INSERT_STEPS = insert(STEPS)
_GET_TASK = {
    (with_inputs, owned): (
        select(*(TASKS.c if with_inputs else _TASK_COLUMNS))
        .where(TASKS.c.id == bindparam("k_id"))
        .where(TASKS.c.owner_id == bindparam("k_owner") if owned else true())
    )
    for with_inputs in (False, True)
    for owned in (False, True)
}
_GET_STEPS = select(STEPS).where(STEPS.c.task_id == bindparam("k_task")).order_by(STEPS.c.position)
_CLAIM = (
    update(TASKS)
    .where(
        TASKS.c.id == bindparam("k_id"),
        or_(
            TASKS.c.status == TaskStatus.QUEUED.value,
            and_(TASKS.c.status == TaskStatus.RUNNING.value, TASKS.c.lease_expires_at < bindparam("k_now")),
        ),
    )
    .values(
        status=TaskStatus.RUNNING.value,
        lease_owner=bindparam("v_owner"),
        lease_expires_at=bindparam("v_expires"),
        attempt=TASKS.c.attempt + 1,
    )
    .returning(TASKS.c.attempt, TASKS.c.started_at)
)
_RENEW = (
    update(TASKS)
    .where(
        TASKS.c.id == bindparam("k_id"),
        TASKS.c.lease_owner == bindparam("k_owner"),
        TASKS.c.status == TaskStatus.RUNNING.value,
    )
    .values(lease_expires_at=bindparam("v_expires"))
    .returning(TASKS.c.cancel_requested)
)
_LEASE = select(TASKS.c.status, TASKS.c.lease_owner).where(TASKS.c.id == bindparam("k_id")).with_for_update()
_UNFINISHED = [StepStatus.RUNNING.value, StepStatus.PENDING.value]
_CANCEL_STEPS = (
    update(STEPS)
    .where(STEPS.c.task_id == bindparam("k_task"), STEPS.c.status.in_(_UNFINISHED))
    .values(status=StepStatus.CANCELLED.value)
)


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
        "selection": asdict(plan.selection) if plan.selection else None,
    }


def _selection_from_json(data: dict[str, Any] | None) -> Selection | None:
    if not data:
        return None
    return Selection(
        strategy=data["strategy"],
        team=tuple(data["team"]),
        candidates=tuple(AgentScore(**c) for c in data.get("candidates", ())),
        required_capabilities=tuple(data.get("required_capabilities", ())),
        reasons=tuple(data.get("reasons", ())),
    )


def _plan_from_json(data: dict[str, Any] | None, rows: list[Row[Any]] | None) -> Plan | None:
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
    return Plan(
        steps=tuple(steps),
        reasons=tuple(data.get("reasons", ())),
        selection=_selection_from_json(data.get("selection")),
    )


def _task_from_row(row: Row[Any], steps: list[Row[Any]] | None = None, *, with_inputs: bool = False) -> Task:
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
        allow_active_scanning=bool(row.allow_active_scanning),
        engine=row.engine,
        plan=_plan_from_json(row.plan, steps),
        prediction=Prediction.from_json(row.prediction) if row.prediction else None,
        error=row.error,
        attempt=row.attempt,
        created_at=row.created_at,
        queued_at=row.queued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def insert_task(tx: WriteTx, task: Task) -> None:
    """Persist a new task with its plan and one row per step."""
    tx.conn.execute(
        _INSERT_TASK,
        {
            "id": task.id,
            "owner_id": task.owner_id,
            "title": task.title,
            "task_type": task.task_type,
            "target": task.target,
            "inputs": task.inputs,
            "priority": task.priority,
            "agents": list(task.agents),
            "status": task.status.value,
            "budget": task.budget,
            "deadline_seconds": task.deadline_seconds,
            "allow_active_scanning": task.allow_active_scanning,
            "engine": task.engine,
            "plan": plan_to_json(task.plan) if task.plan else None,
            "prediction": task.prediction.to_json() if task.prediction else None,
            "error": None,
            "attempt": 0,
            "event_seq": 0,
            "cancel_requested": False,
            "lease_owner": None,
            "lease_expires_at": None,
            "created_at": task.created_at,
            "queued_at": task.queued_at,
            "started_at": None,
            "finished_at": None,
        },
    )
    if task.plan:
        tx.conn.execute(
            _INSERT_STEPS,
            [
                {
                    "task_id": task.id,
                    "step_id": step.id,
                    "position": position,
                    "agent_id": step.agent_id,
                    "depends_on": list(step.depends_on),
                    "status": StepStatus.PENDING.value,
                    "attempts": 0,
                    "error": None,
                    "started_at": None,
                    "finished_at": None,
                }
                for position, step in enumerate(task.plan.steps)
            ],
        )


def get_task(
    conn: Connection, task_id: str, *, owner_id: str | None = None, with_inputs: bool = False
) -> Task | None:
    """A task by id; with `owner_id`, only if that user owns it."""
    params = {"k_id": task_id} if owner_id is None else {"k_id": task_id, "k_owner": owner_id}
    row = conn.execute(_GET_TASK[(with_inputs, owner_id is not None)], params).one_or_none()
    if row is None:
        return None
    return _task_from_row(row, _step_rows(conn, task_id), with_inputs=with_inputs)


def _step_rows(conn: Connection, task_id: str) -> list[Row[Any]]:
    return list(conn.execute(_GET_STEPS, {"k_task": task_id}))


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


def list_tasks(
    conn: Connection,
    *,
    owner_id: str | None,
    status: str | None = None,
    task_type: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Task], str | None]:
    """Newest first, keyset-paginated; returns the page and the next cursor (None at the end)."""
    query = select(*_TASK_COLUMNS)
    if owner_id is not None:
        query = query.where(TASKS.c.owner_id == owner_id)
    if status is not None:
        query = query.where(TASKS.c.status == status)
    if task_type is not None:
        query = query.where(TASKS.c.task_type == task_type)
    if cursor:
        created, last_id = decode_cursor(cursor)
        query = query.where(
            or_(TASKS.c.created_at < created, and_(TASKS.c.created_at == created, TASKS.c.id < last_id))
        )
    query = query.order_by(TASKS.c.created_at.desc(), TASKS.c.id.desc()).limit(limit + 1)
    rows = list(conn.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    steps: dict[str, list[Row[Any]]] = {r.id: [] for r in rows}
    if rows:
        for step in conn.execute(
            select(STEPS).where(STEPS.c.task_id.in_(list(steps))).order_by(STEPS.c.task_id, STEPS.c.position)
        ):
            steps[step.task_id].append(step)
    tasks = [_task_from_row(r, steps[r.id]) for r in rows]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
    return tasks, next_cursor


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.value if isinstance(v, TaskStatus | StepStatus) else v) for k, v in fields.items()}


def set_task_fields(tx: WriteTx, task_id: str, **fields: Any) -> None:
    """Update columns of one task."""
    values = _plain(fields)
    statement = update_statement(TASKS, ("id",), tuple(sorted(values)))
    tx.conn.execute(statement, update_params({"id": task_id}, values))


def set_step_fields(tx: WriteTx, task_id: str, step_id: str, **fields: Any) -> None:
    """Update columns of one step."""
    values = _plain(fields)
    statement = update_statement(STEPS, ("task_id", "step_id"), tuple(sorted(values)))
    tx.conn.execute(statement, update_params({"task_id": task_id, "step_id": step_id}, values))


def transition_task(
    tx: WriteTx, task_id: str, *, from_status: TaskStatus, expect_owner: str | None = None, **fields: Any
) -> bool:
    """Update a task only if it is still in `from_status` (and, given `expect_owner`, leased by it)."""
    values = _plain(fields)
    keys: dict[str, object] = {"id": task_id, "status": from_status.value}
    if expect_owner is not None:
        keys["lease_owner"] = expect_owner
    statement = update_statement(TASKS, tuple(keys), tuple(sorted(values))).returning(TASKS.c.id)
    return tx.conn.execute(statement, update_params(keys, values)).scalar_one_or_none() is not None


def cancel_unfinished_steps(tx: WriteTx, task_id: str) -> None:
    """Mark steps that never finished as cancelled (the task ended without them)."""
    tx.conn.execute(_CANCEL_STEPS, {"k_task": task_id})


def reset_unfinished_steps(tx: WriteTx, task_id: str, *, plan: Plan | None = None) -> list[str]:
    """Put failed, cancelled, skipped and interrupted steps back to pending (retry resumes the rest).

    With the task's `plan`, the steps downstream of those are reset too, even when they succeeded: a
    reporter (or reduce, or judge) must run again over the dependencies that are re-run. Returns the
    ids of the steps reset.
    """
    rows = tx.conn.execute(select(STEPS.c.step_id, STEPS.c.status).where(STEPS.c.task_id == task_id)).all()
    reset = {row.step_id for row in rows if row.status != StepStatus.SUCCEEDED.value}
    if plan is not None:
        grew = True
        while grew:
            downstream = {s.id for s in plan.steps if s.id not in reset and reset.intersection(s.depends_on)}
            grew = bool(downstream)
            reset |= downstream
    if reset:
        tx.conn.execute(
            update(STEPS)
            .where(STEPS.c.task_id == task_id, STEPS.c.step_id.in_(sorted(reset)))
            .values(status=StepStatus.PENDING.value, error=None)
        )
    return sorted(reset)


def check_lease(tx: WriteTx, task_id: str, worker_id: str) -> None:
    """Raise LeaseLostError unless `worker_id` still holds the lease of running task `task_id`.

    Inside a write transaction this fences the rest of it: on SQLite the transaction holds the write
    lock (BEGIN IMMEDIATE); on PostgreSQL the row is locked (FOR UPDATE) until commit.
    """
    row = tx.conn.execute(_LEASE, {"k_id": task_id}).one_or_none()
    if row is None or row.status != TaskStatus.RUNNING.value or row.lease_owner != worker_id:
        raise LeaseLostError(f"worker {worker_id} no longer holds the lease of task {task_id}")


def claim_task(
    tx: WriteTx, task_id: str, *, worker_id: str, lease_seconds: float, now: float
) -> tuple[int, datetime | None] | None:
    """Take the run's lease if it is queued, or running under an expired lease.

    Returns the run's attempt number and when it first started, or None when it was not claimable.
    """
    params = {"k_id": task_id, "k_now": now, "v_owner": worker_id, "v_expires": now + lease_seconds}
    row = tx.conn.execute(_CLAIM, params).one_or_none()
    return (int(row.attempt), row.started_at) if row is not None else None


def renew_lease(
    tx: WriteTx, task_id: str, *, worker_id: str, lease_seconds: float, now: float
) -> tuple[bool, bool]:
    """Extend the lease; returns (still held, cancel requested)."""
    params = {"k_id": task_id, "k_owner": worker_id, "v_expires": now + lease_seconds}
    value = tx.conn.execute(_RENEW, params).scalar_one_or_none()
    return value is not None, bool(value)


def release_leases(tx: WriteTx, task_ids: list[str], *, worker_id: str) -> None:
    """Expire this worker's leases on `task_ids` so that any worker may resume them now."""
    tx.conn.execute(
        update(TaskRow)
        .where(
            TaskRow.id.in_(task_ids),
            TaskRow.lease_owner == worker_id,
            TaskRow.status == TaskStatus.RUNNING.value,
        )
        .values(lease_expires_at=0.0)
    )


@dataclass(frozen=True, kw_only=True)
class Resumable:
    """A run waiting for a worker, with what the scheduler orders it by."""

    task_id: str
    priority: int
    engine: str
    queued_at: float


def find_resumable(conn: Connection, *, now: float, limit: int = 500) -> list[Resumable]:
    """Runs waiting for a worker: queued, or running under an expired lease (a dead worker)."""
    query = (
        select(TaskRow.id, TaskRow.priority, TaskRow.engine, TaskRow.queued_at, TaskRow.created_at)
        .where(
            or_(
                TaskRow.status == TaskStatus.QUEUED.value,
                and_(TaskRow.status == TaskStatus.RUNNING.value, TaskRow.lease_expires_at < now),
            )
        )
        .order_by(TaskRow.priority.desc(), TaskRow.created_at)
        .limit(limit)
    )
    return [
        Resumable(
            task_id=row.id,
            priority=row.priority,
            engine=row.engine,
            queued_at=_epoch(row.queued_at or row.created_at),
        )
        for row in conn.execute(query)
    ]


def _epoch(moment: datetime) -> float:
    """Seconds since the epoch; naive datetimes (as SQLite returns them) are UTC."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def count_tasks_by_type_and_status(conn: Connection) -> list[tuple[str, str, int]]:
    """(task type, status, count) over the whole store, in one grouped query."""
    columns = (TASKS.c.task_type, TASKS.c.status)
    query = select(*columns, func.count()).group_by(*columns)
    return [(str(task_type), str(status), int(n)) for task_type, status, n in conn.execute(query)]


def count_tasks_by_status(conn: Connection) -> dict[str, int]:
    """Tasks per status, every status present (0 when none)."""
    counts = {status.value: 0 for status in TaskStatus}
    for _, status, n in count_tasks_by_type_and_status(conn):
        counts[status] = counts.get(status, 0) + n
    return counts


def read_finished_tasks(
    conn: Connection, *, since: datetime, limit: int = 5000
) -> list[tuple[str, float | None]]:
    """(status, duration in seconds) of the tasks that finished at or after `since`, newest first.

    Only succeeded, partial and failed tasks; at most `limit` of them. The duration is None for a task
    that never started.
    """
    finished = [s.value for s in (TaskStatus.SUCCEEDED, TaskStatus.PARTIAL, TaskStatus.FAILED)]
    query = (
        select(TASKS.c.status, TASKS.c.started_at, TASKS.c.finished_at)
        .where(TASKS.c.finished_at >= since, TASKS.c.status.in_(finished))
        .order_by(TASKS.c.finished_at.desc())
        .limit(limit)
    )
    out: list[tuple[str, float | None]] = []
    for status, started, ended in conn.execute(query):
        duration = (ended - started).total_seconds() if started and ended else None
        out.append((str(status), duration))
    return out


def read_owned_task_ids(conn: Connection, task_ids: list[str], owner_id: str) -> set[str]:
    """Those of `task_ids` that `owner_id` owns."""
    query = select(TASKS.c.id).where(TASKS.c.id.in_(task_ids), TASKS.c.owner_id == owner_id)
    return set(conn.execute(query).scalars())
