"""The autonomous phase: a tool-calling model gathers evidence with the agent's own tools."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrion.agents.spec import AgentSpec, PlaybookCall
from orchestrion.domain.tasks import TaskStatus
from orchestrion.engines.coordinator import TaskRequest
from orchestrion.providers.base import ChatRequest, ChatResponse, ToolUse
from orchestrion.store import runs as run_store
from orchestrion.testing import ScriptedProvider
from orchestrion.testing.responders import grounded_analyst

AWS_KEY_ID = "AKIA" + "Q3EGRT5ZJ7NXW2PL"
FILES = [{"name": "settings.env", "content": f"AWS_ACCESS_KEY_ID={AWS_KEY_ID}\n"}]


def _explorer(max_steps: int = 4) -> AgentSpec:
    return AgentSpec(
        id="explorer",
        name="Explorer",
        description="calls tools on its own",
        task_types=("teamwork",),
        tools=("secret_scan", "python_metrics"),
        playbooks={"teamwork": (PlaybookCall(tool="python_metrics"),)},
        max_steps=max_steps,
    )


def _calls(*uses: ToolUse) -> ChatResponse:
    return ChatResponse(content="", provider="x", model="x", tool_uses=uses)


def _answer_or_analyse(request: ChatRequest) -> str | dict[str, Any]:
    """After the tool turns: plain text while tools are offered, then the grounded analysis."""
    if request.tools:
        return "I have enough evidence."
    return grounded_analyst(request)


async def test_the_model_calls_the_agents_tools_and_their_evidence_is_cited(
    harness_factory: Callable[..., Any],
) -> None:
    model = ScriptedProvider(
        [
            _calls(ToolUse(id="c1", name="secret_scan", arguments={})),
            _calls(
                ToolUse(id="c2", name="shell", arguments={"cmd": "id"}),
                ToolUse(id="c3", name="secret_scan", arguments={"bogus": 1}),
            ),
        ],
        default=_answer_or_analyse,
        supports_tools=True,
        name="tooling",
    )
    h = await harness_factory(routes={"default": [model]}, agents=[_explorer()])
    task = await h.runtime.coordinator.submit(
        h.admin, TaskRequest(title="t", task_type="teamwork", files=FILES)
    )
    done = await h.wait(task.id)
    assert done.status is TaskStatus.SUCCEEDED, done.error

    tool_events = [e.data for e in await h.events(task.id) if e.type == "tool.called"]
    assert [e["tool"] for e in tool_events] == ["python_metrics", "secret_scan", "secret_scan"]
    assert tool_events[2]["error"] and "bogus" in tool_events[2]["error"].lower()
    # The model saw its tools, then each tool's result (or error) as a tool message.
    offered = model.requests[0]
    assert {t.name for t in offered.tools} == {"secret_scan", "python_metrics"}
    second = model.requests[1].messages
    assert (
        second[-1].role == "tool" and second[-1].tool_use_id == "c1" and "secret_scan" in second[-1].content
    )
    third = model.requests[2].messages
    results = {m.tool_use_id: m.content for m in third if m.role == "tool"}
    assert results["c2"].startswith("error: unknown tool 'shell'")
    assert results["c3"].startswith("error:")

    runs = await h.runtime.db.read(lambda conn: run_store.read_runs(conn, task.id))
    explorer = next(r for r in runs if r.agent_id == "explorer")
    assert any(e.tool == "secret_scan" for e in explorer.evidence)
    assert any(f.grounded and "aws" in f.title.lower() for f in explorer.findings)


async def test_the_step_limit_stops_the_loop(harness_factory: Callable[..., Any]) -> None:
    keep_calling = _calls(ToolUse(id="again", name="secret_scan", arguments={}))
    model = ScriptedProvider(
        [keep_calling] * 5, default=_answer_or_analyse, supports_tools=True, name="tooling"
    )
    h = await harness_factory(routes={"default": [model]}, agents=[_explorer(max_steps=2)])
    task = await h.runtime.coordinator.submit(
        h.admin, TaskRequest(title="t", task_type="teamwork", files=FILES)
    )
    done = await h.wait(task.id)
    assert done.status is TaskStatus.SUCCEEDED, done.error
    tools = [e.data["tool"] for e in await h.events(task.id) if e.type == "tool.called"]
    assert tools == ["python_metrics", "secret_scan", "secret_scan"]


async def test_no_loop_when_the_route_cannot_be_offered_tools(harness_factory: Callable[..., Any]) -> None:
    model = ScriptedProvider(default=grounded_analyst, supports_tools=False, name="plain")
    h = await harness_factory(routes={"default": [model]}, agents=[_explorer()])
    task = await h.runtime.coordinator.submit(
        h.admin, TaskRequest(title="t", task_type="teamwork", files=FILES)
    )
    done = await h.wait(task.id)
    assert done.status is TaskStatus.SUCCEEDED, done.error
    assert all(not r.tools for r in model.requests)
    tools = [e.data["tool"] for e in await h.events(task.id) if e.type == "tool.called"]
    assert tools == ["python_metrics"]


async def test_the_budget_bounds_the_loop(harness_factory: Callable[..., Any]) -> None:
    keep_calling = _calls(ToolUse(id="again", name="secret_scan", arguments={}))
    model = ScriptedProvider([keep_calling] * 20, default=_answer_or_analyse, supports_tools=True)
    h = await harness_factory(routes={"default": [model]}, agents=[_explorer(max_steps=20)])
    request = TaskRequest(title="t", task_type="teamwork", files=FILES, budget={"max_tokens": 2500})
    task = await h.runtime.coordinator.submit(h.admin, request)
    done = await h.wait(task.id)
    assert done.status is TaskStatus.FAILED
    assert done.error is not None and done.error.startswith("budget exceeded: max_tokens is 2500")
    assert 0 < len(model.requests) < 20
