"""Agent runs (step checkpoints) with their tool calls, evidence and findings; and task results."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, cast

from sqlalchemy import BindParameter, Connection, Table, bindparam, delete, insert, select

from orchestrion.domain.findings import Evidence, Finding, Severity
from orchestrion.domain.tasks import AgentRun, QualityScore, Result, StepStatus, ToolCall, utcnow
from orchestrion.store.database import WriteTx
from orchestrion.store.models import AgentRunRow, EvidenceRow, FindingRow, ResultRow, ToolCallRow

RUNS = cast(Table, AgentRunRow.__table__)
TOOL_CALLS = cast(Table, ToolCallRow.__table__)
EVIDENCE = cast(Table, EvidenceRow.__table__)
FINDINGS = cast(Table, FindingRow.__table__)
RESULTS = cast(Table, ResultRow.__table__)

_DELETE_RUN = delete(RUNS).where(RUNS.c.id == bindparam("k_id"))
_INSERT_RUN = insert(RUNS)
_INSERT_TOOL_CALLS = insert(TOOL_CALLS)
_INSERT_EVIDENCE = insert(EVIDENCE)
_INSERT_FINDINGS = insert(FINDINGS)
_DELETE_RESULT = delete(RESULTS).where(RESULTS.c.task_id == bindparam("k_task"))
_INSERT_RESULT = insert(RESULTS)
_READ_RESULT = select(RESULTS).where(RESULTS.c.task_id == bindparam("k_task"))
_READ_RUNS = select(RUNS).where(RUNS.c.task_id == bindparam("k_task")).order_by(RUNS.c.created_at, RUNS.c.id)
_IDS: BindParameter[Any] = bindparam("k_ids", expanding=True)
_READ_TOOL_CALLS = (
    select(TOOL_CALLS)
    .where(TOOL_CALLS.c.run_id.in_(_IDS))
    .order_by(TOOL_CALLS.c.run_id, TOOL_CALLS.c.position)
)
_READ_EVIDENCE = (
    select(EVIDENCE).where(EVIDENCE.c.run_id.in_(_IDS)).order_by(EVIDENCE.c.run_id, EVIDENCE.c.position)
)
_READ_FINDINGS = (
    select(FINDINGS).where(FINDINGS.c.run_id.in_(_IDS)).order_by(FINDINGS.c.run_id, FINDINGS.c.position)
)


def save_run(tx: WriteTx, run: AgentRun) -> str:
    """Persist a step's checkpoint, replacing an earlier run of the same step (a retried failure)."""
    conn = tx.conn
    run_id = f"{run.task_id}/{run.step_id}"
    conn.execute(_DELETE_RUN, {"k_id": run_id})
    conn.execute(
        _INSERT_RUN,
        {
            "id": run_id,
            "task_id": run.task_id,
            "step_id": run.step_id,
            "agent_id": run.agent_id,
            "status": run.status.value,
            "summary": run.summary,
            "provider": run.provider,
            "model": run.model,
            "tokens_in": run.tokens_in,
            "tokens_out": run.tokens_out,
            "cost_usd": run.cost_usd,
            "duration_seconds": run.duration_seconds,
            "attempts": run.attempts,
            "error": run.error,
            "created_at": utcnow(),
        },
    )
    if run.tool_calls:
        conn.execute(
            _INSERT_TOOL_CALLS,
            [
                {
                    "run_id": run_id,
                    "position": i,
                    "tool": c.tool,
                    "arguments": c.arguments,
                    "result_digest": c.result_digest,
                    "duration_seconds": c.duration_seconds,
                    "evidence_ids": list(c.evidence_ids),
                    "error": c.error,
                }
                for i, c in enumerate(run.tool_calls)
            ],
        )
    if run.evidence:
        conn.execute(
            _INSERT_EVIDENCE,
            [
                {
                    "task_id": run.task_id,
                    "evidence_id": e.id,
                    "run_id": run_id,
                    "position": i,
                    "tool": e.tool,
                    "summary": e.summary,
                    "data": e.data,
                    "location": e.location,
                }
                for i, e in enumerate(run.evidence)
            ],
        )
    if run.findings:
        conn.execute(
            _INSERT_FINDINGS,
            [
                {
                    "run_id": run_id,
                    "position": i,
                    "agent_id": f.agent_id,
                    "title": f.title[:500],
                    "severity": f.severity.value,
                    "description": f.description,
                    "recommendation": f.recommendation,
                    "evidence_ids": list(f.evidence_ids),
                    "grounded": f.grounded,
                }
                for i, f in enumerate(run.findings)
            ],
        )
    return run_id


def read_runs(conn: Connection, task_id: str) -> list[AgentRun]:
    """Every checkpointed run of a task, with tool calls, evidence and findings."""
    rows = list(conn.execute(_READ_RUNS, {"k_task": task_id}))
    if not rows:
        return []
    ids = [r.id for r in rows]
    calls: dict[str, list[ToolCall]] = {i: [] for i in ids}
    for c in conn.execute(_READ_TOOL_CALLS, {"k_ids": ids}):
        calls[c.run_id].append(
            ToolCall(
                tool=c.tool,
                arguments=c.arguments,
                result_digest=c.result_digest,
                duration_seconds=c.duration_seconds,
                evidence_ids=tuple(c.evidence_ids),
                error=c.error,
            )
        )
    evidence: dict[str, list[Evidence]] = {i: [] for i in ids}
    for e in conn.execute(_READ_EVIDENCE, {"k_ids": ids}):
        evidence[e.run_id].append(
            Evidence(id=e.evidence_id, tool=e.tool, summary=e.summary, data=e.data, location=e.location)
        )
    findings: dict[str, list[Finding]] = {i: [] for i in ids}
    for f in conn.execute(_READ_FINDINGS, {"k_ids": ids}):
        findings[f.run_id].append(
            Finding(
                title=f.title,
                severity=Severity(f.severity),
                description=f.description,
                recommendation=f.recommendation,
                evidence_ids=tuple(f.evidence_ids),
                agent_id=f.agent_id,
                grounded=f.grounded,
            )
        )
    return [
        AgentRun(
            task_id=r.task_id,
            step_id=r.step_id,
            agent_id=r.agent_id,
            status=StepStatus(r.status),
            tool_calls=tuple(calls[r.id]),
            evidence=tuple(evidence[r.id]),
            findings=tuple(findings[r.id]),
            summary=r.summary,
            provider=r.provider,
            model=r.model,
            tokens_in=r.tokens_in,
            tokens_out=r.tokens_out,
            cost_usd=r.cost_usd,
            duration_seconds=r.duration_seconds,
            attempts=r.attempts,
            error=r.error,
        )
        for r in rows
    ]


def finding_to_json(finding: Finding) -> dict[str, Any]:
    """A finding as stored in results and returned by the API."""
    data = asdict(finding)
    data["severity"] = finding.severity.value
    data["evidence_ids"] = list(finding.evidence_ids)
    data["confirmed_by"] = list(finding.confirmed_by)
    return data


def _finding_from_json(data: dict[str, Any]) -> Finding:
    return Finding(
        title=data["title"],
        severity=Severity(data["severity"]),
        description=data.get("description", ""),
        recommendation=data.get("recommendation", ""),
        evidence_ids=tuple(data.get("evidence_ids", ())),
        agent_id=data.get("agent_id", ""),
        grounded=bool(data.get("grounded")),
        confirmed_by=tuple(data.get("confirmed_by", ())),
    )


def save_result(tx: WriteTx, result: Result) -> None:
    """Persist (or replace, after a retry) a task's report."""
    tx.conn.execute(_DELETE_RESULT, {"k_task": result.task_id})
    quality = asdict(result.quality)
    quality["overall"] = result.quality.overall
    tx.conn.execute(
        _INSERT_RESULT,
        {
            "task_id": result.task_id,
            "summary": result.summary,
            "findings": [finding_to_json(f) for f in result.findings],
            "remediation": list(result.remediation),
            "quality": quality,
            "stats": result.stats,
            "created_at": result.created_at,
        },
    )


def read_result(conn: Connection, task_id: str) -> Result | None:
    """A task's report, if it has one."""
    row = conn.execute(_READ_RESULT, {"k_task": task_id}).one_or_none()
    if row is None:
        return None
    quality = {k: v for k, v in row.quality.items() if k != "overall"}
    return Result(
        task_id=row.task_id,
        summary=row.summary,
        findings=tuple(_finding_from_json(f) for f in row.findings),
        remediation=tuple(row.remediation),
        quality=QualityScore(**quality),
        stats=row.stats,
        created_at=row.created_at,
    )
