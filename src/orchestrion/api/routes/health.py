"""/health (no auth) and /metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response

from orchestrion import __version__
from orchestrion.api.deps import CallerDep, RuntimeDep
from orchestrion.api.schemas import HealthPublic
from orchestrion.domain.tasks import TaskStatus
from orchestrion.monitoring.metrics import Metrics
from orchestrion.store.tasks import count_tasks_by_type_and_status

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic)
async def read_health(runtime: RuntimeDep, response: Response) -> HealthPublic:
    """Database, queue and provider status; 503 when the database does not answer."""
    started = time.perf_counter()
    try:
        await runtime.db.ping()
        database = {
            "ok": True,
            "backend": "sqlite" if runtime.db.is_sqlite else "postgresql",
            "latency_ms": round(1000 * (time.perf_counter() - started), 2),
        }
    except Exception as exc:
        database = {"ok": False, "error": type(exc).__name__}
    queue = {
        "backend": "local",
        "depth": runtime.queue.depth(),
        "running": runtime.queue.running(),
        "workers": runtime.settings.workers if runtime.settings.embedded_worker else 0,
    }
    providers = {
        "routes": runtime.router.routes() if runtime.router else {},
        "llm_enabled": runtime.router is not None,
    }
    status = "ok" if database["ok"] else "degraded"
    if status != "ok":
        response.status_code = 503
    return HealthPublic(
        status=status, version=__version__, database=database, queue=queue, providers=providers
    )


@router.get("/metrics", include_in_schema=False)
async def read_metrics(_caller: CallerDep, runtime: RuntimeDep) -> Response:
    """Prometheus exposition (send an API key: `authorization: {credentials: ...}` in the scrape config)."""
    runtime.metrics.queue_depth.set(runtime.queue.depth())
    # Agent gauges are computed from the store; a scrape is when they need to be current.
    await runtime.agent_monitor.refresh()
    _set_task_counts(runtime.metrics, await runtime.db.read(count_tasks_by_type_and_status))
    return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


def _set_task_counts(metrics: Metrics, counts: list[tuple[str, str, int]]) -> None:
    """Replace `orchestrion_tasks`: every status of every task type seen, zero when it has none."""
    by_key = {(task_type, status): count for task_type, status, count in counts}
    # No await between clearing and setting: a concurrent scrape never sees the gauge half-filled.
    metrics.tasks.clear()
    for task_type in sorted({task_type for task_type, _, _ in counts}):
        for status in TaskStatus:
            metrics.tasks.labels(task_type, status.value).set(by_key.get((task_type, status.value), 0))
