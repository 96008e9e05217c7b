"""Workload W1 as Orchestrion data: three tool-less specialists in parallel, then the reporter.

A tool-less AgentSpec makes exactly one LLM analysis call and the built-in reporter one summary call,
so a W1 task is four chat completions. `request_bodies` renders the same four requests as
OpenAI-compatible JSON bodies, so that the floor and LangGraph send what Orchestrion sends.
"""

from __future__ import annotations

from typing import Any

from orchestrion.agents.builtin import REPORTER
from orchestrion.agents.prompts import analysis_request, summary_request
from orchestrion.agents.spec import AgentSpec, TaskTypeSpec
from orchestrion.providers.base import ChatRequest
from orchestrion.providers.openai_compat import chat_completion_body

TASK_TYPE = "w1"
MODEL = "test-model"
TITLE = "w1 benchmark task"
LLM_MAX_TOKENS = 512
REPORTER_MAX_TOKENS = 256

SPECIALISTS = tuple(
    AgentSpec(
        id=f"w1_{name}",
        name=f"W1 {name}",
        description=f"W1 benchmark specialist ({name}).",
        task_types=(TASK_TYPE,),
        system_prompt=f"You are the {name} specialist. Report findings as JSON.",
        route="default",
    )
    for name in ("security", "performance", "style")
)

W1_TASK_TYPE = TaskTypeSpec(
    id=TASK_TYPE,
    description="W1 benchmark: three specialists in parallel, then the reporter.",
    default_agents=tuple(s.id for s in SPECIALISTS),
)


def _body(request: ChatRequest) -> dict[str, Any]:
    return chat_completion_body(request, model=MODEL)


def request_bodies() -> dict[str, Any]:
    """The four chat-completion bodies of one W1 task: three specialists, then the reporter.

    The test server answers the analysis schema with no findings, so the reporter's request is the
    one Orchestrion builds for an empty list of findings.
    """
    specialists = [
        _body(
            analysis_request(
                system_prompt=spec.system_prompt,
                title=TITLE,
                task_type=TASK_TYPE,
                target=None,
                shown=(),
                tool_findings=(),
                max_findings=spec.max_findings,
                max_tokens=LLM_MAX_TOKENS,
            )
        )
        for spec in SPECIALISTS
    ]
    reporter = _body(
        summary_request(
            system_prompt=REPORTER.system_prompt, title=TITLE, findings=(), max_tokens=REPORTER_MAX_TOKENS
        )
    )
    return {"specialists": specialists, "reporter": reporter}
