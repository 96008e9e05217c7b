"""Prompts and output schemas of the analysis phase and the reporter's summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrion.domain.findings import Evidence, Finding, Severity
from orchestrion.providers.base import ChatRequest, Message

MAX_EVIDENCE_IN_PROMPT = 24
MAX_SUMMARY_CHARS = 160

SEVERITIES = [s.value for s in Severity]


def analysis_schema(max_findings: int) -> dict[str, Any]:
    """JSON schema the model's analysis must match (grammar-enforced on llama.cpp)."""
    return {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "maxLength": 400},
            "findings": {
                "type": "array",
                "maxItems": max_findings,
                "items": {
                    "type": "object",
                    "properties": {
                        "title": {"type": "string", "maxLength": 120},
                        "severity": {"type": "string", "enum": SEVERITIES},
                        "description": {"type": "string", "maxLength": 400},
                        "recommendation": {"type": "string", "maxLength": 300},
                        "evidence": {
                            "type": "array",
                            "maxItems": 5,
                            "items": {"type": "string", "maxLength": 80},
                        },
                    },
                    "required": ["title", "severity", "description", "recommendation", "evidence"],
                },
            },
        },
        "required": ["summary", "findings"],
    }


SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"summary": {"type": "string", "maxLength": 600}},
    "required": ["summary"],
}


def select_evidence(evidence: Sequence[Evidence], cited_first: Sequence[str]) -> list[Evidence]:
    """Evidence to show the model: what tool findings cite first, then the rest, capped."""
    by_id = {e.id: e for e in evidence}
    chosen: list[Evidence] = [by_id[i] for i in dict.fromkeys(cited_first) if i in by_id]
    seen = {e.id for e in chosen}
    chosen.extend(e for e in evidence if e.id not in seen)
    return chosen[:MAX_EVIDENCE_IN_PROMPT]


def analysis_request(
    *,
    system_prompt: str,
    title: str,
    task_type: str,
    target: str | None,
    shown: Sequence[Evidence],
    tool_findings: Sequence[Finding],
    max_findings: int,
    max_tokens: int,
) -> ChatRequest:
    """The phase-2 request: evidence numbered E1..En so that even a small model can cite it."""
    lines = [f"Task: {title} ({task_type})."]
    if target:
        lines.append(f"Target: {target}")
    if shown:
        lines.append("Evidence:")
        lines.extend(f"[E{i + 1}] {e.summary[:MAX_SUMMARY_CHARS]}" for i, e in enumerate(shown))
    else:
        lines.append("No tool evidence was collected for this task.")
    if tool_findings:
        lines.append("Already reported by the tools:")
        lines.extend(f"- {f.severity.value}: {f.title}" for f in tool_findings[:8])
    lines.append(
        f"Reply with JSON: a one-sentence summary and at most {max_findings} findings, each citing evidence "
        "labels like E1."
    )
    return ChatRequest(
        messages=(
            Message(role="system", content=system_prompt),
            Message(role="user", content="\n".join(lines)),
        ),
        json_schema=analysis_schema(max_findings),
        max_tokens=max_tokens,
        temperature=0.1,
        seed=7,
    )


def summary_request(
    *, system_prompt: str, title: str, findings: Sequence[Finding], max_tokens: int
) -> ChatRequest:
    """The reporter's request for an executive summary of already-aggregated findings."""
    lines = [f"Report: {title}", "Findings (most severe first):"]
    lines.extend(f"- {f.severity.value}: {f.title}" for f in findings[:12])
    if not findings:
        lines.append("- none")
    return ChatRequest(
        messages=(
            Message(role="system", content=system_prompt),
            Message(role="user", content="\n".join(lines) + '\nReply with JSON: {"summary": "..."}'),
        ),
        json_schema=SUMMARY_SCHEMA,
        max_tokens=max_tokens,
        temperature=0.1,
        seed=7,
    )
