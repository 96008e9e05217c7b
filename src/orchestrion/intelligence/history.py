"""What the store says about past tasks, aggregated for features, priors and the selector.

A `History` holds, per task type, recent outcomes (success, duration, cost), and per agent and task
type a Beta posterior over its reward (a succeeded step earns the task's report quality, a failed one
0), its run count and mean duration. It is loaded from the store in one pass (`load_history`) and then
updated in place as this process observes outcomes (`apply`); a periodic reload picks up what other
workers finished.

Recent LLM error rates per route come from the call ledger separately (`route_error_rate`), because
they move faster than task outcomes.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from orchestrion.domain.intelligence import Outcome
from orchestrion.store.llm_calls import percentile

# Prior of a task type's success: Beta(4, 1), a mean of 0.8 worth five tasks, which history overrides.
TYPE_ALPHA = 4.0
TYPE_BETA = 1.0
# Prior of an agent's reward on a type: uniform, Beta(1, 1).
AGENT_ALPHA = 1.0
AGENT_BETA = 1.0
RECENT = 200


@dataclass(kw_only=True)
class TypeStats:
    """Recent outcomes of one task type (newest last, at most `RECENT`)."""

    outcomes: deque[bool] = field(default_factory=lambda: deque(maxlen=RECENT))
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT))
    costs: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT))

    @property
    def n(self) -> int:
        """Finished tasks counted."""
        return len(self.outcomes)

    @property
    def success_rate(self) -> float:
        """Posterior mean of Beta(TYPE_ALPHA + successes, TYPE_BETA + failures)."""
        successes = sum(self.outcomes)
        return (TYPE_ALPHA + successes) / (TYPE_ALPHA + TYPE_BETA + self.n)

    def duration_quantile(self, q: float) -> float | None:
        """The nearest-rank quantile of recent durations (None without history)."""
        return percentile(sorted(self.durations), q)

    def cost_median(self) -> float | None:
        """Median USD of recent tasks (None without history)."""
        return statistics.median(self.costs) if self.costs else None


@dataclass(kw_only=True)
class AgentStats:
    """One agent on one task type."""

    runs: int = 0
    successes: int = 0
    reward: float = 0.0
    quality_sum: float = 0.0
    quality_n: int = 0
    duration_sum: float = 0.0

    @property
    def alpha(self) -> float:
        """Beta posterior alpha of the reward."""
        return AGENT_ALPHA + self.reward

    @property
    def beta(self) -> float:
        """Beta posterior beta of the reward."""
        return AGENT_BETA + self.runs - self.reward

    @property
    def success_rate(self) -> float:
        """Smoothed success rate, (1 + successes) / (2 + runs)."""
        return (1.0 + self.successes) / (2.0 + self.runs)

    @property
    def quality_mean(self) -> float | None:
        """Mean report quality of the tasks it succeeded in."""
        return self.quality_sum / self.quality_n if self.quality_n else None

    @property
    def duration_mean(self) -> float | None:
        """Mean step duration in seconds."""
        return self.duration_sum / self.runs if self.runs else None


class History:
    """Aggregates of past outcomes; cheap to query, updated in place."""

    def __init__(self, outcomes: Iterable[Outcome] = (), *, route_errors: Mapping[str, float] | None = None):
        self.types: dict[str, TypeStats] = {}
        self.agents: dict[tuple[str, str], AgentStats] = {}
        self.route_errors: dict[str, float] = dict(route_errors or {})
        self.observed = 0
        for outcome in outcomes:
            self.apply(outcome)

    def apply(self, outcome: Outcome) -> None:
        """Count a finished task (cancelled tasks are not outcomes and are ignored)."""
        if outcome.status == "cancelled":
            return
        self.observed += 1
        stats = self.types.setdefault(outcome.task_type, TypeStats())
        stats.outcomes.append(outcome.succeeded)
        if outcome.duration_seconds is not None:
            stats.durations.append(outcome.duration_seconds)
        stats.costs.append(outcome.cost_usd)
        for run in outcome.agents:
            agent = self.agents.setdefault((run.agent_id, outcome.task_type), AgentStats())
            agent.runs += 1
            agent.duration_sum += run.duration_seconds
            if run.succeeded:
                agent.successes += 1
                quality = outcome.quality if outcome.quality is not None else 1.0
                agent.reward += min(1.0, max(0.0, quality))
                if outcome.quality is not None:
                    agent.quality_sum += outcome.quality
                    agent.quality_n += 1

    def type_stats(self, task_type: str) -> TypeStats:
        """Stats of a type (empty when unseen)."""
        return self.types.get(task_type) or TypeStats()

    def agent_stats(self, agent_id: str, task_type: str) -> AgentStats:
        """Stats of an agent on a type (empty when unseen)."""
        return self.agents.get((agent_id, task_type)) or AgentStats()

    def team_error_rate(self, routes: Sequence[str]) -> float:
        """The worst recent LLM error rate among the routes a team uses (0 without calls)."""
        return max((self.route_errors.get(r, 0.0) for r in routes), default=0.0)
