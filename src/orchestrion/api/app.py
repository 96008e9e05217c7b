"""The FastAPI app factory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence

from fastapi import FastAPI

from orchestrion import __version__
from orchestrion.api.errors import install_error_handlers
from orchestrion.api.limits import BodyLimitMiddleware
from orchestrion.api.routes import auth, catalog, health, intelligence, providers, tasks
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
    app.include_router(health.router)
    for module in (tasks, catalog, auth, providers, intelligence):
        app.include_router(module.router, prefix="/api/v1")
    return app
