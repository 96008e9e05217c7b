"""The system sampler on a real runtime: psutil readings, task statistics, gauges and notices."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from orchestrion.bus.base import NoticeSubscription
from orchestrion.domain.events import Notice
from orchestrion.domain.tasks import Task, TaskStatus, utcnow
from orchestrion.monitoring.alert_evaluator import read_series
from orchestrion.runtime import Runtime
from orchestrion.store import tasks as task_store
from orchestrion.store.database import WriteTx
from orchestrion.store.migrate import aupgrade_database
from tests.conftest import make_settings


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    """A runtime without a worker whose sampler ticks every 0.1 s (not started)."""
    settings = make_settings(tmp_path, embedded_worker=False, system_sample_seconds=0.1)
    await aupgrade_database(settings.resolved_database_url)
    rt = Runtime.create(settings, routes={})
    try:
        yield rt
    finally:
        await rt.stop()


async def add_task(runtime: Runtime, owner: str, status: TaskStatus, *, took: float, ago: float) -> None:
    now = utcnow()
    task = Task(
        id=str(uuid.uuid4()),
        owner_id=owner,
        title="t",
        task_type="code_analysis",
        target=None,
        inputs={"files": [], "paths": []},
        priority=5,
        agents=("code_analyzer",),
        status=status,
        created_at=now - timedelta(seconds=ago + took + 1),
    )
    finished = now - timedelta(seconds=ago)

    def write(tx: WriteTx) -> None:
        task_store.insert_task(tx, task)
        if status is not TaskStatus.QUEUED:
            task_store.set_task_fields(
                tx, task.id, started_at=finished - timedelta(seconds=took), finished_at=finished
            )

    await runtime.db.write(write)


async def next_notice(subscription: NoticeSubscription) -> Notice:
    async with asyncio.timeout(10):
        notice = await subscription.get()
    assert notice is not None
    return notice


async def test_sampler_publishes_system_metrics_notices_and_sets_gauges(runtime: Runtime) -> None:
    user, _ = await runtime.create_user(name="op", role="operator")
    await add_task(runtime, user.id, TaskStatus.SUCCEEDED, took=10, ago=60)
    await add_task(runtime, user.id, TaskStatus.FAILED, took=20, ago=120)
    await add_task(runtime, user.id, TaskStatus.PARTIAL, took=30, ago=180)
    await add_task(runtime, user.id, TaskStatus.CANCELLED, took=500, ago=30)  # says nothing on failure
    await add_task(runtime, user.id, TaskStatus.FAILED, took=999, ago=3600)  # outside the window
    await add_task(runtime, user.id, TaskStatus.QUEUED, took=0, ago=0)
    subscription = runtime.bus.subscribe_channel("system")
    await runtime.start()

    first = await next_notice(subscription)
    assert first.channel == "system" and first.type == "system.metrics"
    host, tasks = first.data["host"], first.data["tasks"]
    assert 0 <= host["cpu_percent"] <= 100 and 0 < host["memory_percent"] < 100
    assert 0 < host["disk_percent"] < 100 and host["disk_path"] == str(runtime.settings.home)
    assert host["process_resident_memory_bytes"] > 10_000_000 and host["process_open_fds"] > 3
    assert tasks["by_status"]["failed"] == 2 and tasks["by_status"]["queued"] == 1
    assert tasks["backlog"] == 1 and tasks["recent_finished"] == 3
    assert tasks["recent_failure_ratio"] == pytest.approx(1 / 3)
    assert tasks["recent_duration_p95_seconds"] == pytest.approx(30)
    assert first.data["open_circuits"] == 0

    second = await next_notice(subscription)  # the loop keeps sampling
    assert second.data["sampled_at"] > first.data["sampled_at"]
    rates = second.data["host"]
    assert rates["network_sent_bytes_per_second"] is None or rates["network_sent_bytes_per_second"] >= 0

    series = read_series(runtime.metrics.registry)
    assert series["orchestrion_queue_backlog"][()] == 1
    assert series["orchestrion_tasks_recent_finished"][()] == 3
    assert series["orchestrion_tasks_recent_failure_ratio"][()] == pytest.approx(1 / 3)
    assert series["orchestrion_system_memory_percent"][()] > 0
    assert series["orchestrion_process_open_fds"][()] > 3
    assert series["orchestrion_llm_circuits_open"][()] == 0
    assert series["orchestrion_agent_recent_runs"][(("agent", "code_analyzer"),)] == 0
    assert runtime.sampler is not None and runtime.sampler.latest is not None


async def test_task_statistics_are_absent_without_finished_tasks(runtime: Runtime) -> None:
    assert runtime.sampler is not None
    sample = await runtime.sampler.sample()
    assert sample.tasks.recent_finished == 0 and sample.tasks.recent_failure_ratio is None
    assert sample.tasks.recent_duration_p95_seconds is None
    # NaN, not a false 0: rules do not see the series at all.
    values = {s.name: s.value for family in runtime.metrics.registry.collect() for s in family.samples}
    assert math.isnan(values["orchestrion_tasks_recent_failure_ratio"])
    assert "orchestrion_tasks_recent_failure_ratio" not in read_series(runtime.metrics.registry)
