"""Prompts and output schemas of the analysis phase and the reporter's summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orchestrion.domain.findings import Evidence, Finding, Severity
from orchestrion.providers.base import ChatRequest, Message

MAX_EVIDENCE_IN_PROMPT = 24
MAX_SUMMARY_CHARS = 160

SEVERITIES = [s.value for s in Severity]


# Roughly what one finding costs in output tokens at the string bounds below; used to size the
# schema so that grammar-constrained output always closes its JSON within `max_tokens`.
TOKENS_PER_FINDING = 160
TOKENS_FOR_SUMMARY = 70


def findings_that_fit(max_findings: int, max_tokens: int) -> int:
    """How many findings the schema may ask for within the output budget (at least one)."""
    return max(1, min(max_findings, (max_tokens - TOKENS_FOR_SUMMARY) // TOKENS_PER_FINDING))


def analysis_schema(max_findings: int) -> dict[str, Any]:
    """JSON schema the model's analysis must match (grammar-enforced on llama.cpp).

    Every string and array is bounded so that a model that rambles still produces complete JSON.
    """
    return {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "maxLength": 200},
            "findings": {
                "type": "array",
                "maxItems": max_findings,
                "items": {
                    "type": "object",
                    "properties": {
                        "title": {"type": "string", "maxLength": 100},
                        "severity": {"type": "string", "enum": SEVERITIES},
                        "description": {"type": "string", "maxLength": 240},
                        "recommendation": {"type": "string", "maxLength": 160},
                        "evidence": {
                            "type": "array",
                            "maxItems": 3,
                            "items": {"type": "string", "maxLength": 8},
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
    "properties": {"summary": {"type": "string", "maxLength": 500}},
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
    max_findings = findings_that_fit(max_findings, max_tokens)
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


def usable_text(text: str, *, min_words: int = 6) -> bool:
    """Whether model prose is worth showing: a weak model sometimes returns a fragment of the prompt."""
    return len(text.split()) >= min_words


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
