"""The agent runner: evidence ids, grounding judged by the runner, LLM failure handling."""

from __future__ import annotations

import pytest

from orchestrion.agents.builtin import CODE_ANALYZER
from orchestrion.agents.prompts import analysis_schema, findings_that_fit, usable_text
from orchestrion.agents.runner import AgentRequest, AgentRunner, parse_findings
from orchestrion.agents.spec import AgentSpec
from orchestrion.domain.findings import Evidence, Severity
from orchestrion.exceptions import ProviderError
from orchestrion.providers.router import ProviderRouter
from orchestrion.testing import ScriptedProvider
from orchestrion.tools.base import InputFile
from orchestrion.tools.registry import build_builtin_tools

SHOWN = [Evidence(id=f"s:tool:{i}", tool="tool", summary=f"obs {i}") for i in (1, 2)]


def test_labels_resolve_to_evidence_ids_and_unknown_citations_are_dropped() -> None:
    raw = [
        {"title": "Real problem", "severity": "HIGH", "evidence": ["E2", "[E1]", "E9"]},
        {"title": "  Made   up ", "severity": "catastrophic", "evidence": ["E7"]},
        {"title": "", "severity": "low", "evidence": ["E1"]},
        {"title": "1", "severity": "critical", "evidence": []},
        {"title": "{{message}}} {{output}}", "severity": "critical", "evidence": []},
        "not an object",
    ]
    findings = parse_findings(raw, shown=SHOWN, agent_id="x", limit=5)
    assert [(f.title, f.severity, f.evidence_ids, f.grounded) for f in findings] == [
        ("Real problem", Severity.HIGH, ("s:tool:2", "s:tool:1"), True),
        ("Made up", Severity.INFO, (), False),
    ]
    assert parse_findings("nonsense", shown=SHOWN, agent_id="x", limit=5) == []


def test_schema_is_sized_to_the_token_budget() -> None:
    assert findings_that_fit(5, 512) == 2
    assert findings_that_fit(5, 4096) == 5
    assert findings_that_fit(5, 64) == 1
    schema = analysis_schema(2)
    assert schema["properties"]["findings"]["maxItems"] == 2
    assert not usable_text("... (most severe first)") and usable_text(
        "The service exposes a shell injection risk."
    )


async def test_tool_findings_are_grounded_and_model_findings_are_checked() -> None:
    model = ScriptedProvider(
        default={
            "summary": "The code shells out with untrusted input in one place.",
            "findings": [
                {
                    "title": "Shell injection risk",
                    "severity": "high",
                    "description": "",
                    "recommendation": "",
                    "evidence": ["E1"],
                },
                {
                    "title": "Unsupported claim",
                    "severity": "critical",
                    "description": "",
                    "recommendation": "",
                    "evidence": [],
                },
            ],
        }
    )
    runner = AgentRunner(tools=build_builtin_tools(), router=ProviderRouter({"default": [model]}))
    source = "import subprocess\nsubprocess.call(input(), shell=True)\n"
    run = await runner.run(
        CODE_ANALYZER,
        AgentRequest(
            task_id="t",
            step_id="code",
            title="t",
            task_type="code_analysis",
            target=None,
            files=[InputFile(name="a.py", content=source)],
        ),
    )
    ids = {e.id for e in run.evidence}
    assert all(i.startswith("code:") for i in ids)
    assert [c.tool for c in run.tool_calls] == ["python_metrics", "bandit_scan", "secret_scan"]
    by_title = {f.title: f for f in run.findings}
    assert (
        by_title["Shell injection risk"].grounded
        and set(by_title["Shell injection risk"].evidence_ids) <= ids
    )
    assert not by_title["Unsupported claim"].grounded
    assert "shells out" in run.summary
    assert "[E1]" in model.requests[0].messages[-1].content


async def test_llm_failure_keeps_tool_evidence_but_fails_an_agent_with_none() -> None:
    down = ScriptedProvider(default=ProviderError("down", provider="scripted"))
    runner = AgentRunner(tools=build_builtin_tools(), router=ProviderRouter({"default": [down]}))
    request = AgentRequest(
        task_id="t",
        step_id="s",
        title="t",
        task_type="code_analysis",
        target=None,
        files=[InputFile(name="a.py", content="x = eval(input())\n")],
    )
    run = await runner.run(CODE_ANALYZER, request)
    assert run.evidence and "unavailable" in run.summary
    toolless = AgentSpec(id="thinker", name="t", description="d", task_types=("code_analysis",))
    with pytest.raises(ProviderError):
        await runner.run(toolless, request)
