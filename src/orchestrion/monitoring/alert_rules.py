"""Alert rules: what to watch, loaded from YAML (``ORCHESTRION_ALERT_RULES_FILE``, else the defaults).

A rules file holds one key, ``rules``, a list of rules::

    rules:
      - name: cpu_high                          # unique; letters, digits, `_`, `.`, `-`
        metric: orchestrion_system_cpu_percent  # a sample name of the server's metrics registry
        labels: {}                              # optional: only series with these label values
        comparison: ">"                         # >, >=, <, <=
        threshold: 85
        clear: 75                               # optional (default: threshold): resolve only once
                                                # the value is back past this, for `for` seconds
        for: 120                                # seconds the condition must hold (default 0)
        severity: warning                       # info, warning, critical (default warning)
        description: CPU usage is high          # optional, for people
        only_if:                                # optional guard on another metric, same labels
          metric: orchestrion_agent_recent_runs
          comparison: ">="
          threshold: 5

Every mistake is a `ConfigurationError` naming the source, the key path (``rules[2].comparison``)
and, for a closed set, the valid choices. A metric no registry series can have is refused by
`check_rule_metrics` once the registry is built, listing the close matches.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from prometheus_client import CollectorRegistry

from orchestrion.exceptions import ConfigurationError

Comparison = Literal[">", ">=", "<", "<="]
Severity = Literal["info", "warning", "critical"]
COMPARISONS: tuple[Comparison, ...] = (">", ">=", "<", "<=")
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
DEFAULT_RULES_SOURCE = "built-in alert rules (orchestrion/monitoring/default_alerts.yml)"

_RULE_KEYS = (
    "name",
    "metric",
    "labels",
    "comparison",
    "threshold",
    "clear",
    "for",
    "severity",
    "description",
    "only_if",
)
_GUARD_KEYS = ("metric", "comparison", "threshold")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
# The sample names each metric type exposes, by suffix of its family name.
_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum"),
    "info": ("_info",),
    "stateset": ("",),
    "untyped": ("",),
    "unknown": ("",),
}


def compare(value: float, comparison: Comparison, threshold: float) -> bool:
    """Whether `value comparison threshold` holds."""
    if comparison == ">":
        return value > threshold
    if comparison == ">=":
        return value >= threshold
    if comparison == "<":
        return value < threshold
    return value <= threshold


@dataclass(frozen=True, kw_only=True)
class RuleGuard:
    """A condition on another metric's series with the same labels; the rule only applies while it holds.

    Attributes:
        metric: The other metric.
        comparison: How its value is compared.
        threshold: What it is compared with.
    """

    metric: str
    comparison: Comparison
    threshold: float


@dataclass(frozen=True, kw_only=True)
class AlertRule:
    """One rule (fields as in the module docstring; `for` is `for_seconds`).

    Attributes:
        name: Unique name.
        metric: The sample name watched.
        labels: Label values a series must have to be watched (empty: every series of the metric).
        comparison: How the value is compared with the threshold.
        threshold: The breach threshold.
        clear: The value must be back past this (not `comparison` it) for the alert to resolve.
        for_seconds: How long the breach, and later the clearance, must last.
        severity: ``info``, ``warning`` or ``critical``.
        description: For people; the alert message starts with it.
        only_if: A guard the same-labelled series of another metric must pass, or None.
    """

    name: str
    metric: str
    labels: Mapping[str, str] = field(default_factory=dict)
    comparison: Comparison
    threshold: float
    clear: float
    for_seconds: float = 0.0
    severity: Severity = "warning"
    description: str = ""
    only_if: RuleGuard | None = None

    def breached_by(self, value: float) -> bool:
        """Whether `value` breaches the threshold."""
        return compare(value, self.comparison, self.threshold)

    def cleared_by(self, value: float) -> bool:
        """Whether `value` is back past the clear threshold."""
        return not compare(value, self.comparison, self.clear)

    def watches(self, labels: Mapping[str, str]) -> bool:
        """Whether a series with these labels is one this rule watches."""
        return all(labels.get(key) == value for key, value in self.labels.items())


def load_alert_rules(path: Path | None) -> tuple[list[AlertRule], str]:
    """The rules of `path`, or the built-in defaults when None; and where they came from.

    Raises:
        ConfigurationError: On an unreadable file, bad YAML or an invalid rule, naming the key path.
    """
    if path is None:
        text = resources.files("orchestrion.monitoring").joinpath("default_alerts.yml").read_text("utf-8")
        return parse_alert_rules(text, source=DEFAULT_RULES_SOURCE), DEFAULT_RULES_SOURCE
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _error(source, "", f"cannot read the alert rules file: {exc.strerror or exc}") from None
    return parse_alert_rules(text, source=source), source


def parse_alert_rules(text: str, *, source: str) -> list[AlertRule]:
    """Parse and validate a rules document (see the module docstring).

    Raises:
        ConfigurationError: Naming `source`, the key path and, for closed sets, the valid choices.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise _error(source, "", f"invalid YAML{at}") from None
    if data is None:
        data = {"rules": []}
    if not isinstance(data, dict):
        raise _error(source, "", "expected a mapping with a `rules:` list")
    _check_keys(data, ("rules",), source, "")
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        raise _error(source, "rules", "expected a list of rules")
    rules: list[AlertRule] = []
    names: set[str] = set()
    for index, raw in enumerate(raw_rules):
        rule = _rule(raw, source, f"rules[{index}]")
        if rule.name in names:
            raise _error(source, f"rules[{index}].name", f"duplicate rule name {rule.name!r}")
        names.add(rule.name)
        rules.append(rule)
    return rules


def check_rule_metrics(rules: Iterable[AlertRule], registry: CollectorRegistry, *, source: str) -> None:
    """Refuse rules naming metrics the registry does not have (call once every metric is registered).

    Raises:
        ConfigurationError: Naming the rule, the unknown metric and the closest known names.
    """
    known = metric_sample_names(registry)
    for rule in rules:
        wanted = [("metric", rule.metric)]
        if rule.only_if is not None:
            wanted.append(("only_if.metric", rule.only_if.metric))
        for key, metric in wanted:
            if metric in known:
                continue
            close = difflib.get_close_matches(metric, sorted(known), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise _error(
                source,
                f"rules.{rule.name}.{key}",
                f"unknown metric {metric!r}{hint}",
                choices=close,
            )


def metric_sample_names(registry: CollectorRegistry) -> set[str]:
    """Every sample name the registry's metrics can expose, whether or not they have series yet."""
    names: set[str] = set()
    for family in registry.collect():
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
        names.update(sample.name for sample in family.samples)
    return names


def _error(source: str, key: str, problem: str, **details: Any) -> ConfigurationError:
    where = f"{source}: {key}" if key else source
    return ConfigurationError(f"{where}: {problem}", details={"source": source, "key": key, **details})


def _check_keys(data: Mapping[Any, Any], allowed: tuple[str, ...], source: str, where: str) -> None:
    for key in data:
        if key not in allowed:
            path = f"{where}.{key}" if where else str(key)
            raise _error(
                source, path, f"unknown key; valid keys: {', '.join(allowed)}", choices=list(allowed)
            )


def _rule(raw: Any, source: str, where: str) -> AlertRule:
    if not isinstance(raw, dict):
        raise _error(source, where, "expected a mapping with name, metric, comparison and threshold")
    _check_keys(raw, _RULE_KEYS, source, where)
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _error(source, f"{where}.name", "required: up to 128 letters, digits, `_`, `.` or `-`")
    metric = _metric(raw.get("metric"), source, f"{where}.metric")
    comparison = _comparison(raw.get("comparison"), source, f"{where}.comparison")
    threshold = _number(raw.get("threshold"), source, f"{where}.threshold")
    clear = threshold if raw.get("clear") is None else _number(raw["clear"], source, f"{where}.clear")
    if comparison in (">", ">=") and clear > threshold:
        raise _error(
            source, f"{where}.clear", f"must be at most the threshold ({threshold:g}) for {comparison}"
        )
    if comparison in ("<", "<=") and clear < threshold:
        raise _error(
            source, f"{where}.clear", f"must be at least the threshold ({threshold:g}) for {comparison}"
        )
    for_seconds = 0.0 if raw.get("for") is None else _number(raw["for"], source, f"{where}.for")
    if for_seconds < 0:
        raise _error(source, f"{where}.for", "must be 0 or more seconds")
    severity = _severity(raw.get("severity", "warning"), source, f"{where}.severity")
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise _error(source, f"{where}.description", "expected a string")
    return AlertRule(
        name=name,
        metric=metric,
        labels=_labels(raw.get("labels"), source, f"{where}.labels"),
        comparison=comparison,
        threshold=threshold,
        clear=clear,
        for_seconds=for_seconds,
        severity=severity,
        description=description.strip(),
        only_if=_guard(raw.get("only_if"), source, f"{where}.only_if"),
    )


def _guard(raw: Any, source: str, where: str) -> RuleGuard | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _error(source, where, "expected a mapping with metric, comparison and threshold")
    _check_keys(raw, _GUARD_KEYS, source, where)
    return RuleGuard(
        metric=_metric(raw.get("metric"), source, f"{where}.metric"),
        comparison=_comparison(raw.get("comparison"), source, f"{where}.comparison"),
        threshold=_number(raw.get("threshold"), source, f"{where}.threshold"),
    )


def _metric(raw: Any, source: str, where: str) -> str:
    if not isinstance(raw, str) or not _METRIC.match(raw):
        raise _error(source, where, "required: a Prometheus metric name such as orchestrion_queue_backlog")
    return raw


def _comparison(raw: Any, source: str, where: str) -> Comparison:
    for choice in COMPARISONS:
        if raw == choice:
            return choice
    raise _error(
        source,
        where,
        f"unknown comparison {raw!r}; valid choices: {', '.join(COMPARISONS)}",
        choices=list(COMPARISONS),
    )


def _severity(raw: Any, source: str, where: str) -> Severity:
    for choice in SEVERITIES:
        if raw == choice:
            return choice
    raise _error(
        source,
        where,
        f"unknown severity {raw!r}; valid choices: {', '.join(SEVERITIES)}",
        choices=list(SEVERITIES),
    )


def _number(raw: Any, source: str, where: str) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _error(source, where, f"expected a number, not {raw!r}")
    value = float(raw)
    if value != value or value in (float("inf"), float("-inf")):
        raise _error(source, where, "expected a finite number")
    return value


def _labels(raw: Any, source: str, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _error(source, where, "expected a mapping of label names to values")
    labels: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _METRIC.match(key) or ":" in key:
            raise _error(source, f"{where}.{key}", "not a valid label name")
        if isinstance(value, dict | list) or value is None:
            raise _error(source, f"{where}.{key}", "expected a label value (a string)")
        labels[key] = str(value)
    return labels
