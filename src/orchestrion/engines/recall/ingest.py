"""What a finished task leaves in memory: its report, and each of its findings with the evidence cited."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrion.domain.findings import Evidence, Finding
from orchestrion.domain.tasks import Result, Task

MAX_EVIDENCE_LINES = 5


@dataclass(frozen=True, kw_only=True)
class Document:
    """Text to remember, before it is chunked, embedded and stored.

    Attributes:
        title: Its title (up to 200 characters are kept).
        text: Its text.
        tags: Its tags (normalised to lower case, deduplicated).
        shared: Whether every user may find it.
        source: ``document``, ``task`` or ``finding``.
        task_id: The task it comes from, if any.
    """

    title: str
    text: str
    tags: Sequence[str] = ()
    shared: bool = False
    source: str = "document"
    task_id: str | None = None


def task_documents(task: Task, result: Result, evidence: Mapping[str, Evidence]) -> list[Document]:
    """The report of `task` as one document, and each finding of `result` as another.

    Tags: the task type and ``report`` plus the task's status for the report; the task type and the
    severity for a finding. Findings carry the summaries of the evidence they cite, so a later
    search finds them by what was observed as well as by what was concluded.
    """
    context = f"Task: {task.title} ({task.task_type})" + (f", target {task.target}" if task.target else "")
    lines = [context, f"Status: {task.status.value}", "", result.summary.strip()]
    if result.findings:
        lines += ["", "Findings:"]
        lines += [f"- [{f.severity.value}] {f.title}" for f in result.findings]
    if result.remediation:
        lines += ["", "Remediation:"]
        lines += [f"- {step}" for step in result.remediation]
    documents = [
        Document(
            title=f"Report: {task.title}",
            text="\n".join(lines).strip(),
            tags=(task.task_type, "report", task.status.value),
            source="task",
            task_id=task.id,
        )
    ]
    documents += [_finding_document(task, context, f, evidence) for f in result.findings]
    return documents


def _finding_document(
    task: Task, context: str, finding: Finding, evidence: Mapping[str, Evidence]
) -> Document:
    lines = [finding.title, f"Severity: {finding.severity.value}", context]
    if finding.description:
        lines += ["", finding.description]
    if finding.recommendation:
        lines += ["", f"Recommendation: {finding.recommendation}"]
    cited = [evidence[i] for i in finding.evidence_ids if i in evidence][:MAX_EVIDENCE_LINES]
    if cited:
        lines += ["", "Evidence:"]
        lines += [f"- {e.summary}" + (f" ({e.location})" if e.location else "") for e in cited]
    return Document(
        title=finding.title,
        text="\n".join(lines),
        tags=(task.task_type, finding.severity.value),
        source="finding",
        task_id=task.id,
    )
