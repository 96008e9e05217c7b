"""Agent runs (step checkpoints) with their tool calls, evidence and findings; and task results."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrion.domain.findings import Evidence, Finding, Severity
from orchestrion.domain.tasks import AgentRun, QualityScore, Result, StepStatus, ToolCall, utcnow
from orchestrion.store.database import WriteTx
from orchestrion.store.models import AgentRunRow, EvidenceRow, FindingRow, ResultRow, ToolCallRow


async def save_run(tx: WriteTx, run: AgentRun) -> int:
    """Persist a step's checkpoint, replacing an earlier run of the same step (a retried failure)."""
    session = tx.session
    await session.execute(
        delete(AgentRunRow).where(AgentRunRow.task_id == run.task_id, AgentRunRow.step_id == run.step_id)
    )
    row = AgentRunRow(
        task_id=run.task_id,
        step_id=run.step_id,
        agent_id=run.agent_id,
        status=run.status.value,
        summary=run.summary,
        provider=run.provider,
        model=run.model,
        tokens_in=run.tokens_in,
        tokens_out=run.tokens_out,
        cost_usd=run.cost_usd,
        duration_seconds=run.duration_seconds,
        attempts=run.attempts,
        error=run.error,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    run_id = row.id
    session.add_all(
        ToolCallRow(
            run_id=run_id,
            position=i,
            tool=c.tool,
            arguments=c.arguments,
            result_digest=c.result_digest,
            duration_seconds=c.duration_seconds,
            evidence_ids=list(c.evidence_ids),
            error=c.error,
        )
        for i, c in enumerate(run.tool_calls)
    )
    session.add_all(
        EvidenceRow(
            task_id=run.task_id,
            evidence_id=e.id,
            run_id=run_id,
            position=i,
            tool=e.tool,
            summary=e.summary,
            data=e.data,
            location=e.location,
        )
        for i, e in enumerate(run.evidence)
    )
    session.add_all(
        FindingRow(
            run_id=run_id,
            position=i,
            agent_id=f.agent_id,
            title=f.title[:500],
            severity=f.severity.value,
            description=f.description,
            recommendation=f.recommendation,
            evidence_ids=list(f.evidence_ids),
            grounded=f.grounded,
        )
        for i, f in enumerate(run.findings)
    )
    return run_id


async def read_runs(session: AsyncSession, task_id: str) -> list[AgentRun]:
    """Every checkpointed run of a task, with tool calls, evidence and findings."""
    rows = list(
        (
            await session.execute(
                select(AgentRunRow).where(AgentRunRow.task_id == task_id).order_by(AgentRunRow.id)
            )
        ).scalars()
    )
    if not rows:
        return []
    ids = [r.id for r in rows]
    calls: dict[int, list[ToolCall]] = {i: [] for i in ids}
    for c in (
        await session.execute(
            select(ToolCallRow)
            .where(ToolCallRow.run_id.in_(ids))
            .order_by(ToolCallRow.run_id, ToolCallRow.position)
        )
    ).scalars():
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
    evidence: dict[int, list[Evidence]] = {i: [] for i in ids}
    for e in (
        await session.execute(
            select(EvidenceRow)
            .where(EvidenceRow.run_id.in_(ids))
            .order_by(EvidenceRow.run_id, EvidenceRow.position)
        )
    ).scalars():
        evidence[e.run_id].append(
            Evidence(id=e.evidence_id, tool=e.tool, summary=e.summary, data=e.data, location=e.location)
        )
    findings: dict[int, list[Finding]] = {i: [] for i in ids}
    for f in (
        await session.execute(
            select(FindingRow)
            .where(FindingRow.run_id.in_(ids))
            .order_by(FindingRow.run_id, FindingRow.position)
        )
    ).scalars():
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


async def save_result(tx: WriteTx, result: Result) -> None:
    """Persist (or replace, after a retry) a task's report."""
    await tx.session.execute(delete(ResultRow).where(ResultRow.task_id == result.task_id))
    quality = asdict(result.quality)
    quality["overall"] = result.quality.overall
    tx.session.add(
        ResultRow(
            task_id=result.task_id,
            summary=result.summary,
            findings=[finding_to_json(f) for f in result.findings],
            remediation=list(result.remediation),
            quality=quality,
            stats=result.stats,
            created_at=result.created_at,
        )
    )


async def read_result(session: AsyncSession, task_id: str) -> Result | None:
    """A task's report, if it has one."""
    row = await session.get(ResultRow, task_id)
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
