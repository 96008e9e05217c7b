"""A lab for the intelligence layer: finished tasks written through the real store repositories.

`Lab.run` submits a task the way the coordinator does (assess, plan, insert with the prediction in
one transaction), then finishes it without running agents (status, timestamps, agent runs, report
quality, LLM cost) and lets the intelligence layer observe it. Clocks are synthetic and advance a
few minutes per task, so histories are deterministic and ordered.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrion.agents.builtin import BUILTIN_AGENTS, BUILTIN_TASK_TYPES
from orchestrion.agents.registry import AgentRegistry
from orchestrion.agents.spec import AgentSpec, TaskTypeSpec
from orchestrion.domain.llm import LLMCall
from orchestrion.domain.tasks import AgentRun, QualityScore, Result, StepStatus, Task, TaskStatus
from orchestrion.engines.planner import build_team_plan
from orchestrion.intelligence.features import Submission
from orchestrion.intelligence.service import Assessment, Intelligence
from orchestrion.monitoring.metrics import Metrics
from orchestrion.store import llm_calls as call_store
from orchestrion.store import runs as run_store
from orchestrion.store import tasks as task_store
from orchestrion.store import users as user_store
from orchestrion.store.database import Database, WriteTx
from orchestrion.tools.registry import build_builtin_tools

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def builtin_registry() -> AgentRegistry:
    """The registry `Runtime.create` builds: built-in agents and task types."""
    registry = AgentRegistry(tool_names=build_builtin_tools())
    for agent in BUILTIN_AGENTS:
        registry.register_agent(agent)
    for task_type in BUILTIN_TASK_TYPES:
        registry.register_task_type(task_type)
    return registry


def add_team(
    registry: AgentRegistry,
    task_type: str,
    agents: Mapping[str, Sequence[str]],
    *,
    default: Sequence[str],
) -> None:
    """Register tool-less specialists (id -> capabilities) for a new task type."""
    for agent_id, capabilities in agents.items():
        registry.register_agent(
            AgentSpec(
                id=agent_id,
                name=agent_id,
                description="test agent",
                capabilities=tuple(capabilities),
                task_types=(task_type,),
            )
        )
    registry.register_task_type(TaskTypeSpec(id=task_type, description="test", default_agents=tuple(default)))


@dataclass
class Lab:
    """A migrated database, a registry, metrics and the intelligence layer under test."""

    db: Database
    registry: AgentRegistry
    metrics: Metrics
    intelligence: Intelligence
    owner_id: str
    build: Callable[..., Intelligence]
    clock: datetime = START
    task_ids: list[str] = field(default_factory=list)

    def tick(self, minutes: float = 7.0) -> datetime:
        self.clock += timedelta(minutes=minutes)
        return self.clock

    async def submit(
        self,
        task_type: str = "code_analysis",
        *,
        input_bytes: int = 100,
        agents: Sequence[str] | None = None,
        required: Sequence[str] = (),
        target: str | None = None,
        intelligence: Intelligence | None = None,
    ) -> tuple[Task, Assessment]:
        """Assess, plan and persist a queued task as `Coordinator.submit` does."""
        brain = intelligence or self.intelligence
        submission = Submission(
            task_type=task_type,
            submitted_at=self.tick(),
            target=target,
            input_bytes=input_bytes,
            input_files=1 if input_bytes else 0,
            agents=tuple(agents) if agents else None,
            required_capabilities=tuple(required),
        )
        assessment = await brain.assess(submission)
        plan = build_team_plan(
            self.registry,
            assessment.selection.team,
            selection=assessment.selection,
            step_timeout=60.0,
            max_retries=0,
        )
        task = Task(
            id=str(uuid.uuid4()),
            owner_id=self.owner_id,
            title="lab task",
            task_type=task_type,
            target=target,
            inputs={"files": [], "paths": []},
            priority=5,
            agents=assessment.selection.team,
            status=TaskStatus.QUEUED,
            plan=plan,
            prediction=assessment.prediction,
            created_at=submission.submitted_at,
            queued_at=submission.submitted_at,
        )

        def persist(tx: WriteTx) -> None:
            task_store.insert_task(tx, task)
            brain.record(tx, task_id=task.id, submission=submission, assessment=assessment)

        await self.db.write(persist)
        self.task_ids.append(task.id)
        return task, assessment

    async def finish(
        self,
        task: Task,
        *,
        status: TaskStatus = TaskStatus.SUCCEEDED,
        duration: float = 30.0,
        cost: float = 0.0,
        quality: float | None = None,
        agent_ok: Mapping[str, bool] | None = None,
    ) -> None:
        """Write the final status, agent runs, report and LLM cost of a task (no agents run)."""
        started = task.created_at + timedelta(seconds=1)
        finished = started + timedelta(seconds=duration)
        ok = dict(agent_ok or {})
        team = task.agents

        def write(tx: WriteTx) -> None:
            moved = task_store.transition_task(
                tx, task.id, from_status=TaskStatus.QUEUED, status=TaskStatus.RUNNING, started_at=started
            )
            assert moved
            if status is not TaskStatus.CANCELLED:
                for agent_id in team:
                    succeeded = ok.get(agent_id, status is TaskStatus.SUCCEEDED)
                    run_store.save_run(
                        tx,
                        AgentRun(
                            task_id=task.id,
                            step_id=agent_id,
                            agent_id=agent_id,
                            status=StepStatus.SUCCEEDED if succeeded else StepStatus.FAILED,
                            duration_seconds=duration / 2,
                            error=None if succeeded else "boom",
                        ),
                    )
            if quality is not None:
                score = QualityScore(
                    coverage=quality, grounding=quality, agreement=quality, completion=quality
                )
                run_store.save_result(
                    tx,
                    Result(
                        task_id=task.id,
                        summary="lab",
                        findings=(),
                        remediation=(),
                        quality=score,
                        created_at=finished,
                    ),
                )
            if cost:
                call_store.insert_llm_calls(tx, [llm_call(task.id, cost=cost, at=started)])
            task_store.transition_task(
                tx, task.id, from_status=TaskStatus.RUNNING, status=status, finished_at=finished
            )

        await self.db.write(write)

    async def run(
        self,
        task_type: str = "code_analysis",
        *,
        status: TaskStatus = TaskStatus.SUCCEEDED,
        duration: float = 30.0,
        cost: float = 0.0,
        quality: float | None = None,
        agent_ok: Mapping[str, bool] | None = None,
        observe: bool = True,
        **submit: Any,
    ) -> Task:
        """Submit, finish and (by default) observe one task."""
        task, _ = await self.submit(task_type, **submit)
        await self.finish(
            task, status=status, duration=duration, cost=cost, quality=quality, agent_ok=agent_ok
        )
        if observe:
            await self.intelligence.observe(task.id)
        return task

    async def size_history(
        self, count: int, *, seed: int = 1, big_share: float = 0.4, signal: bool = True
    ) -> None:
        """`count` code analyses whose success and duration hinge on input size (or, without `signal`,
        on nothing: success 80% and durations drawn independently of everything)."""
        rng = random.Random(seed)
        for _ in range(count):
            big = rng.random() < big_share
            if signal:
                succeeded = rng.random() < (0.1 if big else 0.95)
                duration = (120.0 if big else 20.0) + rng.uniform(-3, 3)
            else:
                succeeded = rng.random() < 0.8
                duration = 30.0 + rng.uniform(-10, 10)
            await self.run(
                input_bytes=200_000 if big else 200,
                status=TaskStatus.SUCCEEDED if succeeded else TaskStatus.FAILED,
                duration=duration,
            )


def llm_call(task_id: str, *, cost: float, at: datetime, route: str = "default", ok: bool = True) -> LLMCall:
    """One ledger row for a task."""
    return LLMCall(
        id=uuid.uuid4().hex,
        created_at=at,
        task_id=task_id,
        step_id=None,
        route=route,
        deployment="scripted",
        provider="scripted",
        model="scripted",
        position=0,
        attempt=1,
        latency_seconds=0.1,
        input_tokens=10,
        output_tokens=10,
        cost_usd=cost,
        outcome="ok" if ok else "error",
    )


@pytest.fixture
async def make_lab(database: Database) -> AsyncIterator[Callable[..., Any]]:
    """Build a `Lab` on the migrated `database` with chosen `Intelligence` settings."""
    brains: list[Intelligence] = []

    async def build_lab(registry: AgentRegistry | None = None, **settings: Any) -> Lab:
        registry = registry or builtin_registry()
        metrics = Metrics()
        defaults: dict[str, Any] = {
            "rng": random.Random(7),
            "retrain_every": 0,
            "min_train_samples": 40,
            "refresh_seconds": 0,
            "live_ttl_seconds": 0,
        }
        defaults.update(settings)

        def build(**overrides: Any) -> Intelligence:
            brain = Intelligence(
                db=database,
                registry=registry,
                metrics=overrides.pop("metrics", metrics),
                **(defaults | overrides),
            )
            brains.append(brain)
            return brain

        user = await database.write(
            lambda tx: user_store.create_user(tx, name=f"lab-{uuid.uuid4().hex[:6]}", role="operator")
        )
        return Lab(
            db=database,
            registry=registry,
            metrics=metrics,
            intelligence=build(),
            owner_id=user.id,
            build=build,
        )

    yield build_lab
    for brain in brains:
        await brain.stop()
