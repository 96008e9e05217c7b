"""Declarative agent and task-type specifications."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

AgentKind = Literal["specialist", "reporter", "mapper", "reducer", "generator", "judge"]


@dataclass(frozen=True, kw_only=True)
class PlaybookCall:
    """One deterministic tool call of a playbook."""

    tool: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AgentSpec:
    """An agent, as data.

    Attributes:
        id: Stable identifier used in requests and plans.
        name: Display name.
        description: What it is good at.
        capabilities: Capability tags the selector matches against.
        task_types: Task types it can work on.
        system_prompt: Instructions for its LLM analysis.
        tools: Tool names it may call.
        playbooks: Per task type, the deterministic tool calls of phase 1.
        route: The provider route its LLM calls use.
        kind: ``specialist``, ``reporter`` (aggregates the others), or the Parallel and Creative
            engines' ``mapper``, ``reducer``, ``generator`` and ``judge`` (see `engines/steps.py`).
        analysis: Whether phase 2 (LLM analysis of the evidence) runs.
        max_findings: Cap on LLM-proposed findings per run.
        timeout_seconds: Per-step timeout.
        max_retries: Retries of a failed step.
        max_steps: Tool calls the model may make in the autonomous phase (0: no such phase); it
            runs only when the agent's route can be offered tools.
    """

    id: str
    name: str
    description: str
    capabilities: tuple[str, ...] = ()
    task_types: tuple[str, ...] = ()
    system_prompt: str = ""
    tools: tuple[str, ...] = ()
    playbooks: Mapping[str, tuple[PlaybookCall, ...]] = field(default_factory=dict)
    route: str = "default"
    kind: AgentKind = "specialist"
    analysis: bool = True
    max_findings: int = 5
    timeout_seconds: float | None = None
    max_retries: int | None = None
    max_steps: int = 0

    def playbook(self, task_type: str) -> tuple[PlaybookCall, ...]:
        """The tool calls for `task_type` (empty when it has none)."""
        return tuple(self.playbooks.get(task_type, ()))


@dataclass(frozen=True, kw_only=True)
class TaskTypeSpec:
    """A kind of task users can submit.

    Attributes:
        id: The `task_type` value.
        description: What it does.
        default_agents: The team used when the request names none.
        needs_inputs: Whether files or paths are required.
        input_extensions: File extensions its tools read (informational, shown by the API).
        needs_target: Whether a `target` (host, host:port or URL) is required; it is checked
            against the network target policy when the task is submitted.
    """

    id: str
    description: str
    default_agents: tuple[str, ...]
    needs_inputs: bool = False
    input_extensions: tuple[str, ...] = ()
    needs_target: bool = False
