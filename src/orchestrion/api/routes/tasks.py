"""/api/v1/tasks: submit, read, act on tasks; their progress, result and events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import Connection

from orchestrion.api.deps import CallerDep, OperatorDep, RuntimeDep
from orchestrion.api.schemas import (
    EventPublic,
    EventsPublic,
    EvidencePublic,
    FindingPublic,
    LLMCallPublic,
    PlanPublic,
    PredictionPublic,
    ProgressPublic,
    QualityPublic,
    ResultPublic,
    SelectionPublic,
    StepProgress,
    StepPublic,
    StepUsagePublic,
    TaskCreate,
    TaskPublic,
    TasksPublic,
    TaskUsagePublic,
    UsageTotalsPublic,
)
from orchestrion.api.sse import stream_task_events
from orchestrion.domain.llm import LLMCall
from orchestrion.domain.tasks import TERMINAL_STATUSES, AgentRun, Result, StepStatus, Task, TaskStatus, utcnow
from orchestrion.engines.coordinator import TaskRequest
from orchestrion.exceptions import NotFoundError, UnknownChoiceError, ValidationError
from orchestrion.store import llm_calls as ledger_store
from orchestrion.store import runs as run_store
from orchestrion.store import tasks as task_store
from orchestrion.store.events import read_events

router = APIRouter(prefix="/tasks", tags=["tasks"])

_STATUSES = [s.value for s in TaskStatus]


def task_public(task: Task) -> TaskPublic:
    """Domain task to API schema (inputs are never echoed back)."""
    plan = None
    if task.plan is not None:
        plan = PlanPublic(
            steps=[
                StepPublic(
                    id=s.id,
                    agent_id=s.agent_id,
                    depends_on=list(s.depends_on),
                    status=s.status.value,
                    attempts=s.attempts,
                    error=s.error,
                )
                for s in task.plan.steps
            ],
            reasons=list(task.plan.reasons),
            selection=SelectionPublic.model_validate(asdict(task.plan.selection))
            if task.plan.selection
            else None,
        )
    prediction = PredictionPublic.model_validate(task.prediction.to_json()) if task.prediction else None
    return TaskPublic(
        id=task.id,
        owner_id=task.owner_id,
        title=task.title,
        task_type=task.task_type,
        target=task.target,
        status=task.status.value,
        priority=task.priority,
        agents=list(task.agents),
        plan=plan,
        prediction=prediction,
        budget=task.budget,
        deadline_seconds=task.deadline_seconds,
        allow_active_scanning=task.allow_active_scanning,
        engine=task.engine,
        error=task.error,
        attempt=task.attempt,
        created_at=task.created_at,
        queued_at=task.queued_at,
        started_at=task.started_at,
        finished_at=task.finished_at,
    )


@router.post("", status_code=201, response_model=TaskPublic)
async def create_task(body: TaskCreate, caller: OperatorDep, runtime: RuntimeDep) -> TaskPublic:
    """Submit a task: validated, planned, predicted, persisted and (by default) queued."""
    task = await runtime.coordinator.submit(
        caller,
        TaskRequest(
            title=body.title,
            task_type=body.task_type,
            target=body.target,
            files=[f.model_dump() for f in body.inputs.files],
            paths=body.inputs.paths,
            priority=body.priority,
            agents=body.agents,
            auto_execute=body.auto_execute,
            budget=body.budget.model_dump(exclude_none=True),
            deadline_seconds=body.deadline_seconds,
            allow_active_scanning=body.allow_active_scanning,
            required_capabilities=body.required_capabilities,
            items=body.inputs.items,
            engine=body.engine,
            options=body.options.model_dump(exclude_none=True),
        ),
    )
    return task_public(task)


@router.get("", response_model=TasksPublic)
async def read_tasks(
    caller: CallerDep,
    runtime: RuntimeDep,
    status: str | None = None,
    task_type: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> TasksPublic:
    """The caller's tasks (all tasks for admins), newest first, cursor-paginated."""
    if status is not None and status not in _STATUSES:
        raise UnknownChoiceError(field="status", value=status, choices=_STATUSES)
    if task_type is not None and task_type not in runtime.registry.task_types:
        raise UnknownChoiceError(
            field="task_type", value=task_type, choices=sorted(runtime.registry.task_types)
        )
    tasks, next_cursor = await runtime.db.read(
        lambda conn: task_store.list_tasks(
            conn,
            owner_id=caller.owner_filter,
            status=status,
            task_type=task_type,
            limit=limit,
            cursor=cursor,
        )
    )
    return TasksPublic(data=[task_public(t) for t in tasks], next_cursor=next_cursor)


@router.get("/{task_id}", response_model=TaskPublic)
async def read_task(task_id: str, caller: CallerDep, runtime: RuntimeDep) -> TaskPublic:
    """One task."""
    return task_public(await runtime.coordinator.get(caller, task_id))


@router.post("/{task_id}/execute", response_model=TaskPublic)
async def execute_task(task_id: str, caller: OperatorDep, runtime: RuntimeDep) -> TaskPublic:
    """Queue a pending task (one submitted with auto_execute false)."""
    return task_public(await runtime.coordinator.execute(caller, task_id))


@router.post("/{task_id}/cancel", response_model=TaskPublic)
async def cancel_task(task_id: str, caller: OperatorDep, runtime: RuntimeDep) -> TaskPublic:
    """Cancel a task; a running one stops cooperatively."""
    return task_public(await runtime.coordinator.cancel(caller, task_id))


@router.post("/{task_id}/retry", response_model=TaskPublic)
async def retry_task(task_id: str, caller: OperatorDep, runtime: RuntimeDep) -> TaskPublic:
    """Resume a failed, partial or cancelled task from its checkpoints."""
    return task_public(await runtime.coordinator.retry(caller, task_id))


@router.get("/{task_id}/progress", response_model=ProgressPublic)
async def read_progress(task_id: str, caller: CallerDep, runtime: RuntimeDep) -> ProgressPublic:
    """Status, percent done, per-step states, elapsed time and an ETA."""
    task = await runtime.coordinator.get(caller, task_id)
    steps = task.plan.steps if task.plan else ()
    finished = sum(
        1 for s in steps if s.status in (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED)
    )
    terminal = task.status in TERMINAL_STATUSES
    percent = 100.0 if terminal else round(100.0 * finished / len(steps), 1) if steps else 0.0
    elapsed = None
    if task.started_at:
        elapsed = ((task.finished_at or utcnow()) - task.started_at).total_seconds()
    eta = None
    if terminal:
        eta = 0.0
    elif task.prediction is not None:
        eta = max(0.0, task.prediction.duration_p50_seconds - (elapsed or 0.0))
    return ProgressPublic(
        task_id=task.id,
        status=task.status.value,
        percent=percent,
        steps=[
            StepProgress(id=s.id, agent_id=s.agent_id, status=s.status.value, attempts=s.attempts)
            for s in steps
        ],
        elapsed_seconds=round(elapsed, 3) if elapsed is not None else None,
        eta_seconds=round(eta, 3) if eta is not None else None,
    )


@router.get("/{task_id}/result", response_model=ResultPublic)
async def read_result(task_id: str, caller: CallerDep, runtime: RuntimeDep) -> ResultPublic:
    """The report: ranked findings citing evidence, remediation and quality score."""
    task = await runtime.coordinator.get(caller, task_id)

    def load(conn: Connection) -> tuple[Result | None, list[AgentRun], list[LLMCall]]:
        found = run_store.read_result(conn, task_id)
        if found is None:
            return None, [], []
        return found, run_store.read_runs(conn, task_id), ledger_store.read_llm_calls(conn, task_id)

    if runtime.router is not None:
        await runtime.router.flush()
    result, runs, calls = await runtime.db.read(load)
    if result is None:
        raise NotFoundError(
            f"task {task_id} has no result yet (status {task.status.value})",
            details={"task_id": task_id, "status": task.status.value},
        )
    cited = {i for f in result.findings for i in f.evidence_ids}
    evidence = [
        EvidencePublic(id=e.id, tool=e.tool, summary=e.summary, location=e.location, data=e.data)
        for r in runs
        for e in r.evidence
        if e.id in cited
    ]
    return ResultPublic(
        task_id=task_id,
        status=task.status.value,
        summary=result.summary,
        findings=[FindingPublic(**run_store.finding_to_json(f)) for f in result.findings],
        remediation=list(result.remediation),
        quality=QualityPublic(**result.quality.__dict__, overall=result.quality.overall),
        evidence=evidence,
        stats=result.stats,
        usage=task_usage(calls, with_calls=False),
        created_at=result.created_at,
    )


@router.get("/{task_id}/usage", response_model=TaskUsagePublic)
async def read_task_usage(task_id: str, caller: CallerDep, runtime: RuntimeDep) -> TaskUsagePublic:
    """Every LLM call the task made (retries and fallbacks included), with totals per step and overall."""
    await runtime.coordinator.get(caller, task_id)
    if runtime.router is not None:
        await runtime.router.flush()
    calls = await runtime.db.read(lambda conn: ledger_store.read_llm_calls(conn, task_id))
    return task_usage(calls, with_calls=True)


def task_usage(calls: Sequence[LLMCall], *, with_calls: bool) -> TaskUsagePublic:
    """Totals per step and overall, from the ledger: what was really spent, failed attempts included."""
    total = UsageTotalsPublic()
    steps: dict[str, StepUsagePublic] = {}
    for call in calls:
        key = call.step_id or ""
        step = steps.get(key) or steps.setdefault(key, StepUsagePublic(step_id=key))
        for bucket in (total, step):
            bucket.calls += 1
            bucket.failed_calls += int(call.outcome != "ok")
            bucket.fallback_calls += int(call.position > 0)
            bucket.input_tokens += call.input_tokens
            bucket.output_tokens += call.output_tokens
            bucket.cost_usd = round(bucket.cost_usd + call.cost_usd, 8)
        if call.outcome == "ok" and call.deployment not in step.deployments:
            step.deployments.append(call.deployment)
    return TaskUsagePublic(
        total=total,
        steps=list(steps.values()),
        calls=[LLMCallPublic(**asdict(c)) for c in calls] if with_calls else [],
    )


@router.get("/{task_id}/events", response_model=EventsPublic)
async def read_task_events(
    task_id: str,
    request: Request,
    caller: CallerDep,
    runtime: RuntimeDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    last_event_id: Annotated[str | None, Header()] = None,
) -> Response | EventsPublic:
    """Events after `after`; as SSE (`Accept: text/event-stream`, resumable with Last-Event-ID)."""
    task = await runtime.coordinator.get(caller, task_id)
    if "text/event-stream" in request.headers.get("accept", ""):
        if last_event_id is not None:
            if not last_event_id.strip().isdigit():
                raise ValidationError("Last-Event-ID must be an event sequence number", field="Last-Event-ID")
            after = max(after, int(last_event_id))
        stream = stream_task_events(
            runtime.db, runtime.bus, task_id, after=after, is_final=task.status in TERMINAL_STATUSES
        )
        return StreamingResponse(
            stream,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    events = await runtime.db.read(lambda conn: read_events(conn, task_id, after=after, limit=limit))
    return EventsPublic(
        data=[
            EventPublic(task_id=e.task_id, seq=e.seq, type=e.type, data=e.data, created_at=e.created_at)
            for e in events
        ],
        last_seq=events[-1].seq if events else after,
    )
