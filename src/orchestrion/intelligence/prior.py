"""The Bayesian prior: sensible predictions from the first task, and the baseline every model must beat.

Success: the posterior mean of Beta(4 + successes, 1 + failures) over the latest finished tasks of the
type (a prior of 0.8 worth five tasks, which history overrides quickly). Duration: the median and 90th
percentile of recent durations of the type; with no history, 15 s per planned step (p50) and four
times that (p90). Cost: the median USD the same recent tasks spent on LLM calls (0 without history).
Confidence: n / (n + 10), one half after ten tasks of the type.

Risk factors: team members whose smoothed success rate on the type (at least three runs) is below
the type's, each with the gap as its impact.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrion.domain.intelligence import RiskFactor
from orchestrion.domain.tasks import Prediction
from orchestrion.intelligence.history import History

COLD_STEP_SECONDS = 15.0
MIN_AGENT_RUNS = 3


def predict_prior(history: History, task_type: str, *, team: Sequence[str], steps: int) -> Prediction:
    """The prior's prediction for a task of `task_type` with `team` and a plan of `steps` steps."""
    stats = history.type_stats(task_type)
    p50 = stats.duration_quantile(0.5)
    p90 = stats.duration_quantile(0.9)
    if p50 is None or p90 is None:
        p50 = COLD_STEP_SECONDS * steps
        p90 = 4 * p50
    n = stats.n
    return Prediction(
        success_probability=round(stats.success_rate, 4),
        duration_p50_seconds=round(p50, 3),
        duration_p90_seconds=round(max(p90, p50), 3),
        cost_usd=round(stats.cost_median() or 0.0, 6),
        confidence=round(n / (n + 10), 4),
        sample_size=n,
        model="prior",
        risk_factors=tuple(prior_risk_factors(history, task_type, team)),
    )


def prior_risk_factors(history: History, task_type: str, team: Sequence[str]) -> list[RiskFactor]:
    """Team members that do worse on this type than the type does overall."""
    baseline = history.type_stats(task_type).success_rate
    factors = []
    for agent in team:
        stats = history.agent_stats(agent, task_type)
        if stats.runs < MIN_AGENT_RUNS or stats.success_rate >= baseline:
            continue
        impact = stats.success_rate - baseline
        factors.append(
            RiskFactor(
                feature=f"agent={agent}",
                value=round(stats.success_rate, 4),
                impact=round(impact, 4),
                message=(
                    f"agent {agent} succeeds {stats.success_rate:.0%} on {task_type} over {stats.runs} runs, "
                    f"against {baseline:.0%} for the type"
                ),
            )
        )
    factors.sort(key=lambda f: f.impact)
    return factors
