"""Optimisation suggestions that follow from a prediction's risk factors and the history behind them."""

from __future__ import annotations

import math
from collections.abc import Sequence

from orchestrion.domain.intelligence import RiskFactor
from orchestrion.intelligence.history import History

MIN_RUNS = 3


def suggest(
    risk_factors: Sequence[RiskFactor],
    *,
    task_type: str,
    team: Sequence[str],
    candidates: Sequence[str],
    history: History,
) -> list[str]:
    """One suggestion per actionable risk factor (agents, LLM errors, input size), strongest first."""
    out: list[str] = []
    seen_agents: set[str] = set()
    for factor in risk_factors:
        name = factor.feature
        agent: str | None = None
        if name.startswith("agent="):
            agent = name[6:]
        elif name in ("team_success_min", "team_success_mean") and team:
            agent = min(team, key=lambda a: history.agent_stats(a, task_type).success_rate)
        if agent is not None:
            if agent not in seen_agents:
                seen_agents.add(agent)
                text = _agent_advice(agent, task_type, team, candidates, history)
                if text:
                    out.append(text)
        elif name == "provider_error_rate":
            out.append(
                f"{factor.value:.0%} of the recent LLM calls on this team's routes failed: check "
                "GET /api/v1/providers, or give the route a fallback deployment"
            )
        elif name == "input_bytes_log":
            out.append(
                f"the inputs ({math.expm1(factor.value) / 1000:.0f} kB) are larger than usual for "
                f"{task_type}: smaller tasks are more likely to succeed"
            )
    return out


def _agent_advice(
    agent: str, task_type: str, team: Sequence[str], candidates: Sequence[str], history: History
) -> str | None:
    stats = history.agent_stats(agent, task_type)
    if stats.runs < MIN_RUNS:
        return None
    failure = 1 - stats.successes / stats.runs
    better = [
        (history.agent_stats(other, task_type), other)
        for other in candidates
        if other not in team and history.agent_stats(other, task_type).runs >= MIN_RUNS
    ]
    better = [(s, o) for s, o in better if s.success_rate > stats.success_rate]
    text = f"agent {agent} fails {failure:.0%} of its runs on {task_type} (n={stats.runs})"
    if not better:
        return text + "; no other agent has done better on it yet"
    best_stats, best = max(better, key=lambda item: item[0].success_rate)
    return (
        f"{text}; agent {best} succeeds {best_stats.successes / best_stats.runs:.0%} (n={best_stats.runs}): "
        f'submit with "agents": ["{best}"]'
    )
