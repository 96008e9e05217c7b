"""The alert state machine, free of I/O: registry series and a time in, fires and resolves out.

- One alert instance per rule and label set: each series of the rule's metric that carries the
  rule's `labels` is watched on its own (`orchestrion_agent_success_ratio{agent="x"}` fires for
  agent x only).
- An instance *breaches* when its value passes the threshold and the rule's `only_if` guard holds for
  the guard metric's series with the same labels (a missing guard series does not hold). It fires once
  it has breached at every evaluation for `for` seconds (at the first one when `for` is 0).
- A firing instance does not fire again (dedupe). It resolves once its value has been back past
  `clear` at every evaluation for `for` seconds; a value between `clear` and the threshold keeps it
  firing (hysteresis). A series that disappears, or whose guard stops holding, counts as clear.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from prometheus_client import CollectorRegistry

from orchestrion.monitoring.alert_rules import AlertRule, compare

Labels = tuple[tuple[str, str], ...]
"""A series' labels, sorted by name."""
Series = Mapping[str, Mapping[Labels, float]]
"""Sample name -> labels -> current value."""


def read_series(registry: CollectorRegistry) -> dict[str, dict[Labels, float]]:
    """The current value of every series in the registry (NaN values left out)."""
    series: dict[str, dict[Labels, float]] = {}
    for family in registry.collect():
        for sample in family.samples:
            if math.isnan(sample.value):
                continue
            labels = tuple(sorted((str(k), str(v)) for k, v in sample.labels.items()))
            series.setdefault(sample.name, {})[labels] = float(sample.value)
    return series


def format_labels(labels: Labels) -> str:
    """``{a="1",b="2"}``, or "" without labels."""
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}" if labels else ""


@dataclass(frozen=True, kw_only=True)
class Transition:
    """An instance that fired or resolved in an evaluation.

    Attributes:
        kind: ``fire`` or ``resolve``.
        rule: Its rule.
        labels: Its series' labels.
        value: The value that decided it (None when the series is gone).
        alert_id: The stored alert, for a resolve.
    """

    kind: Literal["fire", "resolve"]
    rule: AlertRule
    labels: Labels
    value: float | None
    alert_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class Breach:
    """A rule whose condition holds now (ignoring `for`), for one series."""

    rule: AlertRule
    labels: Labels
    value: float


@dataclass
class _Instance:
    breaching_since: datetime | None = None
    firing: bool = False
    alert_id: int | None = None
    clear_since: datetime | None = None


class AlertEvaluator:
    """The alert state machine, free of I/O: series and a time in, transitions out."""

    def __init__(self, rules: Sequence[AlertRule]) -> None:
        self.rules = list(rules)
        self._by_name = {rule.name: rule for rule in self.rules}
        self._instances: dict[tuple[str, Labels], _Instance] = {}

    def restore(self, rule_name: str, labels: Labels, alert_id: int) -> bool:
        """Mark an instance firing as stored (restart); False when no rule has that name."""
        if rule_name not in self._by_name:
            return False
        self._instances[(rule_name, labels)] = _Instance(firing=True, alert_id=alert_id)
        return True

    def bind(self, rule_name: str, labels: Labels, alert_id: int) -> None:
        """Attach the stored alert's id to an instance that just fired."""
        instance = self._instances.get((rule_name, labels))
        if instance is not None:
            instance.alert_id = alert_id

    def unfire(self, rule_name: str, labels: Labels) -> None:
        """Undo a fire that could not be stored: the next evaluation fires again if it still breaches."""
        instance = self._instances.get((rule_name, labels))
        if instance is not None:
            instance.firing = False
            instance.alert_id = None

    def firing(self) -> list[tuple[AlertRule, Labels, int | None]]:
        """The firing instances: rule, labels and stored alert id."""
        return [
            (self._by_name[name], labels, instance.alert_id)
            for (name, labels), instance in self._instances.items()
            if instance.firing
        ]

    def breaches(self, series: Series) -> list[Breach]:
        """Every watched series whose rule's condition holds now, whatever `for` says."""
        found = []
        for rule, labels, value in self._watched(series):
            if self._guard_holds(rule, labels, series) and rule.breached_by(value):
                found.append(Breach(rule=rule, labels=labels, value=value))
        return found

    def step(self, series: Series, now: datetime) -> list[Transition]:
        """Evaluate every rule at `now`; returns the instances that fired or resolved."""
        transitions: list[Transition] = []
        seen: set[tuple[str, Labels]] = set()
        for rule, labels, value in self._watched(series):
            key = (rule.name, labels)
            seen.add(key)
            instance = self._instances.setdefault(key, _Instance())
            guard = self._guard_holds(rule, labels, series)
            breaching = guard and rule.breached_by(value)
            cleared = not guard or rule.cleared_by(value)
            transitions.extend(self._advance(rule, labels, instance, value, breaching, cleared, now))
        for key, instance in list(self._instances.items()):
            if key not in seen:
                rule = self._by_name[key[0]]
                transitions.extend(self._advance(rule, key[1], instance, None, False, True, now))
        # Instances neither firing nor pending hold no state worth keeping.
        for key in [k for k, i in self._instances.items() if not i.firing and i.breaching_since is None]:
            del self._instances[key]
        return transitions

    def _watched(self, series: Series) -> Iterable[tuple[AlertRule, Labels, float]]:
        for rule in self.rules:
            for labels, value in series.get(rule.metric, {}).items():
                if rule.watches(dict(labels)):
                    yield rule, labels, value

    @staticmethod
    def _guard_holds(rule: AlertRule, labels: Labels, series: Series) -> bool:
        guard = rule.only_if
        if guard is None:
            return True
        value = series.get(guard.metric, {}).get(labels)
        return value is not None and compare(value, guard.comparison, guard.threshold)

    @staticmethod
    def _advance(
        rule: AlertRule,
        labels: Labels,
        instance: _Instance,
        value: float | None,
        breaching: bool,
        cleared: bool,
        now: datetime,
    ) -> list[Transition]:
        if not instance.firing:
            if not breaching:
                instance.breaching_since = None
                return []
            if instance.breaching_since is None:
                instance.breaching_since = now
            if (now - instance.breaching_since).total_seconds() < rule.for_seconds:
                return []
            instance.firing, instance.clear_since = True, None
            return [Transition(kind="fire", rule=rule, labels=labels, value=value)]
        if not cleared:
            instance.clear_since = None
            return []
        if instance.clear_since is None:
            instance.clear_since = now
        if (now - instance.clear_since).total_seconds() < rule.for_seconds:
            return []
        alert_id = instance.alert_id
        instance.firing, instance.alert_id = False, None
        instance.breaching_since = instance.clear_since = None
        return [Transition(kind="resolve", rule=rule, labels=labels, value=value, alert_id=alert_id)]
