"""The coordinator's engines: rules, preference, fallback when the primary is full, per-engine limits,
the priority queue on real workers, and retry re-running what depends on the steps it re-runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrion.domain.tasks import TaskStatus
from orchestrion.engines.assembly import build_engine_rules
from orchestrion.engines.coordinator import TaskRequest
from orchestrion.exceptions import ConfigurationError, ProviderError, UnknownChoiceError, ValidationError
from orchestrion.providers.base import ChatRequest, ChatResponse
from orchestrion.testing import ScriptedProvider
from tests.conftest import make_settings
from tests.engines.conftest import agent

LABELLED = {"output": "done", "label": "ok"}


class HeldProvider(ScriptedProvider):
    """Answers once released; counts the calls waiting."""

    def __init__(self) -> None:
        super().__init__(default=LABELLED)
        self.release = asyncio.Event()
        self.waiting = 0

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.waiting += 1
        try:
            await self.release.wait()
        finally:
            self.waiting -= 1
        return await super().complete(request)


def _batch(title: str = "batch", items: tuple[str, ...] = ("a", "b"), **extra: Any) -> TaskRequest:
    return TaskRequest(
        title=title,
        task_type="parallel_processing",
        items=items,
        options={"instruction": "Label the item"},
        **extra,
    )


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_a_batch_falls_back_to_the_team_engine_when_the_parallel_engine_is_full(
    harness_factory: Callable[..., Any],
) -> None:
    held = HeldProvider()
    h = await harness_factory(routes={"default": [held]}, workers=3, engine_max_concurrency="parallel=1")
    first = await h.runtime.coordinator.submit(h.admin, _batch("first"))
    assert first.engine == "parallel"
    await _until(lambda: held.waiting == 2)  # both items of the first batch are in flight

    second = await h.runtime.coordinator.submit(h.admin, _batch("second"))
    assert second.engine == "team"
    assert second.plan is not None
    assert any("parallel is at capacity" in r and "fell back to team" in r for r in second.plan.reasons)
    await _until(lambda: held.waiting == 4)  # the fallback started at once on a team slot
    parallel = h.runtime.engine_status.status("parallel")
    team = h.runtime.engine_status.status("team")
    assert parallel is not None and parallel.current_tasks == (first.id,)
    assert team is not None and team.current_tasks == (second.id,)

    held.release.set()
    for task in (first, second):
        done = await h.wait(task.id)
        assert done.status is TaskStatus.SUCCEEDED, done.error
    events = await h.events(second.id)
    created = next(e for e in events if e.type == "task.created")
    assert created.data["engine"] == "team" and created.data["fell_back"] is True


async def test_without_room_anywhere_the_task_waits_for_its_primary(
    harness_factory: Callable[..., Any],
) -> None:
    held = HeldProvider()
    h = await harness_factory(
        routes={"default": [held]}, workers=2, engine_max_concurrency="parallel=1,team=1"
    )
    first = await h.runtime.coordinator.submit(h.admin, _batch("first"))
    second = await h.runtime.coordinator.submit(h.admin, _batch("second"))
    third = await h.runtime.coordinator.submit(h.admin, _batch("third"))
    assert (first.engine, second.engine, third.engine) == ("parallel", "team", "parallel")
    assert third.plan is not None and any("no fallback has room" in r for r in third.plan.reasons)
    await _until(lambda: held.waiting == 4)
    await asyncio.sleep(0.2)
    assert held.waiting == 4  # the third waits: the parallel engine's one slot is taken
    assert (await h.runtime.coordinator.get(h.admin, third.id)).status is TaskStatus.QUEUED
    status = h.runtime.engine_status.status("parallel")
    assert status is not None and (status.state, status.running, status.queued) == ("overloaded", 1, 1)
    held.release.set()
    for task in (first, second, third):
        assert (await h.wait(task.id)).status is TaskStatus.SUCCEEDED


async def test_engine_preference_is_checked_against_the_rules(harness_factory: Callable[..., Any]) -> None:
    h = await harness_factory(routes={"default": [ScriptedProvider(default=LABELLED)]}, start=False)
    with pytest.raises(UnknownChoiceError) as unknown:
        await h.runtime.coordinator.submit(h.admin, _batch(engine="quantum"))
    assert unknown.value.details["field"] == "engine"
    assert unknown.value.details["choices"] == ["team", "parallel", "creative", "recall"]
    with pytest.raises(ValidationError) as unsuitable:
        await h.runtime.coordinator.submit(h.admin, _batch(engine="creative"))
    assert unsuitable.value.details["choices"] == ["parallel", "team"]
    chosen = await h.runtime.coordinator.submit(h.admin, _batch(engine="team"))
    assert chosen.engine == "team"


async def test_the_queue_takes_higher_priority_first_on_real_workers(
    harness_factory: Callable[..., Any],
) -> None:
    held = HeldProvider()
    h = await harness_factory(routes={"default": [held]}, workers=1)
    blocker = await h.runtime.coordinator.submit(h.admin, _batch("blocker", items=("x",)))
    await _until(lambda: held.waiting == 1)
    low = await h.runtime.coordinator.submit(h.admin, _batch("low", items=("l",), priority=2))
    high = await h.runtime.coordinator.submit(h.admin, _batch("high", items=("h",), priority=9))
    held.release.set()
    done = {t.id: await h.wait(t.id) for t in (blocker, low, high)}
    assert all(t.status is TaskStatus.SUCCEEDED for t in done.values())
    assert done[high.id].started_at is not None and done[low.id].started_at is not None
    assert done[high.id].started_at < done[low.id].started_at


async def test_retry_reruns_the_failed_steps_and_the_report_over_them(
    harness_factory: Callable[..., Any],
) -> None:
    failure = ProviderError("bad request", provider="scripted")
    flaky = ScriptedProvider([failure], default={"summary": "fine", "findings": []})
    h = await harness_factory(
        routes={"flaky": [flaky]},
        agents=[agent("a"), agent("b", route="flaky", retries=0)],
    )
    task = await h.runtime.coordinator.submit(h.admin, TaskRequest(title="t", task_type="teamwork"))
    done = await h.wait(task.id)
    assert done.status is TaskStatus.PARTIAL and "1 of 2 steps failed: b" in (done.error or "")
    before = [e for e in await h.events(task.id) if e.type == "step.started"]
    retried = await h.runtime.coordinator.retry(h.admin, task.id)
    assert retried.status in (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.SUCCEEDED)
    final = await h.wait(task.id)
    assert final.status is TaskStatus.SUCCEEDED, final.error
    after = [e for e in await h.events(task.id) if e.type == "step.started"][len(before) :]
    # b failed and re-ran; the reporter re-ran over it; a, which succeeded, did not run again.
    assert sorted(e.data["step_id"] for e in after) == ["b", "reporter"]


def test_engine_settings_are_checked() -> None:
    home = Path("/nonexistent-orchestrion-home")
    rules = build_engine_rules(make_settings(home, workers=6))
    assert rules.limits == {"team": 6, "parallel": 3, "creative": 3, "recall": 6}
    assert rules.rule("brainstorming").engines == ("creative", "team")
    assert rules.rule("code_analysis").engines == ("team",)
    custom = build_engine_rules(
        make_settings(home, engine_rules="code_analysis=team>parallel", engine_max_concurrency="team=2")
    )
    assert custom.rule("code_analysis").engines == ("team", "parallel") and custom.limits["team"] == 2
    for bad in ({"engine_rules": "code_analysis=warp"}, {"engine_rules": "nonsense"}):
        with pytest.raises(ConfigurationError, match="ORCHESTRION_ENGINE_RULES"):
            build_engine_rules(make_settings(home, **bad))
    for limit in ("team=0", "team=x", "warp=2"):
        with pytest.raises(ConfigurationError, match="ORCHESTRION_ENGINE_MAX_CONCURRENCY"):
            build_engine_rules(make_settings(home, engine_max_concurrency=limit))


def test_serve_exits_2_with_one_line_on_a_bad_engine_rule(tmp_path: Path) -> None:
    env = dict(os.environ, ORCHESTRION_HOME=str(tmp_path), ORCHESTRION_ENGINE_RULES="brainstorming=warp")
    done = subprocess.run(
        [sys.executable, "-m", "orchestrion", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "ORCHESTRION_ENGINE_RULES: unknown engine 'warp'" in lines[0] and "parallel" in lines[0]
