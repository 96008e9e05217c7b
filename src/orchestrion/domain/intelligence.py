"""What the intelligence layer decides and explains: risk factors, agent selection, model records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, kw_only=True)
class RiskFactor:
    """A feature of the submission that lowered its predicted success.

    Attributes:
        feature: The feature's name (see `intelligence/features.py`).
        value: Its value for this task.
        impact: How much it moved the success probability (negative: lowered it), found by setting
            the feature to its typical value and predicting again.
        message: The same, in words.
    """

    feature: str
    value: float
    impact: float
    message: str


@dataclass(frozen=True, kw_only=True)
class AgentScore:
    """One candidate agent as the selector saw it."""

    agent_id: str
    runs: float
    success_mean: float
    quality_mean: float
    sample: float
    load: int
    score: float
    chosen: bool
    reason: str


@dataclass(frozen=True, kw_only=True)
class Selection:
    """The team decision for a task and why.

    Attributes:
        strategy: ``thompson`` (sampled from each candidate's posterior), ``explicit`` (the request
            named its agents) or ``only_candidates`` (no choice to make).
        team: The chosen specialists, in plan order.
        candidates: Every agent considered, chosen or not, with its figures.
        required_capabilities: Capabilities the team had to cover.
        reasons: One sentence per decision.
    """

    strategy: str
    team: tuple[str, ...]
    candidates: tuple[AgentScore, ...] = ()
    required_capabilities: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ModelRecord:
    """One trained outcome model in the registry, promoted or not."""

    version: int
    trained_at: datetime
    sample_count: int
    holdout_count: int
    metrics: dict[str, Any] = field(default_factory=dict)
    promoted: bool = False
    decision: str = ""
    training_seconds: float = 0.0


@dataclass(frozen=True, kw_only=True)
class AgentOutcome:
    """One agent's step in a finished task."""

    agent_id: str
    succeeded: bool
    duration_seconds: float


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """A finished task, as the intelligence layer learns from it."""

    task_id: str
    task_type: str
    status: str
    succeeded: bool
    duration_seconds: float | None
    cost_usd: float
    quality: float | None
    finished_at: datetime
    agents: tuple[AgentOutcome, ...] = ()
