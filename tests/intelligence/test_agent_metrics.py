"""Agent metrics from real rows (SQLite file, and PostgreSQL when its binaries are installed)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest

from orchestrion.agents.registry import AgentRegistry
from orchestrion.agents.spec import AgentSpec
from orchestrion.domain.events import Notice
from orchestrion.domain.tasks import AgentRun, Plan, Step, StepStatus, Task, TaskStatus, utcnow
from orchestrion.exceptions import NotFoundError
from orchestrion.intelligence.agent_metrics import AgentMetrics, AgentMonitor, AgentStatus
from orchestrion.monitoring.metrics import Metrics
from orchestrion.providers.breaker import CircuitState
from orchestrion.providers.router import ProviderRouter
from orchestrion.store import runs as run_store
from orchestrion.store import tasks as task_store
from orchestrion.store import users as user_store
from orchestrion.store.database import Database, WriteTx
from orchestrion.testing import ScriptedProvider

LOGGER = "orchestrion.intelligence.agent_metrics"
OK, FAILED = StepStatus.SUCCEEDED, StepStatus.FAILED


def _spec(agent_id: str, route: str = "default") -> AgentSpec:
    return AgentSpec(id=agent_id, name=agent_id, description="test agent", route=route)


class History:
    """Writes tasks, steps and runs through the store's repositories."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.owner = ""

    async def setup(self) -> History:
        user = await self.db.write(lambda tx: user_store.create_user(tx, name="alice", role="operator"))
        self.owner = user.id
        return self

    async def task(
        self, steps: Sequence[tuple[str, str]], *, status: TaskStatus = TaskStatus.RUNNING
    ) -> Task:
        """A task whose plan has one step per (step id, agent id)."""
        task = Task(
            id=str(uuid.uuid4()),
            owner_id=self.owner,
            title="t",
            task_type="code_analysis",
            target=None,
            inputs={},
            priority=5,
            agents=tuple(sorted({agent for _, agent in steps})),
            status=status,
            plan=Plan(steps=tuple(Step(id=s, agent_id=a) for s, a in steps)),
            created_at=utcnow(),
        )
        await self.db.write(lambda tx: task_store.insert_task(tx, task))
        return task

    async def runs(self, agent_id: str, outcomes: Sequence[tuple[StepStatus, float]]) -> None:
        """Finished runs of `agent_id`, oldest first, each committed on its own (distinct timestamps)."""
        task = await self.task(
            [(f"s{i}", agent_id) for i in range(len(outcomes))], status=TaskStatus.SUCCEEDED
        )
        for i, (status, seconds) in enumerate(outcomes):
            run = AgentRun(
                task_id=task.id,
                step_id=f"s{i}",
                agent_id=agent_id,
                status=status,
                duration_seconds=seconds,
                error="boom" if status is FAILED else None,
            )
            await self.db.write(lambda tx, r=run: run_store.save_run(tx, r))  # type: ignore[misc]

    async def start(self, task: Task, step_id: str) -> datetime:
        """Mark a step running, as the engine does; returns its start."""
        now = utcnow()

        def start(tx: WriteTx) -> None:
            task_store.set_step_fields(tx, task.id, step_id, status=StepStatus.RUNNING, started_at=now)

        await self.db.write(start)
        return now


@pytest.fixture
async def history(database: Database) -> History:
    return await History(database).setup()


def _registry(*specs: AgentSpec) -> AgentRegistry:
    registry = AgentRegistry(tool_names=())
    for spec in specs or (_spec("alpha"), _spec("beta")):
        registry.register_agent(spec)
    return registry


def _router() -> ProviderRouter:
    return ProviderRouter(
        {
            "default": [ScriptedProvider(default="ok")],
            "flaky": [ScriptedProvider(default="ok", name="flaky")],
        }
    )


def _monitor(
    db: Database,
    registry: AgentRegistry | None = None,
    *,
    router: ProviderRouter | None = None,
    metrics: Metrics | None = None,
    **thresholds: Any,
) -> AgentMonitor:
    return AgentMonitor(
        db,
        registry or _registry(),
        router or _router(),
        metrics or Metrics(),
        **thresholds,
    )


def _by_id(metrics: Sequence[AgentMetrics]) -> dict[str, AgentMetrics]:
    return {m.agent_id: m for m in metrics}


async def test_totals_cover_all_runs_and_rates_only_the_window(history: History) -> None:
    await history.runs("alpha", [(FAILED, 9.0)] * 3 + [(OK, 1.0), (OK, 2.0), (OK, 3.0), (OK, 4.0), (OK, 5.0)])
    alpha = await _monitor(history.db, window=5).read("alpha")
    assert (alpha.runs, alpha.succeeded, alpha.errors) == (8, 5, 3)
    assert alpha.recent_runs == 5
    assert (alpha.success_rate, alpha.error_rate) == (1.0, 0.0)
    assert alpha.response_avg_seconds == 3.0
    assert alpha.response_p95_seconds == 5.0
    assert alpha.status is AgentStatus.IDLE and alpha.alerts == ()


async def test_p95_is_the_nearest_rank_of_the_window_durations(history: History) -> None:
    await history.runs(
        "alpha", [(OK, float(s)) for s in (7, 3, 20, 1, 15, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14)]
    )
    await history.runs("alpha", [(OK, float(s)) for s in (16, 17, 18, 19)])
    alpha = await _monitor(history.db).read("alpha")
    assert alpha.recent_runs == 20
    assert alpha.response_p95_seconds == 19.0  # rank ceil(0.95 * 20) = 19 of 1..20
    assert alpha.response_avg_seconds == 10.5


async def test_an_agent_without_history_has_no_rates_and_is_idle(history: History) -> None:
    metrics = Metrics()
    beta = _by_id(await _monitor(history.db, metrics=metrics).read_all())["beta"]
    assert (beta.runs, beta.succeeded, beta.errors, beta.recent_runs, beta.load) == (0, 0, 0, 0, 0)
    assert (
        beta.success_rate is beta.error_rate is beta.response_avg_seconds is beta.response_p95_seconds is None
    )
    assert beta.last_activity_at is None and beta.status is AgentStatus.IDLE
    assert metrics.registry.get_sample_value("orchestrion_agent_load", {"agent": "beta"}) == 0
    assert metrics.registry.get_sample_value("orchestrion_agent_success_ratio", {"agent": "beta"}) is None


async def test_running_steps_of_running_tasks_are_load(history: History) -> None:
    await history.runs("alpha", [(OK, 1.0)])
    live = await history.task([("a1", "alpha"), ("a2", "alpha"), ("b1", "beta")])
    ended = await history.task([("a1", "alpha")], status=TaskStatus.FAILED)
    await history.start(live, "a1")
    started = await history.start(live, "a2")
    await history.start(ended, "a1")  # left running by a task that ended: not load
    metrics = Metrics()
    found = _by_id(await _monitor(history.db, metrics=metrics).read_all())
    alpha, beta = found["alpha"], found["beta"]
    assert alpha.load == 2 and alpha.status is AgentStatus.PROCESSING
    assert beta.load == 0 and beta.status is AgentStatus.IDLE and beta.last_activity_at is None
    assert alpha.last_activity_at is not None and alpha.last_activity_at >= started
    assert metrics.registry.get_sample_value("orchestrion_agent_load", {"agent": "alpha"}) == 2


async def test_last_activity_is_the_latest_run_when_no_step_started_later(history: History) -> None:
    task = await history.task([("a1", "alpha")], status=TaskStatus.SUCCEEDED)
    started = await history.start(task, "a1")
    await history.runs("alpha", [(OK, 1.0)])
    alpha = await _monitor(history.db).read("alpha")
    assert alpha.last_activity_at is not None and alpha.last_activity_at > started


async def test_error_status_from_the_window_error_rate_or_three_failures_in_a_row(history: History) -> None:
    await history.runs("alpha", [(FAILED, 1.0), (FAILED, 1.0), (OK, 1.0), (OK, 1.0), (OK, 1.0)])  # 40 %
    await history.runs("beta", [(FAILED, 1.0)] * 3)  # too few runs for a rate, but a streak
    await history.runs("gamma", [(FAILED, 1.0)] * 2 + [(OK, 1.0)] * 8)  # 20 %
    await history.runs("delta", [(OK, 1.0)] * 5 + [(FAILED, 1.0)] * 2)  # 29 %, two in a row
    registry = _registry(_spec("alpha"), _spec("beta"), _spec("gamma"), _spec("delta"))
    found = _by_id(await _monitor(history.db, registry).read_all())
    assert found["alpha"].error_rate == 0.4 and found["alpha"].status is AgentStatus.ERROR
    assert found["beta"].recent_runs == 3 and found["beta"].status is AgentStatus.ERROR
    assert found["gamma"].status is AgentStatus.IDLE
    assert found["delta"].status is AgentStatus.IDLE


async def test_an_agent_at_exactly_the_error_rate_threshold_is_in_error(history: History) -> None:
    await history.runs("alpha", [(FAILED, 1.0)] * 3 + [(OK, 1.0)] * 7)
    alpha = await _monitor(history.db).read("alpha")
    assert alpha.error_rate == 0.3 and alpha.status is AgentStatus.ERROR
    assert alpha.alerts == ()  # alerts need the rate above the threshold


async def test_offline_when_the_route_is_missing_or_every_circuit_is_open(history: History) -> None:
    router = _router()
    registry = _registry(_spec("alpha"), _spec("flaky", route="flaky"), _spec("ghost", route="missing"))
    live = await history.task([("f1", "flaky")])
    await history.start(live, "f1")
    monitor = _monitor(history.db, registry, router=router)
    before = _by_id(await monitor.read_all())
    assert before["flaky"].status is AgentStatus.PROCESSING
    assert before["ghost"].status is AgentStatus.OFFLINE
    assert before["alpha"].status is AgentStatus.IDLE

    (deployment,) = [d for d in router.deployments() if d.name in router.routes()["flaky"]]
    while deployment.breaker.state is not CircuitState.OPEN:
        permit = deployment.breaker.acquire()
        assert permit is not None
        deployment.breaker.record_failure(permit)
    after = _by_id(await monitor.read_all())
    assert after["flaky"].status is AgentStatus.OFFLINE and after["flaky"].load == 1
    assert after["alpha"].status is AgentStatus.IDLE


async def test_no_agent_is_offline_without_any_llm(history: History) -> None:
    # Without a router the agents run their tools only: nothing can be down.
    monitor = AgentMonitor(history.db, _registry(), None, Metrics())
    assert AgentStatus.OFFLINE not in {m.status for m in await monitor.read_all()}


async def test_alerts_need_enough_runs_in_the_window(history: History) -> None:
    await history.runs("alpha", [(FAILED, 500.0)] * 4)
    alpha = await _monitor(history.db).read("alpha")
    assert alpha.alerts == () and alpha.status is AgentStatus.ERROR  # the streak still counts


async def test_alerts_fire_and_resolve_logging_on_transitions_only(
    history: History, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    metrics = Metrics()
    monitor = _monitor(history.db, metrics=metrics, window=5)
    await history.runs("alpha", [(FAILED, 200.0)] * 5)

    alpha = await monitor.read("alpha")
    await monitor.refresh()
    assert [(a.metric, a.severity) for a in alpha.alerts] == [
        ("response_p95_seconds", "warning"),
        ("success_rate", "critical"),
        ("error_rate", "critical"),
    ]
    slow = alpha.alerts[0]
    assert (slow.value, slow.threshold) == (200.0, 120.0) and "alpha" in slow.message
    fired = [r for r in caplog.records if r.name == LOGGER]
    assert [r.levelno for r in fired] == [logging.WARNING]
    assert "alpha" in fired[0].getMessage() and "error rate 100%" in fired[0].getMessage()
    assert metrics.registry.get_sample_value("orchestrion_agent_alerts", {"agent": "alpha"}) == 3
    assert (
        metrics.registry.get_sample_value("orchestrion_agent_response_p95_seconds", {"agent": "alpha"}) == 200
    )
    assert metrics.registry.get_sample_value("orchestrion_agent_success_ratio", {"agent": "alpha"}) == 0

    caplog.clear()
    await history.runs("alpha", [(OK, 1.0)] * 5)
    alpha = await monitor.read("alpha")
    await monitor.refresh()
    assert alpha.alerts == () and alpha.status is AgentStatus.IDLE
    resolved = [r for r in caplog.records if r.name == LOGGER]
    assert [r.levelno for r in resolved] == [logging.INFO]
    assert "resolved" in resolved[0].getMessage()
    assert metrics.registry.get_sample_value("orchestrion_agent_alerts", {"agent": "alpha"}) == 0
    assert metrics.registry.get_sample_value("orchestrion_agent_success_ratio", {"agent": "alpha"}) == 1


async def test_an_escalation_logs_a_warning_and_a_deescalation_an_info_line(
    history: History, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    monitor = _monitor(history.db, window=5, alert_error_rate=0.9, alert_success_rate=0.0)
    await history.runs("alpha", [(OK, 130.0)] * 5)
    assert [a.severity for a in (await monitor.read("alpha")).alerts] == ["warning"]
    await history.runs("alpha", [(OK, 300.0)] * 5)
    assert [a.severity for a in (await monitor.read("alpha")).alerts] == ["critical"]
    await history.runs("alpha", [(OK, 130.0)] * 5)
    assert [a.severity for a in (await monitor.read("alpha")).alerts] == ["warning"]
    levels = [r.levelno for r in caplog.records if r.name == LOGGER]
    assert levels == [logging.WARNING, logging.WARNING, logging.INFO]


async def test_reading_one_agent_matches_reading_all(history: History) -> None:
    await history.runs("alpha", [(OK, 1.0), (FAILED, 2.0)])
    await history.runs("beta", [(OK, 3.0)])
    monitor = _monitor(history.db)
    every = _by_id(await monitor.read_all())
    assert await monitor.read("alpha") == every["alpha"]
    assert await monitor.read("beta") == every["beta"]


async def test_reading_an_unknown_agent_names_the_valid_ids(history: History) -> None:
    with pytest.raises(NotFoundError) as caught:
        await _monitor(history.db).read("wizard")
    assert caught.value.details["choices"] == ["alpha", "beta"]


async def test_a_status_change_publishes_an_agent_status_notice(history: History) -> None:
    published: list[Notice] = []
    monitor = AgentMonitor(history.db, _registry(), None, Metrics(), publish=published.append)
    await monitor.refresh()
    assert published == []  # the first computation only sets the baseline
    live = await history.task([("a1", "alpha")])
    await history.start(live, "a1")
    await monitor.refresh()
    await monitor.refresh()  # unchanged: nothing more
    assert [
        (n.channel, n.type, n.data["agent_id"], n.data["status"], n.data["previous"]) for n in published
    ] == [("agents", "agent.status", "alpha", "processing", "idle")]
    assert published[0].data["load"] == 1
