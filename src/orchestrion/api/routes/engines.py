"""GET /api/v1/engines: each engine's state, load and limits, the rules, the queue and the health.

An engine's `current_tasks` lists the ids of the runs it executes in this process; non-admins see
only their own there (the counts are everyone's).
"""

from __future__ import annotations

import time

from fastapi import APIRouter

from orchestrion.api.deps import CallerDep, RuntimeDep
from orchestrion.api.engine_schemas import (
    EngineHealthPublic,
    EnginePublic,
    EngineQueuePublic,
    EngineRulePublic,
    EnginesPublic,
)
from orchestrion.monitoring.health import assess_health
from orchestrion.store.tasks import read_owned_task_ids

router = APIRouter(tags=["engines"])


@router.get("/engines", response_model=EnginesPublic)
async def read_engines(caller: CallerDep, runtime: RuntimeDep) -> EnginesPublic:
    """Every engine with its state (idle, processing, overloaded, error) and where tasks go."""
    rules = runtime.coordinator.rules
    statuses = runtime.engine_status.snapshot()
    running = [task_id for status in statuses for task_id in status.current_tasks]
    visible = set(running)
    if caller.role != "admin" and running:
        visible = await runtime.db.read(lambda conn: read_owned_task_ids(conn, running, caller.user_id))
    engines = []
    for status in statuses:
        engines.append(
            EnginePublic(
                name=status.engine,
                state=status.state.value,
                running=status.running,
                queued=status.queued,
                max_concurrency=rules.limits.get(status.engine, 0),
                step_concurrency=runtime.engine_step_concurrency(status.engine),
                current_tasks=[t for t in status.current_tasks if t in visible],
                error=status.error,
                primary_for=[r.task_type for r in rules.rules() if r.primary == status.engine],
                fallback_for=[r.task_type for r in rules.rules() if status.engine in r.fallbacks],
                changed_at=status.changed_at.isoformat(),
            )
        )
    alerts = runtime.alerts
    health = assess_health(alerts.breaches() if alerts else [], alerts.firing() if alerts else [], statuses)
    return EnginesPublic(
        engines=engines,
        rules=[
            EngineRulePublic(task_type=r.task_type, primary=r.primary, fallbacks=list(r.fallbacks))
            for r in rules.rules()
        ],
        queue=EngineQueuePublic(
            waiting=runtime.queue.depth(),
            oldest_wait_seconds=round(runtime.queue.oldest_wait(time.time()), 3),
            aging_seconds=runtime.settings.queue_aging_seconds,
        ),
        health=EngineHealthPublic(status=health.status, reasons=list(health.reasons)),
    )
