"""Engine rules: which engine runs a task type, what it falls back to, and how many runs each takes.

A rule maps a task type to a primary engine and ordered fallbacks. At submission the coordinator
takes the caller's preference when it names one of the rule's engines, else the primary; when that
engine has no free slot in this process (its running plus waiting runs reach its limit), the first
fallback that has one takes the task instead. Every engine executes plans the same way (a DAG of
checkpointed steps); they differ in their limits, so a fallback trades the primary's capacity and
step concurrency for a start now.

Rules and limits come from defaults, overridable by `ORCHESTRION_ENGINE_RULES`
(``type=primary>fallback>...`` pairs, comma-separated) and `ORCHESTRION_ENGINE_MAX_CONCURRENCY`
(``engine=n`` pairs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from orchestrion.exceptions import ConfigurationError, UnknownChoiceError, ValidationError

ENGINES = ("team", "parallel", "creative", "recall")
"""Every engine, in the order they are shown."""

DEFAULT_RULES: dict[str, tuple[str, ...]] = {
    "parallel_processing": ("parallel", "team"),
    "batch_operation": ("parallel", "team"),
    "concurrent_analysis": ("parallel", "team"),
    "creative_generation": ("creative", "team"),
    "brainstorming": ("creative", "team"),
    "innovation": ("creative", "team"),
    "memory_query": ("recall", "team"),
    "knowledge_retrieval": ("recall", "team"),
    "context_search": ("recall", "team"),
}
"""Task type -> (primary, fallbacks...). Types without a rule run on the team engine alone."""


@dataclass(frozen=True, kw_only=True)
class EngineRule:
    """Where a task type runs: the primary engine, then fallbacks in order."""

    task_type: str
    engines: tuple[str, ...]

    @property
    def primary(self) -> str:
        """The engine tried first."""
        return self.engines[0]

    @property
    def fallbacks(self) -> tuple[str, ...]:
        """The engines tried when the primary has no free slot."""
        return self.engines[1:]


@dataclass(frozen=True, kw_only=True)
class EngineChoice:
    """The coordinator's decision for one submission."""

    engine: str
    rule: EngineRule
    reason: str
    fell_back: bool = False


Load = Callable[[str], tuple[int, int]]
"""An engine's (running, waiting) runs in this process."""


class EngineRules:
    """The rules and per-engine limits.

    Args:
        rules: Task type -> engines (primary first).
        limits: Engine -> runs it executes at once in this process.
    """

    def __init__(self, rules: Mapping[str, tuple[str, ...]], limits: Mapping[str, int]) -> None:
        self._rules = {t: EngineRule(task_type=t, engines=tuple(e)) for t, e in rules.items()}
        self.limits = dict(limits)

    def rule(self, task_type: str) -> EngineRule:
        """The rule of `task_type` (the team engine alone when it has none)."""
        return self._rules.get(task_type) or EngineRule(task_type=task_type, engines=("team",))

    def rules(self) -> list[EngineRule]:
        """Every explicit rule, by task type."""
        return [self._rules[t] for t in sorted(self._rules)]

    def has_capacity(self, engine: str, load: Load) -> bool:
        """Whether a run submitted now to `engine` would start without waiting for one of its slots."""
        running, waiting = load(engine)
        return running + waiting < self.limits.get(engine, 1)

    def choose(self, task_type: str, *, preference: str | None, load: Load) -> EngineChoice:
        """The engine for a new task of `task_type`.

        Raises:
            UnknownChoiceError: `preference` is not an engine, or not one this task type may run on
                (the error lists the ones it may).
        """
        rule = self.rule(task_type)
        if preference is not None:
            if preference not in ENGINES:
                raise UnknownChoiceError(field="engine", value=preference, choices=ENGINES)
            if preference not in rule.engines:
                raise ValidationError(
                    f"engine {preference!r} does not run {task_type} tasks; "
                    f"valid choices: {', '.join(rule.engines)}",
                    field="engine",
                    choices=rule.engines,
                    details={"value": preference},
                )
            start = preference
        else:
            start = rule.primary
        if self.has_capacity(start, load):
            why = "requested" if preference else f"primary engine for {task_type}"
            return EngineChoice(engine=start, rule=rule, reason=f"{start}: {why}")
        running, waiting = load(start)
        limit = self.limits.get(start, 1)
        busy = f"{start} is at capacity ({running} running, {waiting} waiting, limit {limit})"
        for fallback in rule.engines:
            if fallback != start and self.has_capacity(fallback, load):
                return EngineChoice(
                    engine=fallback, rule=rule, reason=f"{busy}; fell back to {fallback}", fell_back=True
                )
        return EngineChoice(
            engine=start, rule=rule, reason=f"{busy}; no fallback has room, queued on {start}"
        )


def parse_rules(text: str | None) -> dict[str, tuple[str, ...]]:
    """Default rules updated with ``type=primary>fallback`` pairs (ConfigurationError when malformed)."""
    rules = dict(DEFAULT_RULES)
    for entry in _pairs(text, "ORCHESTRION_ENGINE_RULES"):
        task_type, _, chain = entry.partition("=")
        engines = tuple(e.strip() for e in chain.split(">") if e.strip())
        if not task_type.strip() or not engines:
            raise ConfigurationError(
                f"ORCHESTRION_ENGINE_RULES: {entry!r} is not task_type=primary>fallback...",
                details={"field": "ORCHESTRION_ENGINE_RULES"},
            )
        _check_engines(engines, "ORCHESTRION_ENGINE_RULES")
        rules[task_type.strip()] = engines
    return rules


def parse_limits(text: str | None, *, defaults: Mapping[str, int]) -> dict[str, int]:
    """Default limits updated with ``engine=n`` pairs (ConfigurationError when malformed)."""
    limits = dict(defaults)
    for entry in _pairs(text, "ORCHESTRION_ENGINE_MAX_CONCURRENCY"):
        engine, _, number = entry.partition("=")
        _check_engines([engine.strip()], "ORCHESTRION_ENGINE_MAX_CONCURRENCY")
        try:
            value = int(number)
        except ValueError:
            value = 0
        if value < 1:
            raise ConfigurationError(
                f"ORCHESTRION_ENGINE_MAX_CONCURRENCY: {entry!r} needs a whole number of runs >= 1",
                details={"field": "ORCHESTRION_ENGINE_MAX_CONCURRENCY"},
            )
        limits[engine.strip()] = value
    return limits


def _pairs(text: str | None, name: str) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _check_engines(engines: Iterable[str], setting: str) -> None:
    for engine in engines:
        if engine not in ENGINES:
            raise ConfigurationError(
                f"{setting}: unknown engine {engine!r}; engines are {', '.join(ENGINES)}",
                details={"field": setting, "choices": list(ENGINES)},
            )
