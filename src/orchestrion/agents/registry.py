"""The registry of agents and task types known to this server."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from orchestrion.agents.spec import AgentSpec, TaskTypeSpec
from orchestrion.exceptions import ConfigurationError, UnknownChoiceError, ValidationError


class AgentRegistry:
    """Agents and task types, validated against the available tools."""

    def __init__(self, *, tool_names: Iterable[str]) -> None:
        self._tools = frozenset(tool_names)
        self._agents: dict[str, AgentSpec] = {}
        self._task_types: dict[str, TaskTypeSpec] = {}

    def add_tools(self, names: Iterable[str]) -> None:
        """Make more tools available to agents (MCP tools, known once their servers have started)."""
        self._tools = self._tools | frozenset(names)

    def register_agent(self, spec: AgentSpec) -> None:
        """Add or replace an agent; ConfigurationError when it names a tool that does not exist."""
        missing = set(spec.tools) - self._tools
        missing |= {c.tool for calls in spec.playbooks.values() for c in calls} - self._tools
        if missing:
            raise ConfigurationError(
                f"agent {spec.id}: tools: unknown {', '.join(sorted(missing))}; "
                f"valid tools: {', '.join(sorted(self._tools))}",
                details={"field": "tools", "choices": sorted(self._tools)},
            )
        unlisted = {c.tool for calls in spec.playbooks.values() for c in calls} - set(spec.tools)
        if unlisted:
            raise ConfigurationError(
                f"agent {spec.id}: playbooks: calls {', '.join(sorted(unlisted))}, not in its `tools`",
                details={"field": "playbooks"},
            )
        stray = set(spec.playbooks) - set(spec.task_types)
        if stray:
            raise ConfigurationError(
                f"agent {spec.id}: playbooks: {', '.join(sorted(stray))} is not one of its task_types "
                f"({', '.join(spec.task_types)})",
                details={"field": "playbooks", "choices": list(spec.task_types)},
            )
        self._agents[spec.id] = spec

    def register_task_type(self, spec: TaskTypeSpec) -> None:
        """Add or replace a task type; its default agents must exist and support it."""
        for agent_id in spec.default_agents:
            agent = self._agents.get(agent_id)
            if agent is None or spec.id not in agent.task_types:
                raise ConfigurationError(
                    f"task type {spec.id}: default_agents: {agent_id} is unknown or does not list "
                    f"{spec.id} in its task_types",
                    details={"field": "default_agents", "choices": sorted(self._agents)},
                )
        self._task_types[spec.id] = spec

    @property
    def agents(self) -> Mapping[str, AgentSpec]:
        """Every agent by id."""
        return self._agents

    @property
    def task_types(self) -> Mapping[str, TaskTypeSpec]:
        """Every task type by id."""
        return self._task_types

    def agent(self, agent_id: str) -> AgentSpec:
        """An agent by id; UnknownChoiceError naming the valid ids."""
        try:
            return self._agents[agent_id]
        except KeyError:
            raise UnknownChoiceError(
                field="agents", value=agent_id, choices=sorted(self._agents), code="unknown_agent"
            ) from None

    def task_type(self, task_type: str) -> TaskTypeSpec:
        """A task type by id; UnknownChoiceError naming the valid ids."""
        try:
            return self._task_types[task_type]
        except KeyError:
            raise UnknownChoiceError(
                field="task_type", value=task_type, choices=sorted(self._task_types), code="unknown_task_type"
            ) from None

    def reporter(self) -> AgentSpec:
        """The agent that aggregates reports."""
        for spec in self._agents.values():
            if spec.kind == "reporter":
                return spec
        raise ConfigurationError("no reporter agent is registered")

    def select_team(self, task_type: str, requested: Iterable[str] | None) -> tuple[tuple[str, ...], str]:
        """The specialists for a task and the reason: the request's agents, else the type's defaults."""
        spec = self.task_type(task_type)
        if not requested:
            return spec.default_agents, f"default team for {task_type}"
        team: list[str] = []
        for agent_id in requested:
            agent = self.agent(agent_id)
            if agent.kind == "reporter":
                raise ValidationError(
                    f"{agent_id} is added to every team; list specialists only",
                    field="agents",
                    choices=self.specialists_for(task_type),
                )
            if task_type not in agent.task_types:
                raise UnknownChoiceError(
                    field="agents",
                    value=agent_id,
                    choices=self.specialists_for(task_type),
                    code="unknown_agent",
                )
            if agent_id not in team:
                team.append(agent_id)
        return tuple(team), "agents requested explicitly"

    def specialists_for(self, task_type: str) -> list[str]:
        """Ids of agents that support `task_type`."""
        return sorted(a.id for a in self._agents.values() if task_type in a.task_types)
