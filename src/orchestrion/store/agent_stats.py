"""Per-agent activity read from agent runs and steps: one aggregate query per concern, for all agents at once.

- Totals (`read_run_totals`): runs to date per agent, how many succeeded and failed, the latest run.
- Window (`read_recent_runs`): each agent's latest `window` runs, newest first (a `ROW_NUMBER()`
  window over `agent_runs`, supported by SQLite 3.25+ and PostgreSQL); rates and percentiles over
  them are computed by the caller.
- Activity (`read_step_activity`): steps running now per agent (only steps of running tasks count, so
  a step left `running` by a task that ended some other way is not load) and the latest step start.

Every function takes an optional `agent_ids` filter; without it, every agent that has rows is read.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, Select, Table, and_, bindparam, case, func, select

from orchestrion.domain.tasks import StepStatus, TaskStatus
from orchestrion.store.models import AgentRunRow, StepRow, TaskRow

RUNS = cast(Table, AgentRunRow.__table__)
STEPS = cast(Table, StepRow.__table__)
TASKS = cast(Table, TaskRow.__table__)


@dataclass(frozen=True, kw_only=True)
class RunTotals:
    """An agent's runs to date.

    Attributes:
        runs: Finished runs (one per step; a retried step counts once, its latest attempt).
        succeeded: Runs that succeeded.
        failed: Runs that failed.
        last_run_at: When the latest run was recorded.
    """

    runs: int = 0
    succeeded: int = 0
    failed: int = 0
    last_run_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class RecentRun:
    """One run of an agent's recent window."""

    status: str
    duration_seconds: float


@dataclass(frozen=True, kw_only=True)
class StepActivity:
    """What an agent's steps say about now.

    Attributes:
        running: Steps of running tasks the agent is working on.
        last_started_at: The latest start of any of its steps.
    """

    running: int = 0
    last_started_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class AgentStats:
    """Everything the store knows about one agent's activity (defaults: an agent with no rows)."""

    totals: RunTotals = RunTotals()
    recent: tuple[RecentRun, ...] = ()
    activity: StepActivity = StepActivity()


def _only_agents(query: Select[Any], column: ColumnElement[str]) -> Select[Any]:
    return query.where(column.in_(bindparam("k_agents", expanding=True)))


_TOTALS = select(
    RUNS.c.agent_id,
    func.count(),
    func.coalesce(func.sum(case((RUNS.c.status == StepStatus.SUCCEEDED.value, 1), else_=0)), 0),
    func.coalesce(func.sum(case((RUNS.c.status == StepStatus.FAILED.value, 1), else_=0)), 0),
    func.max(RUNS.c.created_at),
).group_by(RUNS.c.agent_id)
_TOTALS_OF = _only_agents(_TOTALS, RUNS.c.agent_id)


def _recent(filtered: bool) -> Select[Any]:
    ranked = select(
        RUNS.c.agent_id,
        RUNS.c.status,
        RUNS.c.duration_seconds,
        func.row_number()
        .over(partition_by=RUNS.c.agent_id, order_by=(RUNS.c.created_at.desc(), RUNS.c.id.desc()))
        .label("rank"),
    )
    if filtered:
        ranked = _only_agents(ranked, RUNS.c.agent_id)
    window = ranked.subquery()
    return (
        select(window.c.agent_id, window.c.status, window.c.duration_seconds)
        .where(window.c.rank <= bindparam("k_window"))
        .order_by(window.c.agent_id, window.c.rank)
    )


_RECENT = _recent(False)
_RECENT_OF = _recent(True)

_RUNNING = and_(STEPS.c.status == StepStatus.RUNNING.value, TASKS.c.status == TaskStatus.RUNNING.value)
_ACTIVITY = (
    select(
        STEPS.c.agent_id,
        func.coalesce(func.sum(case((_RUNNING, 1), else_=0)), 0),
        func.max(STEPS.c.started_at),
    )
    .select_from(STEPS.join(TASKS, TASKS.c.id == STEPS.c.task_id))
    .group_by(STEPS.c.agent_id)
)
_ACTIVITY_OF = _only_agents(_ACTIVITY, STEPS.c.agent_id)


def _params(agent_ids: Collection[str] | None, **more: Any) -> dict[str, Any]:
    return more if agent_ids is None else {"k_agents": list(agent_ids), **more}


def read_run_totals(conn: Connection, *, agent_ids: Collection[str] | None = None) -> dict[str, RunTotals]:
    """Agent id -> its runs to date (agents with no run are absent)."""
    query = _TOTALS if agent_ids is None else _TOTALS_OF
    return {
        agent_id: RunTotals(runs=int(runs), succeeded=int(succeeded), failed=int(failed), last_run_at=last)
        for agent_id, runs, succeeded, failed, last in conn.execute(query, _params(agent_ids))
    }


def read_recent_runs(
    conn: Connection, *, window: int, agent_ids: Collection[str] | None = None
) -> dict[str, list[RecentRun]]:
    """Agent id -> its latest `window` runs, newest first (agents with no run are absent)."""
    query = _RECENT if agent_ids is None else _RECENT_OF
    recent: dict[str, list[RecentRun]] = {}
    for agent_id, status, duration in conn.execute(query, _params(agent_ids, k_window=window)):
        recent.setdefault(agent_id, []).append(RecentRun(status=status, duration_seconds=float(duration)))
    return recent


def read_step_activity(
    conn: Connection, *, agent_ids: Collection[str] | None = None
) -> dict[str, StepActivity]:
    """Agent id -> its running steps and latest step start (agents with no step are absent)."""
    query = _ACTIVITY if agent_ids is None else _ACTIVITY_OF
    return {
        agent_id: StepActivity(running=int(running), last_started_at=last)
        for agent_id, running, last in conn.execute(query, _params(agent_ids))
    }


def read_agent_stats(
    conn: Connection, *, window: int, agent_ids: Collection[str] | None = None
) -> dict[str, AgentStats]:
    """Totals, recent window and step activity per agent, from one snapshot (three queries).

    Args:
        conn: A read connection (`Database.read` runs this in one transaction).
        window: How many of each agent's latest runs to return.
        agent_ids: Only these agents (default: every agent with runs or steps).
    """
    totals = read_run_totals(conn, agent_ids=agent_ids)
    recent = read_recent_runs(conn, window=window, agent_ids=agent_ids)
    activity = read_step_activity(conn, agent_ids=agent_ids)
    return {
        agent_id: AgentStats(
            totals=totals.get(agent_id, RunTotals()),
            recent=tuple(recent.get(agent_id, ())),
            activity=activity.get(agent_id, StepActivity()),
        )
        for agent_id in sorted(totals.keys() | recent.keys() | activity.keys())
    }
