"""/api/v1/system: the server at a glance (definitions in docs/monitoring.md).

- ``agents``: every registered agent (`AgentMonitor`); ``active`` ones are not offline (their LLM
  route has a usable deployment), ``processing`` ones have steps running now.
- ``tasks``: tasks per status, one grouped query at request time.
- ``performance``: ``recent_runs``, ``avg_response_seconds`` and ``success_rate`` pooled over every
  agent's latest runs (the windows of GET /agents, `ORCHESTRION_AGENT_METRICS_WINDOW`); the task
  failure ratio and p95 duration over the sampler's window of finished tasks, as of the latest sample.
- ``health``: `monitoring.health` (healthy, degraded or stressed, with reasons, engines' included).
- ``sample``: the latest system sample (null before the first one).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict

from fastapi import APIRouter

from orchestrion.api.deps import CallerDep, RuntimeDep
from orchestrion.api.schemas import (
    HostSamplePublic,
    SystemAgentsPublic,
    SystemAlertsPublic,
    SystemHealthPublic,
    SystemPerformancePublic,
    SystemPublic,
    SystemSamplePublic,
    SystemTasksPublic,
)
from orchestrion.intelligence.agent_metrics import AgentStatus
from orchestrion.monitoring.health import assess_health
from orchestrion.monitoring.sampler import TASK_WINDOW_SECONDS
from orchestrion.store.tasks import count_tasks_by_status

router = APIRouter(tags=["system"])


@router.get("/system", response_model=SystemPublic)
async def read_system(_caller: CallerDep, runtime: RuntimeDep) -> SystemPublic:
    """Agents, tasks, performance, alerts, resources and the health in one answer."""
    agents = await runtime.agent_monitor.read_all()
    statuses = Counter(agent.status.value for agent in agents)
    by_status = await runtime.db.read(count_tasks_by_status)
    pooled = [(a.recent_runs, a.success_rate, a.response_avg_seconds) for a in agents if a.recent_runs]
    runs = sum(n for n, _, _ in pooled)
    success = sum(n * rate for n, rate, _ in pooled if rate is not None) / runs if runs else None
    response = sum(n * avg for n, _, avg in pooled if avg is not None) / runs if runs else None
    sampler, alerts = runtime.sampler, runtime.alerts
    latest = sampler.latest if sampler is not None else None
    stats = latest.tasks if latest is not None else None
    engines = runtime.engine_status.snapshot()
    health = assess_health(alerts.breaches(), alerts.firing(), engines) if alerts is not None else None
    firing = alerts.firing_counts() if alerts is not None else {}
    return SystemPublic(
        health=SystemHealthPublic(
            status=health.status if health else "healthy", reasons=list(health.reasons) if health else []
        ),
        agents=SystemAgentsPublic(
            total=len(agents),
            active=sum(1 for a in agents if a.status is not AgentStatus.OFFLINE),
            processing=statuses.get(AgentStatus.PROCESSING.value, 0),
            by_status={status.value: statuses.get(status.value, 0) for status in AgentStatus},
        ),
        tasks=SystemTasksPublic(total=sum(by_status.values()), by_status=by_status),
        performance=SystemPerformancePublic(
            recent_runs=runs,
            avg_response_seconds=response,
            success_rate=success,
            task_window_seconds=sampler.task_window_seconds if sampler is not None else TASK_WINDOW_SECONDS,
            tasks_recent_finished=stats.recent_finished if stats else None,
            task_failure_ratio=stats.recent_failure_ratio if stats else None,
            task_duration_p95_seconds=stats.recent_duration_p95_seconds if stats else None,
        ),
        alerts=SystemAlertsPublic(firing=sum(firing.values()), by_severity=firing),
        sample=(
            SystemSamplePublic(
                sampled_at=latest.sampled_at,
                host=HostSamplePublic(**asdict(latest.host)),
                queue_depth=latest.queue_depth,
                queue_backlog=latest.tasks.backlog,
                open_circuits=latest.open_circuits,
            )
            if latest is not None
            else None
        ),
    )
