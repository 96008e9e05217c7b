"""Tasks, plans, steps, agent runs and results."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestrion.domain.findings import Evidence, Finding
from orchestrion.domain.intelligence import RiskFactor, Selection


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class TaskStatus(enum.StrEnum):
    """Life cycle of a task (ARCHITECTURE.md, "Conventions")."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIAL = "partial"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.PARTIAL, TaskStatus.CANCELLED}
)


class StepStatus(enum.StrEnum):
    """Life cycle of one step of a plan."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


@dataclass(frozen=True, kw_only=True)
class Step:
    """One node of a plan's DAG: an agent to run once its dependencies are done.

    `trigger` says when it may start: ``all_succeeded`` (every dependency succeeded; if one fails the
    step is skipped) or ``all_done`` (every dependency finished, whatever its outcome: the reporter).
    """

    id: str
    agent_id: str
    depends_on: tuple[str, ...] = ()
    trigger: str = "all_succeeded"
    timeout_seconds: float = 300.0
    max_retries: int = 1
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class Plan:
    """A DAG of steps. Built by the planner, validated acyclic, persisted with the task."""

    steps: tuple[Step, ...]
    reasons: tuple[str, ...] = ()
    selection: Selection | None = None

    def step(self, step_id: str) -> Step:
        """Return the step with this id (KeyError when absent)."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def validate(self) -> None:
        """Raise ValueError when a dependency is unknown, duplicated or the graph has a cycle."""
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate step ids")
        known = set(ids)
        for s in self.steps:
            missing = set(s.depends_on) - known
            if missing:
                raise ValueError(f"step {s.id} depends on unknown steps {sorted(missing)}")
        visiting: set[str] = set()
        done: set[str] = set()
        deps = {s.id: s.depends_on for s in self.steps}

        def visit(node: str) -> None:
            if node in done:
                return
            if node in visiting:
                raise ValueError(f"plan has a cycle through step {node}")
            visiting.add(node)
            for d in deps[node]:
                visit(d)
            visiting.discard(node)
            done.add(node)

        for node in ids:
            visit(node)


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """What Orchestrion expects of a task before it runs."""

    success_probability: float
    duration_p50_seconds: float
    duration_p90_seconds: float
    cost_usd: float
    confidence: float
    sample_size: int
    model: str = "prior"
    model_version: int | None = None
    risk_factors: tuple[RiskFactor, ...] = ()
    suggestions: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the inverse of `from_json`)."""
        data = {k: v for k, v in self.__dict__.items() if k != "risk_factors"}
        data["risk_factors"] = [r.__dict__ for r in self.risk_factors]
        data["suggestions"] = list(self.suggestions)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Prediction:
        """Rebuild a prediction persisted by `to_json` (older rows lack the newer fields)."""
        fields = dict(data)
        fields["risk_factors"] = tuple(RiskFactor(**r) for r in fields.get("risk_factors", ()))
        fields["suggestions"] = tuple(fields.get("suggestions", ()))
        return cls(**fields)


@dataclass(frozen=True, kw_only=True)
class Task:
    """A unit of work submitted by a user."""

    id: str
    owner_id: str
    title: str
    task_type: str
    target: str | None
    inputs: dict[str, Any]
    priority: int
    agents: tuple[str, ...]
    status: TaskStatus
    budget: dict[str, Any] = field(default_factory=dict)
    deadline_seconds: float | None = None
    allow_active_scanning: bool = False
    engine: str = "team"
    plan: Plan | None = None
    prediction: Prediction | None = None
    error: str | None = None
    attempt: int = 0
    created_at: datetime
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    """One persisted tool invocation."""

    tool: str
    arguments: dict[str, Any]
    result_digest: str
    duration_seconds: float
    evidence_ids: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class AgentRun:
    """The checkpoint of one completed (or finally failed) step."""

    task_id: str
    step_id: str
    agent_id: str
    status: StepStatus
    tool_calls: tuple[ToolCall, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    findings: tuple[Finding, ...] = ()
    summary: str = ""
    provider: str | None = None
    model: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    duration_seconds: float = 0.0
    attempts: int = 1
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class QualityScore:
    """The report's quality rubric, each part in 0..1 (defined in `engines/report.py`)."""

    coverage: float
    grounding: float
    agreement: float
    completion: float

    @property
    def overall(self) -> float:
        """Weighted mean: grounding and completion weigh most, agreement least."""
        return round(
            0.3 * self.grounding + 0.3 * self.completion + 0.25 * self.coverage + 0.15 * self.agreement, 4
        )


@dataclass(frozen=True, kw_only=True)
class Result:
    """The aggregated report of a task."""

    task_id: str
    summary: str
    findings: tuple[Finding, ...]
    remediation: tuple[str, ...]
    quality: QualityScore
    stats: dict[str, Any] = field(default_factory=dict)
    created_at: datetime
