"""The team engine and coordinator on a real SQLite store with scripted LLM routes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from orchestrion.domain.tasks import AgentRun, StepStatus, TaskStatus
from orchestrion.engines.coordinator import TaskRequest
from orchestrion.exceptions import ProviderError
from orchestrion.store import runs as run_store
from orchestrion.store import tasks as task_store
from orchestrion.store.database import WriteTx
from orchestrion.testing import ScriptedProvider
from tests.conftest import PostgresServer, create_pg_database
from tests.engines.conftest import agent

OK = {
    "summary": "done",
    "findings": [
        {"title": "Observation", "severity": "low", "description": "", "recommendation": "", "evidence": []}
    ],
}


def _request(**overrides: Any) -> TaskRequest:
    values: dict[str, Any] = {"title": "team", "task_type": "teamwork"}
    values.update(overrides)
    return TaskRequest(**values)


async def test_specialists_run_in_parallel_then_reporter(harness_factory: Callable[..., Any]) -> None:
    slow = ScriptedProvider(default=OK, delay=0.3)
    h = await harness_factory(
        routes={"slow": [slow]}, agents=[agent(n, route="slow") for n in ("a", "b", "c")]
    )
    task = await h.runtime.coordinator.submit(h.admin, _request())
    done = await h.wait(task.id)
    assert done.status is TaskStatus.SUCCEEDED
    kinds = [(e.type, e.data.get("step_id")) for e in await h.events(task.id)]
    first_completion = next(i for i, k in enumerate(kinds) if k[0] == "step.completed")
    started_before = {s for t, s in kinds[:first_completion] if t == "step.started"}
    assert started_before == {"a", "b", "c"}
    assert kinds.index(("step.started", "reporter")) > max(
        kinds.index(("step.completed", s)) for s in ("a", "b", "c")
    )
    assert len(slow.requests) == 3


async def test_failed_step_is_retried_with_backoff_then_succeeds(harness_factory: Callable[..., Any]) -> None:
    flaky = ScriptedProvider([ProviderError("overloaded", provider="scripted", retryable=True)], default=OK)
    h = await harness_factory(routes={"flaky": [flaky]}, agents=[agent("a", route="flaky", retries=2)])
    task = await h.runtime.coordinator.submit(h.admin, _request())
    done = await h.wait(task.id)
    assert done.status is TaskStatus.SUCCEEDED
    events = await h.events(task.id)
    assert [e.data["attempt"] for e in events if e.type == "step.retrying"] == [1]
    assert done.plan is not None and done.plan.step("a").attempts == 2


async def test_step_timeout_fails_the_step_and_task_ends_partial(harness_factory: Callable[..., Any]) -> None:
    hang = ScriptedProvider(default=OK, delay=30)
    h = await harness_factory(
        routes={"hang": [hang]}, agents=[agent("a"), agent("b", route="hang", timeout=0.2, retries=0)]
    )
    task = await h.runtime.coordinator.submit(h.admin, _request())
    done = await h.wait(task.id)
    assert done.status is TaskStatus.PARTIAL
    assert done.plan is not None
    assert done.plan.step("b").status is StepStatus.FAILED
    assert "timed out" in (done.plan.step("b").error or "")
    result = await h.runtime.db.read(lambda conn: run_store.read_result(conn, task.id))
    assert result is not None and result.quality.completion == 0.5


async def test_every_agent_failing_fails_the_task(harness_factory: Callable[..., Any]) -> None:
    broken = ScriptedProvider(default=ProviderError("bad request", provider="scripted"))
    h = await harness_factory(routes={"broken": [broken]}, agents=[agent("a", route="broken", retries=0)])
    task = await h.runtime.coordinator.submit(h.admin, _request())
    done = await h.wait(task.id)
    assert done.status is TaskStatus.FAILED
    assert "every step failed" in (done.error or "")


async def test_resume_skips_checkpointed_steps(harness_factory: Callable[..., Any]) -> None:
    first, second = ScriptedProvider(default=OK), ScriptedProvider(default=OK)
    h = await harness_factory(
        routes={"first": [first], "second": [second]},
        agents=[agent("a", route="first"), agent("b", route="second")],
    )
    task = await h.runtime.coordinator.submit(h.admin, _request(auto_execute=False))
    assert task.status is TaskStatus.PENDING

    def checkpoint(tx: WriteTx) -> None:
        run_store.save_run(
            tx,
            AgentRun(
                task_id=task.id, step_id="a", agent_id="a", status=StepStatus.SUCCEEDED, summary="earlier"
            ),
        )
        task_store.set_step_fields(tx, task.id, "a", status=StepStatus.SUCCEEDED, attempts=1)

    await h.runtime.db.write(checkpoint)
    await h.runtime.coordinator.execute(h.admin, task.id)
    done = await h.wait(task.id)
    assert done.status is TaskStatus.SUCCEEDED
    assert len(first.requests) == 0
    assert len(second.requests) == 1
    starts = [e.data["step_id"] for e in await h.events(task.id) if e.type == "step.started"]
    assert starts == ["b", "reporter"]


async def test_retry_reruns_only_failed_steps(harness_factory: Callable[..., Any]) -> None:
    good = ScriptedProvider(default=OK)
    fails_once = ScriptedProvider([ProviderError("down", provider="scripted")], default=OK)
    h = await harness_factory(
        routes={"good": [good], "once": [fails_once]},
        agents=[agent("a", route="good"), agent("b", route="once", retries=0)],
    )
    task = await h.runtime.coordinator.submit(h.admin, _request())
    assert (await h.wait(task.id)).status is TaskStatus.PARTIAL
    await h.runtime.coordinator.retry(h.admin, task.id)
    done = await h.wait(task.id)
    assert done.status is TaskStatus.SUCCEEDED
    assert len(good.requests) == 1
    assert len(fails_once.requests) == 2


async def test_cancel_stops_a_running_task(harness_factory: Callable[..., Any]) -> None:
    hang = ScriptedProvider(default=OK, delay=30)
    h = await harness_factory(routes={"hang": [hang]}, agents=[agent("a", route="hang")])
    task = await h.runtime.coordinator.submit(h.admin, _request())
    await h.wait_event(task.id, "step.started")
    cancelled = await h.runtime.coordinator.cancel(h.admin, task.id)
    assert cancelled.status is TaskStatus.CANCELLED
    assert cancelled.plan is not None
    assert {s.status for s in cancelled.plan.steps} == {StepStatus.CANCELLED}
    assert (await h.events(task.id))[-1].type == "task.cancelled"


async def test_deadline_fails_a_task_that_runs_too_long(harness_factory: Callable[..., Any]) -> None:
    hang = ScriptedProvider(default=OK, delay=30)
    h = await harness_factory(routes={"hang": [hang]}, agents=[agent("a", route="hang")])
    task = await h.runtime.coordinator.submit(h.admin, _request(deadline_seconds=0.3))
    done = await h.wait(task.id)
    assert done.status is TaskStatus.FAILED
    assert "deadline" in (done.error or "")


async def test_code_analysis_runs_real_tools_and_grounds_findings(
    harness_factory: Callable[..., Any],
) -> None:
    h = await harness_factory()
    source = "import subprocess\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"
    task = await h.runtime.coordinator.submit(
        h.admin,
        TaskRequest(title="audit", task_type="code_analysis", files=[{"name": "app.py", "content": source}]),
    )
    done = await h.wait(task.id)
    assert done.status is TaskStatus.SUCCEEDED, done.error
    events = await h.events(task.id)
    assert sorted(e.data["tool"] for e in events if e.type == "tool.called") == [
        "bandit_scan",
        "python_metrics",
        "secret_scan",
    ]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    result = await h.runtime.db.read(lambda conn: run_store.read_result(conn, task.id))
    runs = await h.runtime.db.read(lambda conn: run_store.read_runs(conn, task.id))
    assert result is not None
    evidence_ids = {e.id for r in runs for e in r.evidence}
    shell = [f for f in result.findings if "shell" in f.title.lower()]
    assert shell and shell[0].severity.value == "high"
    assert all(f.grounded and set(f.evidence_ids) <= evidence_ids for f in result.findings)
    assert result.quality.grounding == 1.0 and result.quality.completion == 1.0


async def test_graceful_stop_hands_running_tasks_back_for_immediate_resume(
    harness_factory: Callable[..., Any],
) -> None:
    hang = ScriptedProvider(default=OK, delay=30)
    h = await harness_factory(routes={"hang": [hang]}, agents=[agent("a", route="hang")], lease_seconds=600)
    task = await h.runtime.coordinator.submit(h.admin, _request())
    await h.wait_event(task.id, "step.started")
    await h.runtime.queue.stop()
    now = time.time()
    resumable = await h.runtime.db.read(lambda conn: task_store.find_resumable(conn, now=now))
    stored = await h.runtime.db.read(lambda conn: task_store.get_task(conn, task.id))
    assert stored is not None and stored.status is TaskStatus.RUNNING
    assert [r.task_id for r in resumable] == [task.id]  # not after a 600 s lease: now


@pytest.mark.postgres
async def test_a_team_task_runs_end_to_end_on_postgresql(
    harness_factory: Callable[..., Any], postgres_server: PostgresServer
) -> None:
    url = await create_pg_database(postgres_server)
    flaky = ScriptedProvider([ProviderError("overloaded", provider="scripted", retryable=True)], default=OK)
    h = await harness_factory(
        database_url=url, routes={"flaky": [flaky]}, agents=[agent("a"), agent("b", route="flaky", retries=1)]
    )
    task = await h.runtime.coordinator.submit(h.admin, _request())
    done = await h.wait(task.id)
    assert done.status is TaskStatus.SUCCEEDED, done.error
    events = await h.events(task.id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events][-1] == "task.completed"
    result = await h.runtime.db.read(lambda conn: run_store.read_result(conn, task.id))
    assert result is not None and result.quality.completion == 1.0


async def _lose_lease_mid_step(h: Any, task_id: str) -> None:
    """Once a step runs, hand the lease to another worker (as after this one's lease expired during
    a long pause), then wait until this worker has stopped."""
    await h.wait_event(task_id, "step.started")
    await h.runtime.db.write(lambda tx: task_store.set_task_fields(tx, task_id, lease_owner="other-worker"))
    async with asyncio.timeout(10):
        while h.runtime.queue.running():
            await asyncio.sleep(0.02)


async def test_a_worker_that_lost_its_lease_writes_nothing_more(harness_factory: Callable[..., Any]) -> None:
    slow = ScriptedProvider(default=OK, delay=0.3)
    h = await harness_factory(routes={"slow": [slow]}, agents=[agent("a", route="slow")], lease_seconds=600)
    task = await h.runtime.coordinator.submit(h.admin, _request())
    await _lose_lease_mid_step(h, task.id)
    # The LLM call it had in flight is still accounted (`llm.called`): that money was spent. Nothing
    # about the task's state is written.
    events = [e.type for e in await h.events(task.id) if e.type != "llm.called"]
    stored = await h.runtime.db.read(lambda conn: task_store.get_task(conn, task.id))
    assert "step.completed" not in events and events[-1] == "step.started"
    assert stored is not None and stored.status is TaskStatus.RUNNING
    assert await h.runtime.db.read(lambda conn: run_store.read_runs(conn, task.id)) == []


async def test_a_worker_that_lost_its_lease_records_no_retry_either(
    harness_factory: Callable[..., Any],
) -> None:
    failing = ScriptedProvider(
        [ProviderError("overloaded", provider="scripted", retryable=True)], default=OK, delay=0.3
    )
    h = await harness_factory(
        routes={"failing": [failing]}, agents=[agent("a", route="failing", retries=2)], lease_seconds=600
    )
    task = await h.runtime.coordinator.submit(h.admin, _request())
    await _lose_lease_mid_step(h, task.id)
    events = [e.type for e in await h.events(task.id)]
    assert "step.retrying" not in events and events[-1] == "step.started"
    assert len(failing.requests) == 1  # it stopped instead of retrying
