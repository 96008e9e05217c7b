"""The reporter's aggregation: dedupe, rank, cite, and score the report's quality.

Quality rubric (each part 0..1; `QualityScore.overall` weighs them 0.30 grounding, 0.30 completion,
0.25 coverage, 0.15 agreement):

- coverage: the share of specialist steps that succeeded *and* examined something (produced at least
  one piece of evidence; an agent without tools counts when it produced a summary or a finding).
- grounding: the share of reported findings that cite evidence collected in this task. A report with
  no findings is vacuously grounded (1.0).
- agreement: the share of deduplicated findings whose reporters agree on severity within one level.
  A finding reported by a single agent cannot disagree and counts as agreeing, so this part only
  lowers the score when agents contradict each other.
- completion: the share of specialist steps that succeeded.

Findings are ranked grounded first, then by severity, then by how many agents reported them: a claim
without evidence never outranks one with evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from orchestrion.domain.findings import Finding, Severity
from orchestrion.domain.tasks import AgentRun, QualityScore, StepStatus


@dataclass(frozen=True, kw_only=True)
class Aggregate:
    """Deduplicated, ranked findings with the quality score and counts."""

    findings: tuple[Finding, ...]
    quality: QualityScore
    remediation: tuple[str, ...]
    counts: dict[str, int]


def aggregate(runs: Sequence[AgentRun], *, planned_specialists: int) -> Aggregate:
    """Combine the specialists' runs into the report's findings and quality score."""
    merged: dict[str, Finding] = {}
    severities: dict[str, list[Severity]] = {}
    known_evidence = {e.id for run in runs for e in run.evidence}
    for run in runs:
        if run.status is not StepStatus.SUCCEEDED:
            continue
        for finding in run.findings:
            cited = tuple(i for i in finding.evidence_ids if i in known_evidence)
            finding = replace(finding, evidence_ids=cited, grounded=bool(cited))
            key = finding.key()
            severities.setdefault(key, []).append(finding.severity)
            current = merged.get(key)
            merged[key] = finding if current is None else _merge(current, finding)

    ranked = tuple(
        sorted(
            merged.values(), key=lambda f: (not f.grounded, f.severity.rank, -len(f.confirmed_by), f.title)
        )
    )
    succeeded = [r for r in runs if r.status is StepStatus.SUCCEEDED]
    examined = [r for r in succeeded if r.evidence or (not r.tool_calls and (r.summary or r.findings))]
    total = max(planned_specialists, 1)
    grounding = sum(1 for f in ranked if f.grounded) / len(ranked) if ranked else 1.0
    agreeing = sum(1 for key in merged if _agree(severities[key]))
    quality = QualityScore(
        coverage=round(len(examined) / total, 4),
        grounding=round(grounding, 4),
        agreement=round(agreeing / len(merged), 4) if merged else 1.0,
        completion=round(len(succeeded) / total, 4),
    )
    # Only evidence-backed findings earn a place on the to-do list.
    remediation = tuple(
        dict.fromkeys(f.recommendation.strip() for f in ranked if f.grounded and f.recommendation.strip())
    )
    counts = {s.value: sum(1 for f in ranked if f.severity is s) for s in Severity}
    return Aggregate(findings=ranked, quality=quality, remediation=remediation[:20], counts=counts)


def _merge(current: Finding, other: Finding) -> Finding:
    worst = current if current.severity.rank <= other.severity.rank else other
    evidence = tuple(dict.fromkeys(current.evidence_ids + other.evidence_ids))
    confirmations = set(current.confirmed_by)
    if other.agent_id != current.agent_id:
        confirmations.add(other.agent_id)
    return replace(
        worst,
        agent_id=current.agent_id,
        evidence_ids=evidence,
        grounded=bool(evidence),
        confirmed_by=tuple(sorted(confirmations)),
        recommendation=current.recommendation or other.recommendation,
        description=current.description or other.description,
    )


def _agree(levels: Sequence[Severity]) -> bool:
    ranks = [s.rank for s in levels]
    return max(ranks) - min(ranks) <= 1


def headline(*, findings: Sequence[Finding], counts: dict[str, int], agents: int, inputs: int) -> str:
    """A deterministic one-paragraph summary that holds even without an LLM."""
    if not findings:
        return f"No findings from {agents} agent(s) over {inputs} input(s)."
    parts = [f"{n} {sev}" for sev, n in counts.items() if n]
    top = "; ".join(f.title for f in findings[:3] if f.grounded) or findings[0].title
    text = f"{len(findings)} finding(s) ({', '.join(parts)}) from {agents} agent(s) over {inputs} input(s)."
    text += f" Top: {top}."
    ungrounded = sum(1 for f in findings if not f.grounded)
    if ungrounded:
        text += f" {ungrounded} finding(s) cite no evidence and are listed last."
    return text
