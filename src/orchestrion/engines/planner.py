"""Plans: what each task type is decomposed into.

A team task is its specialists in parallel, then the reporter once they are all done; batch and
creative task types are planned by their engines' modules (`plan_task` dispatches).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrion.agents.batch import BATCH_TASK_TYPE_IDS
from orchestrion.agents.creative import CREATIVE_TASK_TYPE_IDS
from orchestrion.agents.registry import AgentRegistry
from orchestrion.domain.intelligence import Selection
from orchestrion.domain.tasks import Plan, Step
from orchestrion.engines.creative import build_creative_plan, validate_creative
from orchestrion.engines.parallel import build_parallel_plan, is_batch_task_type, validate_batch
from orchestrion.exceptions import ValidationError
from orchestrion.tools.targets import Target


def build_team_plan(
    registry: AgentRegistry,
    team: Sequence[str],
    *,
    selection: Selection,
    step_timeout: float,
    max_retries: int,
) -> Plan:
    """A fan-out/fan-in DAG: one step per specialist (no dependencies), then the reporter."""
    steps = []
    for agent_id in team:
        spec = registry.agent(agent_id)
        steps.append(
            Step(
                id=agent_id,
                agent_id=agent_id,
                timeout_seconds=spec.timeout_seconds or step_timeout,
                max_retries=spec.max_retries if spec.max_retries is not None else max_retries,
            )
        )
    reporter = registry.reporter()
    steps.append(
        Step(
            id=reporter.id,
            agent_id=reporter.id,
            depends_on=tuple(team),
            trigger="all_done",
            timeout_seconds=reporter.timeout_seconds or step_timeout,
            max_retries=reporter.max_retries if reporter.max_retries is not None else max_retries,
        )
    )
    plan = Plan(steps=tuple(steps), reasons=selection.reasons, selection=selection)
    plan.validate()
    return plan


@dataclass(frozen=True, kw_only=True)
class PlanLimits:
    """The limits plans are checked against (from Settings)."""

    step_timeout: float
    max_retries: int
    max_batch_items: int
    batch_concurrency: int
    max_candidates: int


@dataclass(frozen=True, kw_only=True)
class PlannedTask:
    """A task's plan with the normalised batch items and engine options it was built from."""

    plan: Plan
    items: list[str]
    options: dict[str, Any]


def plan_task(
    registry: AgentRegistry,
    *,
    task_type: str,
    team: Sequence[str],
    selection: Selection,
    items: Sequence[str],
    file_names: Sequence[str],
    options: Mapping[str, Any],
    limits: PlanLimits,
    parse_target: Callable[[str], Target],
) -> PlannedTask:
    """Check a submission's items and options for its task type and build its plan.

    Batch types get a map-reduce plan (`engines/parallel.py`), creative types a generate-and-judge plan
    (`engines/creative.py`, with the recall and analysis stages for the hybrid type), every other type
    the team's fan-out/fan-in plan. Items and engine options are refused where the type takes none.

    Raises:
        ValidationError: Bad items or options, naming the field (and the valid choices or the limit).
    """
    if is_batch_task_type(task_type):
        batch, batch_options = validate_batch(
            registry,
            task_type=task_type,
            items=list(items) or None,
            file_names=file_names,
            options=options,
            max_items=limits.max_batch_items,
            parse_target=parse_target,
            max_concurrency=limits.batch_concurrency,
        )
        plan = build_parallel_plan(
            registry,
            items=batch,
            options=batch_options,
            step_timeout=limits.step_timeout,
            max_retries=limits.max_retries,
            selection=selection,
        )
        return PlannedTask(plan=plan, items=batch, options=batch_options)
    if items:
        raise ValidationError(
            f"{task_type} tasks take no inputs.items; batch task types do: {', '.join(BATCH_TASK_TYPE_IDS)}",
            field="inputs.items",
            choices=BATCH_TASK_TYPE_IDS,
        )
    if task_type in CREATIVE_TASK_TYPE_IDS:
        creative = validate_creative(
            registry,
            task_type=task_type,
            options=options,
            max_candidates=limits.max_candidates,
            has_inputs=bool(file_names),
        )
        analysis_type = creative.get("analysis_task_type")
        analysis = registry.task_type(str(analysis_type)).default_agents if analysis_type else ()
        plan = build_creative_plan(
            registry,
            task_type=task_type,
            options=creative,
            step_timeout=limits.step_timeout,
            max_retries=limits.max_retries,
            selection=selection,
            analysis_agents=analysis,
        )
        return PlannedTask(plan=plan, items=[], options=creative)
    team_options = _team_options(task_type, options)
    plan = build_team_plan(
        registry, team, selection=selection, step_timeout=limits.step_timeout, max_retries=limits.max_retries
    )
    return PlannedTask(plan=plan, items=[], options=team_options)


_TEAM_OPTIONS = ("query", "k", "tags")
"""The engine options a team task may carry (the recall types read them: docs/recall.md)."""


def _team_options(task_type: str, options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(_TEAM_OPTIONS))
    if unknown:
        raise ValidationError(
            f"options.{unknown[0]} does not apply to {task_type} tasks; "
            f"they take: {', '.join(_TEAM_OPTIONS)}",
            field=f"options.{unknown[0]}",
            choices=_TEAM_OPTIONS,
        )
    return dict(options)
