"""An in-process runtime with custom agents on scripted routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from orchestrion.agents.spec import AgentSpec, TaskTypeSpec
from orchestrion.domain.events import Event
from orchestrion.domain.tasks import TERMINAL_STATUSES, Task
from orchestrion.engines.coordinator import Caller
from orchestrion.providers.base import Provider
from orchestrion.runtime import Runtime
from orchestrion.store.events import read_events
from orchestrion.store.migrate import aupgrade_database
from orchestrion.testing import ScriptedProvider
from orchestrion.testing.responders import grounded_analyst
from tests.conftest import make_settings

Factory = Callable[..., "asyncio.Future[Runtime]"]


def agent(
    agent_id: str, *, route: str = "default", timeout: float | None = None, retries: int | None = None
) -> AgentSpec:
    """A tool-less specialist whose work is one LLM call on `route`."""
    return AgentSpec(
        id=agent_id,
        name=agent_id,
        description="test agent",
        task_types=("teamwork",),
        route=route,
        timeout_seconds=timeout,
        max_retries=retries,
    )


class Harness:
    """A runtime plus helpers to submit and wait."""

    def __init__(self, runtime: Runtime, admin: Caller) -> None:
        self.runtime = runtime
        self.admin = admin

    async def wait(self, task_id: str, *, timeout: float = 20.0) -> Task:
        async with asyncio.timeout(timeout):
            while True:
                task = await self.runtime.coordinator.get(self.admin, task_id)
                if task.status in TERMINAL_STATUSES:
                    return task
                await asyncio.sleep(0.02)

    async def wait_event(self, task_id: str, kind: str, *, timeout: float = 20.0) -> Event:
        async with asyncio.timeout(timeout):
            while True:
                for event in await self.events(task_id):
                    if event.type == kind:
                        return event
                await asyncio.sleep(0.02)

    async def events(self, task_id: str) -> list[Event]:
        return await self.runtime.db.read(lambda conn: read_events(conn, task_id))


@pytest.fixture
async def harness_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Build runtimes whose routes and extra agents the test chooses."""
    runtimes: list[Runtime] = []

    async def build(
        routes: Mapping[str, Sequence[Provider]] | None = None,
        agents: Sequence[AgentSpec] = (),
        start: bool = True,
        **settings: Any,
    ) -> Harness:
        home = tmp_path / f"h{len(runtimes)}"
        config = make_settings(home, **settings)
        await aupgrade_database(config.resolved_database_url)
        all_routes: dict[str, Sequence[Provider]] = {"default": [ScriptedProvider(default=grounded_analyst)]}
        all_routes.update(routes or {})
        rt = Runtime.create(config, routes=all_routes)
        for spec in agents:
            rt.registry.register_agent(spec)
        if agents:
            rt.registry.register_task_type(
                TaskTypeSpec(id="teamwork", description="test", default_agents=tuple(a.id for a in agents))
            )
        await rt.bootstrap_admin()
        if start:
            await rt.start()
        runtimes.append(rt)
        from orchestrion.store.users import get_user_by_name

        admin = await rt.db.read(lambda conn: get_user_by_name(conn, "admin"))
        assert admin is not None
        return Harness(rt, Caller(user_id=admin.id, role="admin"))

    yield build
    for rt in runtimes:
        await rt.stop()
