"""The LLM call ledger: every attempt at every deployment, with tokens, cost and outcome."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Connection, Table, bindparam, case, func, insert, select

from orchestrion.domain.llm import DeploymentUsage, LLMCall
from orchestrion.store.database import WriteTx
from orchestrion.store.models import LLMCallRow, TaskRow

LLM_CALLS = cast(Table, LLMCallRow.__table__)

_INSERT = insert(LLM_CALLS)
_TASK_USAGE = select(
    func.coalesce(func.sum(LLM_CALLS.c.input_tokens + LLM_CALLS.c.output_tokens), 0),
    func.coalesce(func.sum(LLM_CALLS.c.cost_usd), 0.0),
).where(LLM_CALLS.c.task_id == bindparam("k_task"))
_TOTALS = select(
    LLM_CALLS.c.deployment,
    func.count(),
    func.sum(case((LLM_CALLS.c.outcome != "ok", 1), else_=0)),
    func.coalesce(func.sum(LLM_CALLS.c.input_tokens), 0),
    func.coalesce(func.sum(LLM_CALLS.c.output_tokens), 0),
    func.coalesce(func.sum(LLM_CALLS.c.cost_usd), 0.0),
    func.max(LLM_CALLS.c.created_at),
).group_by(LLM_CALLS.c.deployment)
_RECENT = (
    select(LLM_CALLS.c.outcome, LLM_CALLS.c.latency_seconds)
    .where(LLM_CALLS.c.deployment == bindparam("k_deployment"))
    .order_by(LLM_CALLS.c.created_at.desc())
    .limit(bindparam("k_limit"))
)
_READ = (
    select(LLM_CALLS)
    .where(LLM_CALLS.c.task_id == bindparam("k_task"))
    .order_by(LLM_CALLS.c.created_at, LLM_CALLS.c.id)
)


def insert_llm_calls(tx: WriteTx, calls: Sequence[LLMCall]) -> None:
    """Append calls to the ledger in this transaction."""
    if calls:
        # A shallow copy of each record's fields: `asdict` deep-copies, 30x slower per row.
        tx.conn.execute(_INSERT, [dict(vars(call)) for call in calls])


def read_task_usage(conn: Connection, task_id: str) -> tuple[int, float]:
    """Tokens and USD a task's calls have used to date (all runs of it)."""
    row = conn.execute(_TASK_USAGE, {"k_task": task_id}).one()
    return int(row[0]), float(row[1])


def read_llm_calls(conn: Connection, task_id: str) -> list[LLMCall]:
    """A task's calls, oldest first."""
    return [LLMCall(**row._asdict()) for row in conn.execute(_READ, {"k_task": task_id})]


def read_deployment_usage(conn: Connection, *, recent: int = 1000) -> dict[str, DeploymentUsage]:
    """Per deployment: totals to date, and error rate and latency percentiles over the last `recent` calls."""
    usage: dict[str, DeploymentUsage] = {}
    for deployment, calls, errors, tokens_in, tokens_out, cost, last in conn.execute(_TOTALS):
        sample = conn.execute(_RECENT, {"k_deployment": deployment, "k_limit": recent}).all()
        latencies = sorted(float(lat) for outcome, lat in sample if outcome == "ok")
        failed = sum(1 for outcome, _ in sample if outcome != "ok")
        usage[deployment] = DeploymentUsage(
            calls=int(calls),
            errors=int(errors or 0),
            input_tokens=int(tokens_in),
            output_tokens=int(tokens_out),
            cost_usd=float(cost),
            recent_calls=len(sample),
            error_rate=(failed / len(sample)) if sample else None,
            latency_p50_seconds=percentile(latencies, 0.50),
            latency_p95_seconds=percentile(latencies, 0.95),
            last_call_at=last,
        )
    return usage


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def read_recent_task_costs(conn: Connection, task_type: str, *, limit: int = 200) -> list[float]:
    """USD spent by each of the latest finished tasks of a type (0 for tasks that made no paid call)."""
    tasks = TaskRow.__table__
    recent = (
        select(tasks.c.id, tasks.c.finished_at)
        .where(tasks.c.task_type == task_type, tasks.c.finished_at.is_not(None))
        .order_by(tasks.c.finished_at.desc())
        .limit(limit)
        .subquery()
    )
    query = (
        select(recent.c.id, func.coalesce(func.sum(LLM_CALLS.c.cost_usd), 0.0))
        .select_from(recent.outerjoin(LLM_CALLS, LLM_CALLS.c.task_id == recent.c.id))
        .group_by(recent.c.id)
    )
    return [float(cost) for _, cost in conn.execute(query)]
