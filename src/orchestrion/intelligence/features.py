"""Features of a submission: what is known before a task runs.

Every feature is a float in a flat dict, so models trained on an older vocabulary keep working (a
feature they never saw is ignored; one they expect and is absent counts as 0). Names:

- ``type=<task type>``, ``target=<none|url|ip|host|host_port>``, ``agent=<id>``, ``route=<name>``:
  indicators (routes: the share of the team's agents on that route);
- ``input_bytes_log`` (log1p of the uploaded bytes), ``input_files``, ``input_paths``, ``team_size``,
  ``priority``, ``hour`` and ``weekday`` (UTC, at submission);
- history aggregates as of submission: ``type_success`` (smoothed success rate of the type),
  ``type_runs_log``, ``type_duration_p50_log``, ``type_cost_median``, the team's smoothed success
  on the type (``team_success_min``, ``team_success_mean``), ``team_quality_mean``,
  ``team_duration_log`` and ``provider_error_rate`` (the worst LLM error rate on the team's routes
  over the 15 minutes before submission).

Counts of history (how many tasks of the type exist, how many runs an agent has) are not features:
they only grow, so a model would read them as a clock and extrapolate badly. They drive the
prediction's confidence instead.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from orchestrion.intelligence.history import History

TARGET_KINDS = ("none", "url", "ip", "host", "host_port")

# Numeric features a risk factor can name, with the words used for them.
NUMERIC_LABELS: Mapping[str, str] = {
    "input_bytes_log": "input size",
    "input_files": "number of input files",
    "input_paths": "number of input paths",
    "team_size": "team size",
    "priority": "priority",
    "hour": "hour of submission (UTC)",
    "weekday": "weekday of submission",
    "provider_error_rate": "recent LLM error rate on the team's routes",
    "team_success_min": "weakest team member's success rate on this task type",
    "team_success_mean": "team's mean success rate on this task type",
    "team_quality_mean": "team's mean report quality on this task type",
    "team_duration_log": "team's usual step duration",
    "type_success": "success rate of this task type",
}


@dataclass(frozen=True, kw_only=True)
class Submission:
    """A task as submitted, before it runs (what the intelligence layer may look at)."""

    task_type: str
    submitted_at: datetime
    target: str | None = None
    input_bytes: int = 0
    input_files: int = 0
    input_paths: int = 0
    priority: int = 5
    agents: tuple[str, ...] | None = None
    required_capabilities: tuple[str, ...] = ()


def target_kind(target: str | None) -> str:
    """Classify a target as written: none, url, ip, host or host_port."""
    text = (target or "").strip()
    if not text:
        return "none"
    if "://" in text:
        return "url"
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        pass
    else:
        return "ip"
    host, sep, port = text.rpartition(":")
    if sep and host and port.isdigit():
        return "host_port"
    return "host"


def build_features(
    submission: Submission,
    *,
    team: Sequence[str],
    routes: Mapping[str, str],
    history: History,
) -> dict[str, float]:
    """The feature dict of a submission with its team.

    Args:
        submission: The task as submitted.
        team: The specialists chosen for it.
        routes: Agent id -> the LLM route it calls.
        history: Aggregates as of now.
    """
    at = submission.submitted_at
    features: dict[str, float] = {
        f"type={submission.task_type}": 1.0,
        f"target={target_kind(submission.target)}": 1.0,
        "input_bytes_log": math.log1p(max(0, submission.input_bytes)),
        "input_files": float(submission.input_files),
        "input_paths": float(submission.input_paths),
        "team_size": float(len(team)),
        "priority": float(submission.priority),
        "hour": float(at.hour),
        "weekday": float(at.weekday()),
    }
    team_routes = [routes.get(agent, "default") for agent in team]
    for agent in team:
        features[f"agent={agent}"] = 1.0
    for route in set(team_routes):
        features[f"route={route}"] = team_routes.count(route) / max(1, len(team_routes))

    type_stats = history.type_stats(submission.task_type)
    features["type_success"] = type_stats.success_rate
    p50 = type_stats.duration_quantile(0.5)
    features["type_duration_p50_log"] = math.log1p(p50) if p50 is not None else 0.0
    features["type_cost_median"] = type_stats.cost_median() or 0.0

    members = [history.agent_stats(agent, submission.task_type) for agent in team]
    if members:
        rates = [m.success_rate for m in members]
        features["team_success_min"] = min(rates)
        features["team_success_mean"] = sum(rates) / len(rates)
        qualities = [q for m in members if (q := m.quality_mean) is not None]
        features["team_quality_mean"] = sum(qualities) / len(qualities) if qualities else 0.0
        durations = [d for m in members if (d := m.duration_mean) is not None]
        features["team_duration_log"] = math.log1p(sum(durations) / len(durations)) if durations else 0.0
    features["provider_error_rate"] = history.team_error_rate(team_routes)
    return features
