"""Custom agents and task types: YAML files in a directory, and Python entry points.

A YAML file (``*.yaml`` or ``*.yml`` in ``ORCHESTRION_AGENTS_DIR``) holds ``agents:`` and/or
``task_types:`` lists::

    agents:
      - id: license_checker
        name: License Checker
        description: Finds copyleft licences in dependency manifests.
        task_types: [dependency_review]
        tools: [secret_scan]
        playbooks:
          dependency_review:
            - tool: secret_scan
        system_prompt: You review dependency manifests...
        route: default            # a route of the provider router
    task_types:
      - id: dependency_review
        description: Review a project's dependencies.
        default_agents: [license_checker]
        needs_inputs: true

An entry point in the ``orchestrion.agents`` group names an `AgentSpec`, a `TaskTypeSpec`, an
iterable of them, or a callable returning one of those. Everything is validated when the server
starts; a bad spec stops it with a message naming the file (or entry point) and the field.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from orchestrion.agents.registry import AgentRegistry
from orchestrion.agents.spec import AgentSpec, PlaybookCall, TaskTypeSpec
from orchestrion.exceptions import ConfigurationError

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "orchestrion.agents"
_ID = r"^[a-z][a-z0-9_]{0,62}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _PlaybookCallIn(_Strict):
    tool: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class _AgentIn(_Strict):
    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(min_length=1, max_length=500)
    capabilities: list[str] = Field(default_factory=list)
    task_types: list[str] = Field(min_length=1)
    system_prompt: str = ""
    tools: list[str] = Field(default_factory=list)
    playbooks: dict[str, list[_PlaybookCallIn]] = Field(default_factory=dict)
    route: str = "default"
    analysis: bool = True
    max_findings: int = Field(default=5, ge=0, le=50)
    timeout_seconds: float | None = Field(default=None, gt=0)
    max_retries: int | None = Field(default=None, ge=0, le=10)
    max_steps: int = Field(default=0, ge=0, le=20)

    def spec(self) -> AgentSpec:
        return AgentSpec(
            id=self.id,
            name=self.name,
            description=self.description,
            capabilities=tuple(self.capabilities),
            task_types=tuple(self.task_types),
            system_prompt=self.system_prompt,
            tools=tuple(self.tools),
            playbooks={
                task_type: tuple(PlaybookCall(tool=c.tool, args=dict(c.args)) for c in calls)
                for task_type, calls in self.playbooks.items()
            },
            route=self.route,
            analysis=self.analysis,
            max_findings=self.max_findings,
            timeout_seconds=self.timeout_seconds,
            max_retries=self.max_retries,
            max_steps=self.max_steps,
        )


class _TaskTypeIn(_Strict):
    id: str = Field(pattern=_ID)
    description: str = Field(min_length=1, max_length=500)
    default_agents: list[str] = Field(min_length=1)
    needs_inputs: bool = False
    input_extensions: list[str] = Field(default_factory=list)
    needs_target: bool = False

    def spec(self) -> TaskTypeSpec:
        return TaskTypeSpec(
            id=self.id,
            description=self.description,
            default_agents=tuple(self.default_agents),
            needs_inputs=self.needs_inputs,
            input_extensions=tuple(self.input_extensions),
            needs_target=self.needs_target,
        )


class _FileIn(_Strict):
    agents: list[_AgentIn] = Field(default_factory=list)
    task_types: list[_TaskTypeIn] = Field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class LoadedSpecs:
    """Agents and task types from one source, with the source's name for error messages."""

    source: str
    agents: tuple[AgentSpec, ...] = ()
    task_types: tuple[TaskTypeSpec, ...] = ()


def _where(location: Sequence[int | str]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def load_agent_file(path: Path) -> LoadedSpecs:
    """Parse and validate one YAML file.

    Raises:
        ConfigurationError: Naming the file and the field (``agents[0].task_types``) on any problem.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot be read: {exc}", details={"file": str(path)}) from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path}: not valid YAML: {exc}", details={"file": str(path)}) from exc
    if raw is None:
        raw = {}
    try:
        parsed = _FileIn.model_validate(raw)
    except PydanticValidationError as exc:
        error = exc.errors()[0]
        field = _where(error["loc"])
        raise ConfigurationError(
            f"{path}: {field or '(top level)'}: {error['msg']}", details={"file": str(path), "field": field}
        ) from exc
    return LoadedSpecs(
        source=str(path),
        agents=tuple(a.spec() for a in parsed.agents),
        task_types=tuple(t.spec() for t in parsed.task_types),
    )


def load_agent_dir(directory: Path) -> list[LoadedSpecs]:
    """Every ``*.yaml``/``*.yml`` file of `directory`, in name order.

    Raises:
        ConfigurationError: When the directory does not exist, or a file is invalid.
    """
    if not directory.is_dir():
        raise ConfigurationError(
            f"ORCHESTRION_AGENTS_DIR {directory} is not a directory", details={"file": str(directory)}
        )
    files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [load_agent_file(path) for path in files]


def load_entry_points(group: str = ENTRY_POINT_GROUP) -> list[LoadedSpecs]:
    """Agents and task types published by installed packages under the entry-point `group`.

    Raises:
        ConfigurationError: Naming the entry point when it fails to load or gives something else.
    """
    loaded: list[LoadedSpecs] = []
    for point in entry_points(group=group):
        source = f"entry point {point.name} ({point.value})"
        try:
            value = point.load()
            if callable(value) and not isinstance(value, AgentSpec | TaskTypeSpec):
                value = value()
        except Exception as exc:
            raise ConfigurationError(f"{source}: failed to load: {exc}", details={"file": source}) from exc
        items = [value] if isinstance(value, AgentSpec | TaskTypeSpec) else _iterable(value, source)
        agents = tuple(i for i in items if isinstance(i, AgentSpec))
        task_types = tuple(i for i in items if isinstance(i, TaskTypeSpec))
        if len(agents) + len(task_types) != len(items):
            raise ConfigurationError(
                f"{source}: gives something that is neither an AgentSpec nor a TaskTypeSpec",
                details={"file": source},
            )
        loaded.append(LoadedSpecs(source=source, agents=agents, task_types=task_types))
    return loaded


def _iterable(value: Any, source: str) -> list[Any]:
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | dict):
        return list(value)
    raise ConfigurationError(
        f"{source}: gives {type(value).__name__}, not agent or task type specs", details={"file": source}
    )


def register_specs(registry: AgentRegistry, sources: Sequence[LoadedSpecs], *, routes: Iterable[str]) -> None:
    """Add custom agents and task types to `registry`, all agents first (task types name them).

    Raises:
        ConfigurationError: Naming the source and the problem: an id already taken, an unknown tool
            or route, a playbook for a task type the agent does not list, a task type whose default
            agents are unknown.
    """
    known_routes = sorted(routes)
    taken = {**dict.fromkeys(registry.agents, "built in"), **dict.fromkeys(registry.task_types, "built in")}
    for source in sources:
        for agent in source.agents:
            _claim(taken, agent.id, source.source, "agent")
            if known_routes and agent.analysis and agent.route not in known_routes:
                raise ConfigurationError(
                    f"{source.source}: agent {agent.id}: route: {agent.route!r} is not a configured "
                    f"route; valid routes: {', '.join(known_routes)}",
                    details={"file": source.source, "field": "route", "choices": known_routes},
                )
            _register(source.source, registry.register_agent, agent)
    for source in sources:
        for task_type in source.task_types:
            _claim(taken, task_type.id, source.source, "task type")
            _register(source.source, registry.register_task_type, task_type)
    for source in sources:
        logger.info(
            "loaded %d agent(s) and %d task type(s) from %s",
            len(source.agents),
            len(source.task_types),
            source.source,
        )


def _claim(taken: dict[str, str], spec_id: str, source: str, what: str) -> None:
    where = taken.get(spec_id)
    if where is not None:
        raise ConfigurationError(
            f"{source}: {what} {spec_id}: id already defined ({where})",
            details={"file": source, "field": "id"},
        )
    taken[spec_id] = source


def _register(source: str, register: Any, spec: Any) -> None:
    try:
        register(spec)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{source}: {exc.message}", details={"file": source, **exc.details}) from exc
