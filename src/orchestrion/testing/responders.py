"""Script functions for `ScriptedProvider` that answer Orchestrion's own prompts plausibly."""

from __future__ import annotations

from typing import Any

from orchestrion.providers.base import ChatRequest


def grounded_analyst(request: ChatRequest) -> dict[str, Any]:
    """Answer analysis requests with one finding citing E1 (when shown) and summary requests with text."""
    schema = request.json_schema or {}
    properties = schema.get("properties", {})
    prompt = request.messages[-1].content
    if "findings" not in properties:
        return {"summary": "Scripted executive summary."}
    findings = []
    if "[E1]" in prompt:
        findings.append(
            {
                "title": "Scripted analyst finding",
                "severity": "medium",
                "description": "Derived from the first piece of evidence.",
                "recommendation": "Apply the scripted fix.",
                "evidence": ["E1"],
            }
        )
    return {"summary": "Scripted analysis.", "findings": findings}
