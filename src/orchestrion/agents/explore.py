"""The autonomous phase: the model calls the agent's own tools to gather more evidence.

It runs between the playbook and the analysis, for agents with `max_steps > 0`, when the agent's
route can be offered tools. Each turn offers the agent's tools (their JSON schemas) with what is
known so far; every tool call the model asks for runs through the same path as a playbook call
(validated arguments, target policy, persisted with its digest, evidence ids assigned by the
runner) and its result goes back as a tool message. The loop ends when the model answers without
tool calls, after `max_steps` tool calls, or when the budget refuses a call (the task then fails:
no silent overspend). A model asking for a tool the agent does not have, or with bad arguments,
gets the error back as the tool's result and may try again within the step limit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from orchestrion.agents.spec import AgentSpec
from orchestrion.domain.findings import Evidence
from orchestrion.providers.base import ChatRequest, Message, ToolSpec, ToolUse
from orchestrion.providers.router import ProviderRouter
from orchestrion.tools.base import Tool

logger = logging.getLogger(__name__)

MAX_RESULT_CHARS = 2000
MAX_EVIDENCE_LINES = 20

CallTool = Callable[[str, dict[str, object]], Awaitable[tuple[str, Sequence[Evidence]]]]
"""Runs one tool for the loop: `(name, arguments) -> (error or "", new evidence)`."""


@dataclass(frozen=True, kw_only=True)
class ExploreOutcome:
    """What the loop did."""

    tool_calls: int
    turns: int
    stopped: str  # "answered", "max_steps" or "no_tools"


def wire_name(name: str) -> str:
    """A tool name vendors accept (``^[A-Za-z0-9_-]{1,64}$``): MCP tools' dots become ``__``."""
    return name.replace(".", "__")[:64]


def tool_specs(spec: AgentSpec, tools: Mapping[str, Tool]) -> tuple[ToolSpec, ...]:
    """The agent's tools as the model sees them."""
    return tuple(
        ToolSpec(
            name=wire_name(name), description=tools[name].description, parameters=tools[name].json_schema()
        )
        for name in spec.tools
        if name in tools
    )


def _opening(title: str, task_type: str, target: str | None, evidence: Sequence[Evidence]) -> str:
    lines = [f"Task: {title} ({task_type})"]
    if target:
        lines.append(f"Target: {target}")
    lines.append("Evidence so far:" if evidence else "No evidence yet.")
    lines.extend(f"- {e.tool}: {e.summary[:160]}" for e in evidence[:MAX_EVIDENCE_LINES])
    lines.append(
        "Call tools to gather the evidence still missing; answer with a short note and no tool call "
        "when you have enough."
    )
    return "\n".join(lines)


def _result_text(error: str, evidence: Sequence[Evidence]) -> str:
    if error:
        return f"error: {error}"
    if not evidence:
        return "no observations"
    text = "\n".join(f"[{e.id}] {e.summary}" for e in evidence)
    return text[:MAX_RESULT_CHARS]


async def explore(
    *,
    router: ProviderRouter,
    spec: AgentSpec,
    tools: Mapping[str, Tool],
    title: str,
    task_type: str,
    target: str | None,
    evidence: Sequence[Evidence],
    call_tool: CallTool,
    max_tokens: int,
) -> ExploreOutcome:
    """Let the model call the agent's tools, up to `spec.max_steps` calls.

    Raises:
        BudgetExceededError: When the task's budget refuses a turn.
        ProviderError: When the route fails (the caller decides whether the step can go on).
    """
    offered = tool_specs(spec, tools)
    if not offered:
        return ExploreOutcome(tool_calls=0, turns=0, stopped="no_tools")
    by_wire_name = {wire_name(name): name for name in spec.tools if name in tools}
    messages: list[Message] = [
        Message(role="system", content=spec.system_prompt),
        Message(role="user", content=_opening(title, task_type, target, evidence)),
    ]
    calls = turns = 0
    while calls < spec.max_steps:
        turns += 1
        response = await router.complete(
            spec.route,
            ChatRequest(messages=tuple(messages), tools=offered, max_tokens=max_tokens, temperature=0.1),
        )
        if not response.tool_uses:
            return ExploreOutcome(tool_calls=calls, turns=turns, stopped="answered")
        messages.append(Message(role="assistant", content=response.content, tool_uses=response.tool_uses))
        for use in response.tool_uses:
            if calls >= spec.max_steps:
                messages.append(_tool_message(use, "error: the step limit is reached"))
                continue
            calls += 1
            found: Sequence[Evidence] = ()
            name = by_wire_name.get(use.name)
            if name is None:
                error = f"unknown tool {use.name!r}; available: {', '.join(sorted(by_wire_name))}"
            else:
                error, found = await call_tool(name, dict(use.arguments))
            logger.info(
                "%s called %s (%s)", spec.id, use.name, "error" if error else f"{len(found)} observations"
            )
            messages.append(_tool_message(use, _result_text(error, found)))
    return ExploreOutcome(tool_calls=calls, turns=turns, stopped="max_steps")


def _tool_message(use: ToolUse, text: str) -> Message:
    return Message(role="tool", content=text, tool_use_id=use.id, name=use.name)
