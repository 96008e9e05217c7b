"""Plans: the specialists in parallel, then the reporter once they are all done."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrion.agents.registry import AgentRegistry
from orchestrion.domain.intelligence import Selection
from orchestrion.domain.tasks import Plan, Step


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
