"""The server's health in one word, from the alert rules: healthy, degraded or stressed.

- ``stressed``: a ``critical`` rule's condition holds now (its threshold is passed at the latest
  sample, before its `for` duration has run: CPU, memory or disk nearly exhausted, a large task
  backlog with the default rules), or a ``critical`` alert is firing.
- ``degraded``: otherwise, a ``warning`` rule's condition holds now or a ``warning`` alert is firing
  (with the default rules: high CPU, memory or disk, an open LLM circuit, a high task failure rate,
  slow tasks, a backlog, a failing or slow agent), or an engine is overloaded (every one of its
  slots busy and runs waiting for it) or in error (its last run crashed).
- ``healthy``: neither. ``info`` rules never change the health.

Each condition is a reason, one sentence each, stressed ones first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from orchestrion.engines.status import EngineState, EngineStatus
from orchestrion.monitoring.alert_evaluator import Breach, Labels, format_labels
from orchestrion.monitoring.alert_rules import AlertRule

HealthStatus = Literal["healthy", "degraded", "stressed"]


@dataclass(frozen=True, kw_only=True)
class Health:
    """The health and why.

    Attributes:
        status: ``healthy``, ``degraded`` or ``stressed``.
        reasons: The conditions behind it (empty when healthy).
    """

    status: HealthStatus
    reasons: tuple[str, ...]


def assess_health(
    breaches: Sequence[Breach],
    firing: Sequence[tuple[AlertRule, Labels, int | None]],
    engines: Sequence[EngineStatus] = (),
) -> Health:
    """The health from the rule conditions holding now, the alerts firing and the engines' states."""
    reasons: dict[str, list[str]] = {"critical": [], "warning": []}
    for engine in engines:
        if engine.state is EngineState.OVERLOADED:
            reasons["warning"].append(
                f"engine {engine.engine} is overloaded: {engine.running} running (limit "
                f"{engine.concurrency}), {engine.queued} waiting"
            )
        elif engine.state is EngineState.ERROR:
            reasons["warning"].append(f"engine {engine.engine} is in error: {engine.error}")
    seen: set[tuple[str, Labels]] = set()
    for breach in breaches:
        rule = breach.rule
        if rule.severity not in reasons:
            continue
        seen.add((rule.name, breach.labels))
        reasons[rule.severity].append(
            f"{rule.name}: {rule.metric}{format_labels(breach.labels)} is {breach.value:.4g} "
            f"({rule.comparison} {rule.threshold:g})"
        )
    for rule, labels, alert_id in firing:
        if rule.severity not in reasons or (rule.name, labels) in seen:
            continue
        which = f" (alert {alert_id})" if alert_id is not None else ""
        reasons[rule.severity].append(f"{rule.name}{format_labels(labels)} is firing{which}")
    status: HealthStatus = (
        "stressed" if reasons["critical"] else "degraded" if reasons["warning"] else "healthy"
    )
    return Health(status=status, reasons=tuple(reasons["critical"] + reasons["warning"]))
