"""The FastAPI app factory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.metrics import Info

from orchestrion import __version__
from orchestrion.api import ws
from orchestrion.api.errors import install_error_handlers
from orchestrion.api.limits import BodyLimitMiddleware
from orchestrion.api.logs import install_redaction
from orchestrion.api.routes import (
    alerts,
    auth,
    catalog,
    engines,
    health,
    intelligence,
    memory,
    providers,
    system,
    tasks,
)
from orchestrion.monitoring.metrics import Metrics
from orchestrion.providers.base import Provider
from orchestrion.providers.deployment import Deployment
from orchestrion.runtime import Runtime
from orchestrion.settings import Settings


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    routes: Mapping[str, Sequence[Provider | Deployment]] | None = None,
) -> FastAPI:
    """Build the app. With `runtime`, the caller owns its life cycle; otherwise the app does.

    `routes` replaces the configured LLM routes (tests and benchmarks use fakes here).
    """
    owned = runtime is None
    rt = runtime or Runtime.create(settings or Settings(), routes=routes)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        install_redaction()  # uvicorn has configured its loggers by now
        await rt.start()
        try:
            yield
        finally:
            if owned:
                await rt.stop()

    app = FastAPI(
        title="Orchestrion",
        version=__version__,
        description="Self-hosted multi-agent task server.",
        lifespan=lifespan,
    )
    app.state.runtime = rt
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=rt.settings.max_body_bytes)
    _instrument_http(app, rt.metrics)
    app.include_router(health.router)
    app.include_router(ws.router)
    for module in (tasks, catalog, auth, providers, intelligence, system, alerts, engines, memory):
        app.include_router(module.router, prefix="/api/v1")
    app.include_router(intelligence.task_router, prefix="/api/v1")
    return app


_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _instrument_http(app: FastAPI, metrics: Metrics) -> None:
    """Count and time HTTP requests by route template (`/api/v1/tasks/{task_id}`), never by raw path.

    Paths no route matches count as handler `none` and unknown methods as `other`, so no client can
    grow the label sets. `/metrics` and `/health` (scrapes, probes) are not counted. The instrumentator
    only adds the middleware: the metrics stay on the authenticated `/metrics` route.
    """

    def observe(info: Info) -> None:
        method = info.method if info.method in _HTTP_METHODS else "other"
        metrics.http_requests_total.labels(info.modified_handler, method, info.modified_status).inc()
        # Time to the response's start, so a long SSE stream does not count as a slow request; a
        # request that failed before responding only has its whole duration.
        duration = info.modified_duration_without_streaming or info.modified_duration
        metrics.http_request_duration.labels(info.modified_handler, method).observe(duration)

    instrumentator = Instrumentator(excluded_handlers=["^/metrics$", "^/health$"], registry=metrics.registry)
    instrumentator.add(observe)
    instrumentator.instrument(app)
