"""The Creative engine: N candidates from different angles and temperatures, then a judge.

A creative task's plan (docs/creative.md)::

    candidate-0 ... candidate-(N-1)  ->  judge                      creative_generation, brainstorming
    recall -> analysis-<agent>... -> candidate-0 ... -> judge       innovation (the hybrid pipeline)

This module checks a submission's options and builds the plan; the steps' executors are
`IdeaGenerator` (`engines/ideas.py`: one candidate per step) and `IdeaJudge` (`engines/judge.py`:
rubric, ranking, diversity), re-exported here. The hybrid pipeline's specialist steps are run by
the team's `SpecialistExecutor`: the `recall` step as a ``context_search``, the ``analysis-*``
steps under `options.analysis_task_type`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrion.agents.creative import CREATIVE_TASK_TYPE_IDS, IDEA_GENERATOR, IDEA_JUDGE, INNOVATION
from orchestrion.agents.registry import AgentRegistry
from orchestrion.domain.intelligence import Selection
from orchestrion.domain.tasks import Plan, Step
from orchestrion.engines.ideas import TEMPERATURE_HIGH, TEMPERATURE_LOW, IdeaGenerator, variant_for
from orchestrion.engines.judge import IdeaJudge
from orchestrion.engines.steps import ANALYSIS_PREFIX, RECALL_STEP, candidate_step_id
from orchestrion.exceptions import UnknownChoiceError, ValidationError

__all__ = [
    "ANALYSIS_PREFIX",
    "JUDGE_STEP",
    "RECALL_AGENT",
    "RECALL_STEP",
    "IdeaGenerator",
    "IdeaJudge",
    "build_creative_plan",
    "validate_creative",
]

RECALL_AGENT = "memory_librarian"
"""The specialist of the hybrid pipeline's `recall` step (it searches the task owner's memory)."""

JUDGE_STEP = "judge"
DEFAULT_CANDIDATES = 5
MIN_CANDIDATES = 2
MAX_BRIEF_CHARS = 2000
CREATIVE_OPTIONS = ("candidates", "brief", "analysis_task_type", "concurrency")
"""The options every creative task may carry (`concurrency` lowers the engine's step concurrency)."""
RECALL_OPTIONS = ("query", "k", "tags")
"""The options innovation tasks also take: the recall step's search (docs/recall.md)."""


def validate_creative(
    registry: AgentRegistry,
    *,
    task_type: str,
    options: Mapping[str, Any],
    max_candidates: int,
    has_inputs: bool | None = None,
) -> dict[str, Any]:
    """Check a creative task's options and return them normalised (`candidates` always set).

    Args:
        registry: The agents and task types (for `analysis_task_type`).
        task_type: One of the creative task types.
        options: The submission's `options`.
        max_candidates: The most candidates a task may ask for (ORCHESTRION_CREATIVE_MAX_CANDIDATES).
        has_inputs: Whether the task has files or paths, when the caller knows; an analysis stage
            without inputs is refused.

    Raises:
        ValidationError: An option creative tasks do not take, `options.candidates` outside
            2..max_candidates, a blank or too long `options.brief`, `analysis_task_type` on a type
            other than innovation, or an analysis stage without inputs.
        UnknownChoiceError: A task type that is not creative, or an `analysis_task_type` that is not
            a registered task type whose agents work on inputs (the valid ones are listed).
    """
    if task_type not in CREATIVE_TASK_TYPE_IDS:
        raise UnknownChoiceError(field="task_type", value=task_type, choices=CREATIVE_TASK_TYPE_IDS)
    allowed = CREATIVE_OPTIONS + (RECALL_OPTIONS if task_type == INNOVATION else ())
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValidationError(
            f"options.{unknown[0]} does not apply to {task_type} tasks; they take: {', '.join(allowed)}",
            field=f"options.{unknown[0]}",
            choices=allowed,
        )
    normalised = dict(options)
    high = max(MIN_CANDIDATES, max_candidates)
    candidates = options.get("candidates", min(DEFAULT_CANDIDATES, high))
    if (
        isinstance(candidates, bool)
        or not isinstance(candidates, int)
        or not MIN_CANDIDATES <= candidates <= high
    ):
        raise ValidationError(
            f"options.candidates must be an integer from {MIN_CANDIDATES} to {high}, got {candidates!r}",
            field="options.candidates",
            details={"minimum": MIN_CANDIDATES, "maximum": high},
        )
    normalised["candidates"] = candidates
    brief = options.get("brief")
    if brief is not None:
        if not isinstance(brief, str) or not brief.strip():
            raise ValidationError("options.brief must be non-blank text", field="options.brief")
        if len(brief.strip()) > MAX_BRIEF_CHARS:
            raise ValidationError(
                f"options.brief is {len(brief.strip())} characters; the limit is {MAX_BRIEF_CHARS}",
                field="options.brief",
                details={"maximum": MAX_BRIEF_CHARS},
            )
        normalised["brief"] = brief.strip()
    analysis = options.get("analysis_task_type")
    if analysis is not None:
        if task_type != INNOVATION:
            raise ValidationError(
                f"options.analysis_task_type applies to {INNOVATION} tasks only, not {task_type}",
                field="options.analysis_task_type",
            )
        choices = sorted(t.id for t in registry.task_types.values() if t.needs_inputs)
        if not isinstance(analysis, str) or analysis not in choices:
            raise UnknownChoiceError(field="options.analysis_task_type", value=str(analysis), choices=choices)
        if has_inputs is False:
            raise ValidationError(
                f"options.analysis_task_type {analysis} analyses input files; give files or paths",
                field="inputs",
            )
    return normalised


def _step(
    registry: AgentRegistry, step_id: str, agent_id: str, timeout: float, retries: int, **extra: Any
) -> Step:
    spec = registry.agent(agent_id)
    return Step(
        id=step_id,
        agent_id=agent_id,
        timeout_seconds=spec.timeout_seconds or timeout,
        max_retries=spec.max_retries if spec.max_retries is not None else retries,
        **extra,
    )


def build_creative_plan(
    registry: AgentRegistry,
    *,
    task_type: str,
    options: Mapping[str, Any],
    step_timeout: float,
    max_retries: int,
    selection: Selection,
    analysis_agents: Sequence[str] = (),
) -> Plan:
    """The creative DAG: [recall -> analysis-* ->] candidate-0..N-1 -> judge.

    `options` are the normalised options of `validate_creative`. For innovation, `analysis_agents`
    (default: the default agents of `options.analysis_task_type`) analyse the inputs after the
    recall step. Every join waits for all its dependencies to finish (trigger ``all_done``), so a
    failed recall or analysis never blocks the ideas, and a failed candidate never blocks the judge.
    The recall step is left out when no `memory_librarian` agent is registered.
    """
    count = int(options.get("candidates", DEFAULT_CANDIDATES))
    steps: list[Step] = []
    reasons = list(selection.reasons)
    upstream: list[str] = []
    if task_type == INNOVATION:
        if RECALL_AGENT in registry.agents:
            steps.append(_step(registry, RECALL_STEP, RECALL_AGENT, step_timeout, max_retries))
            upstream.append(RECALL_STEP)
        else:
            reasons.append(f"no {RECALL_AGENT} agent is registered: the pipeline starts without recall")
        analysis_type = options.get("analysis_task_type")
        agents = list(analysis_agents)
        if not agents and isinstance(analysis_type, str):
            agents = list(registry.task_type(analysis_type).default_agents)
        for agent_id in agents:
            steps.append(
                _step(
                    registry,
                    f"{ANALYSIS_PREFIX}{agent_id}",
                    agent_id,
                    step_timeout,
                    max_retries,
                    depends_on=tuple(upstream[:1]),
                    trigger="all_done",
                )
            )
        upstream += [f"{ANALYSIS_PREFIX}{a}" for a in agents]
        if agents:
            reasons.append(f"analysis of the inputs as {analysis_type} by {', '.join(agents)}")
    for index in range(count):
        steps.append(
            _step(
                registry,
                candidate_step_id(index),
                IDEA_GENERATOR.id,
                step_timeout,
                max_retries,
                depends_on=tuple(upstream),
                trigger="all_done",
            )
        )
    steps.append(
        _step(
            registry,
            JUDGE_STEP,
            IDEA_JUDGE.id,
            step_timeout,
            max_retries,
            depends_on=tuple(candidate_step_id(i) for i in range(count)),
            trigger="all_done",
        )
    )
    angles = ", ".join(dict.fromkeys(variant_for(i).name for i in range(count)))
    reasons.append(
        f"{count} candidates ({angles}) at temperatures {TEMPERATURE_LOW}..{TEMPERATURE_HIGH}, then a judge"
    )
    plan = Plan(steps=tuple(steps), reasons=tuple(reasons), selection=selection)
    plan.validate()
    return plan
