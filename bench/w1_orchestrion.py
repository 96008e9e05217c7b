"""W1 on Orchestrion, in-process: a real Runtime on a SQLite file, its LLM route on the test server.

Every task goes the whole way: `coordinator.submit` (task, plan, steps and events written), the
queue claims it, the team engine runs three specialists in parallel and then the reporter, each step
checkpointed with its events, and the final status written. Completion is awaited on the event bus
(`task.completed`), not by polling. Run by bench/w1.py; prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import add_plan_arguments, emit, measure, peak_rss_mib, plan_from_arguments
from w1_spec import LLM_MAX_TOKENS, MODEL, SPECIALISTS, TASK_TYPE, TITLE, W1_TASK_TYPE

from orchestrion.bus.base import Subscription
from orchestrion.domain.events import EventType
from orchestrion.engines.coordinator import Caller, TaskRequest
from orchestrion.providers.openai_compat import OpenAICompatProvider
from orchestrion.runtime import Runtime
from orchestrion.settings import Settings
from orchestrion.store.migrate import aupgrade_database
from orchestrion.store.models import AgentRunRow, EventRow, TaskRow
from orchestrion.store.users import get_user_by_name

_TERMINAL = frozenset({EventType.TASK_COMPLETED.value, EventType.TASK_FAILED.value})


class TaskFailedError(RuntimeError):
    """A benchmark task did not succeed (the figures would be meaningless)."""


class W1Client:
    """Submits W1 tasks and waits for their terminal event on the bus."""

    def __init__(self, runtime: Runtime, caller: Caller) -> None:
        self.runtime = runtime
        self.caller = caller
        self._outcomes: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.last_task_id: str | None = None
        # Large enough never to overflow: the dispatcher drains it continuously.
        self._subscription: Subscription = runtime.bus.subscribe(None, maxsize=1_000_000)
        self._dispatcher = asyncio.create_task(self._dispatch(), name="w1-dispatcher")

    def _outcome(self, task_id: str) -> asyncio.Future[dict[str, Any]]:
        future = self._outcomes.get(task_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._outcomes[task_id] = future
        return future

    async def _dispatch(self) -> None:
        while (event := await self._subscription.get()) is not None:
            if event.type in _TERMINAL:
                self._outcome(event.task_id).set_result({"type": event.type, **event.data})
        for future in self._outcomes.values():
            if not future.done():
                future.set_exception(RuntimeError("event subscription closed"))

    async def run_task(self, index: int) -> None:
        """Submit one W1 task and return once it has succeeded."""
        task = await self.runtime.coordinator.submit(
            self.caller, TaskRequest(title=TITLE, task_type=TASK_TYPE, target=f"#{index}")
        )
        self.last_task_id = task.id
        outcome = await self._outcome(task.id)
        del self._outcomes[task.id]
        if outcome.get("status") != "succeeded":
            raise TaskFailedError(f"task {task.id} ended {outcome}")

    async def aclose(self) -> None:
        """Stop listening."""
        self.runtime.bus.unsubscribe(self._subscription)
        self._dispatcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._dispatcher


@contextlib.asynccontextmanager
async def w1_runtime(home: Path, *, base_url: str, workers: int) -> AsyncIterator[W1Client]:
    """A started runtime with the W1 agents on a migrated SQLite file under `home`."""
    settings = Settings(
        _env_file=None,
        home=home,
        llm="none",
        workers=workers,
        llm_max_tokens=LLM_MAX_TOKENS,
        admin_api_key="orc_bench_" + "x" * 32,
        jwt_secret="bench-secret-" + "y" * 32,
    )
    await aupgrade_database(settings.resolved_database_url)
    runtime = Runtime.create(
        settings, routes={"default": [OpenAICompatProvider(base_url=base_url, model=MODEL)]}
    )
    for spec in SPECIALISTS:
        runtime.registry.register_agent(spec)
    runtime.registry.register_task_type(W1_TASK_TYPE)
    await runtime.bootstrap_admin()
    admin = await runtime.db.read(lambda conn: get_user_by_name(conn, "admin"))
    if admin is None:
        raise RuntimeError("bootstrap_admin created no admin")
    await runtime.start()
    client = W1Client(runtime, Caller(user_id=admin.id, role="admin"))
    try:
        yield client
    finally:
        await client.aclose()
        await runtime.stop()


async def persisted_counts(runtime: Runtime) -> dict[str, int]:
    """Rows written: tasks, events and agent runs (step checkpoints)."""

    def count(conn: Connection) -> dict[str, int]:
        return {
            "tasks": conn.execute(select(func.count()).select_from(TaskRow)).scalar_one(),
            "events": conn.execute(select(func.count()).select_from(EventRow)).scalar_one(),
            "agent_runs": conn.execute(select(func.count()).select_from(AgentRunRow)).scalar_one(),
        }

    return await runtime.db.read(count)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    plan = plan_from_arguments(args)
    with tempfile.TemporaryDirectory(prefix="orchestrion-w1-") as home:
        async with w1_runtime(Path(home), base_url=args.base_url, workers=args.workers) as client:
            result = await measure(client.run_task, plan)
            persisted = await persisted_counts(client.runtime)
            settings = client.runtime.settings
    expected = plan.warmup + plan.sequential + plan.concurrent_warmup + plan.concurrent
    if persisted["tasks"] != expected:
        raise RuntimeError(f"expected {expected} persisted tasks, found {persisted}")
    return {
        "name": "orchestrion",
        "version": f"orchestrion {version('orchestrion')}",
        **result,
        "peak_rss_mib": peak_rss_mib(),
        "persisted": persisted,
        "settings": {"workers": settings.workers, "step_concurrency": settings.step_concurrency},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--bodies", help="ignored: Orchestrion builds its own requests")
    add_plan_arguments(parser)
    emit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
