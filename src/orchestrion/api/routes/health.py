"""/health (no auth) and /metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response

from orchestrion import __version__
from orchestrion.api.deps import CallerDep, RuntimeDep
from orchestrion.api.schemas import HealthPublic

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
    return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
