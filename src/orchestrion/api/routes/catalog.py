"""/api/v1/task-types and /api/v1/agents: what this server can do."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from orchestrion.agents.spec import AgentSpec
from orchestrion.api.deps import CallerDep, RuntimeDep
from orchestrion.api.schemas import AgentAlertPublic, AgentMetricsPublic, AgentPublic, TaskTypePublic
from orchestrion.intelligence.agent_metrics import AgentMetrics

router = APIRouter(tags=["catalog"])


def _agent(spec: AgentSpec, metrics: AgentMetrics) -> AgentPublic:
    return AgentPublic(
        id=spec.id,
        name=spec.name,
        description=spec.description,
        kind=spec.kind,
        capabilities=list(spec.capabilities),
        task_types=list(spec.task_types),
        tools=list(spec.tools),
        route=spec.route,
        metrics=_metrics(metrics),
    )


def _metrics(metrics: AgentMetrics) -> AgentMetricsPublic:
    fields = asdict(metrics)
    del fields["agent_id"]
    fields["status"] = metrics.status.value
    fields["alerts"] = [AgentAlertPublic(**alert) for alert in fields["alerts"]]
    return AgentMetricsPublic(**fields)


@router.get("/task-types", response_model=list[TaskTypePublic])
async def read_task_types(_caller: CallerDep, runtime: RuntimeDep) -> list[TaskTypePublic]:
    """Every task type with its default team and the agents able to work on it."""
    registry = runtime.registry
    return [
        TaskTypePublic(
            id=t.id,
            description=t.description,
            default_agents=list(t.default_agents),
            agents=registry.specialists_for(t.id),
            needs_inputs=t.needs_inputs,
            needs_target=t.needs_target,
            input_extensions=list(t.input_extensions),
        )
        for t in sorted(registry.task_types.values(), key=lambda t: t.id)
    ]


@router.get("/agents", response_model=list[AgentPublic])
async def read_agents(_caller: CallerDep, runtime: RuntimeDep) -> list[AgentPublic]:
    """Every registered agent, with its metrics."""
    agents = runtime.registry.agents
    return [_agent(agents[m.agent_id], m) for m in await runtime.agent_monitor.read_all()]


@router.get("/agents/{agent_id}", response_model=AgentPublic)
async def read_agent(agent_id: str, _caller: CallerDep, runtime: RuntimeDep) -> AgentPublic:
    """One agent with its metrics (404 with the valid ids when unknown)."""
    from orchestrion.exceptions import NotFoundError

    spec = runtime.registry.agents.get(agent_id)
    if spec is None:
        raise NotFoundError(
            f"agent {agent_id} not found", details={"choices": sorted(runtime.registry.agents)}
        )
    return _agent(spec, await runtime.agent_monitor.read(agent_id))
