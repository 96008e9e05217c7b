"""The coordinator: the life of a task from submission to its final status.

It validates and persists submissions (with plan and prediction), moves tasks between statuses under
the rules of ARCHITECTURE.md, and is the queue's job handler: it resolves inputs, runs the engine
under the task's deadline, watches for cancellation and writes the final status with its event.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from orchestrion.agents.registry import AgentRegistry
from orchestrion.domain.events import EventType
from orchestrion.domain.tasks import TERMINAL_STATUSES, StepStatus, Task, TaskStatus, utcnow
from orchestrion.engines.base import Engine
from orchestrion.engines.outcome import final_status, queue_wait, write_outcome
from orchestrion.engines.planner import PlanLimits, plan_task
from orchestrion.engines.routing import EngineRules
from orchestrion.engines.status import EngineStatusTracker
from orchestrion.exceptions import (
    BudgetExceededError,
    ConflictError,
    LeaseLostError,
    NotFoundError,
    OrchestrionError,
    ValidationError,
)
from orchestrion.intelligence.features import Submission
from orchestrion.intelligence.service import Intelligence
from orchestrion.monitoring.metrics import Metrics
from orchestrion.queue.base import Job, JobQueue
from orchestrion.store import tasks as task_store
from orchestrion.store.database import Database, WriteTx
from orchestrion.store.events import append_event, append_events
from orchestrion.tools.base import InputFile
from orchestrion.tools.inputs import decode_upload, encode_upload, validate_uploaded_files
from orchestrion.tools.policy import WorkspacePolicy
from orchestrion.tools.targets import TargetPolicy

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TaskRequest:
    """A validated submission (the API's TaskCreate, minus transport concerns)."""

    title: str
    task_type: str
    target: str | None = None
    files: Sequence[Mapping[str, Any]] = ()
    paths: Sequence[str] = ()
    priority: int = 5
    agents: Sequence[str] | None = None
    auto_execute: bool = True
    budget: Mapping[str, Any] = field(default_factory=dict)
    deadline_seconds: float | None = None
    allow_active_scanning: bool = False
    required_capabilities: Sequence[str] = ()
    items: Sequence[str] = ()
    engine: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


class MemoryIngest(Protocol):
    """What the coordinator needs of the Recall engine: remember a finished task's report."""

    def ingest_task(self, task_id: str) -> Awaitable[int]:
        """Store the task's result and findings as memory items; returns how many."""
        ...


@dataclass(frozen=True, kw_only=True)
class Caller:
    """Who is asking: admins see every task, others their own."""

    user_id: str
    role: str

    @property
    def owner_filter(self) -> str | None:
        """The owner to restrict queries to (None for admins)."""
        return None if self.role == "admin" else self.user_id


class Coordinator:
    """Submission, state transitions and execution of tasks."""

    def __init__(
        self,
        *,
        db: Database,
        queue: JobQueue,
        registry: AgentRegistry,
        engines: Mapping[str, Engine],
        rules: EngineRules,
        intelligence: Intelligence,
        policy: WorkspacePolicy,
        metrics: Metrics,
        limits: PlanLimits,
        max_input_files: int,
        max_input_bytes: int,
        targets: TargetPolicy | None = None,
        engine_status: EngineStatusTracker | None = None,
        memory: MemoryIngest | None = None,
    ) -> None:
        self._db = db
        self._queue = queue
        self._registry = registry
        self._engines = dict(engines)
        self._rules = rules
        self._intelligence = intelligence
        self._policy = policy
        self._metrics = metrics
        self._limits = limits
        self._targets = targets or TargetPolicy()
        self._max_files = max_input_files
        self._max_bytes = max_input_bytes
        self._memory = memory
        # Without a tracker from the runtime, status is still tracked (for `snapshot`), not published.
        self._engine_status = engine_status or EngineStatusTracker(
            self._engines, queue_depth=queue.depth_by_engine, limits=rules.limits
        )

    @property
    def rules(self) -> EngineRules:
        """The engine rules and limits."""
        return self._rules

    def engine_load(self, engine: str) -> tuple[int, int]:
        """(running, waiting) runs of `engine` in this process."""
        return (
            int(self._queue.running_by_engine().get(engine, 0)),
            int(self._queue.depth_by_engine().get(engine, 0)),
        )

    # -- submission and transitions ---------------------------------------------------------------

    async def submit(self, caller: Caller, request: TaskRequest) -> Task:
        """Validate, plan, predict, persist (with `task.created`) and, unless told not to, enqueue."""
        spec = self._registry.task_type(request.task_type)
        files = validate_uploaded_files(
            request.files, max_files=self._max_files, max_total_bytes=self._max_bytes
        )
        for index, path in enumerate(request.paths):
            try:
                self._policy.resolve(path)
            except ValidationError as exc:
                raise ValidationError(exc.message, field=f"inputs.paths[{index}]") from exc
        if spec.needs_target:
            if not request.target:
                raise ValidationError(
                    f"task type {spec.id} needs a target: a host, host:port or URL", field="target"
                )
            # Refuses malformed targets now; addresses are checked when tools connect (they may
            # resolve differently by then, and the check must be on what is connected to).
            self._targets.parse_target(request.target)
        if spec.needs_inputs and not files and not request.paths:
            raise ValidationError(
                f"task type {spec.id} needs inputs: inputs.files (uploaded content) or inputs.paths "
                "(under ORCHESTRION_WORKSPACE_ROOTS)",
                field="inputs",
            )
        choice = self._rules.choose(request.task_type, preference=request.engine, load=self.engine_load)
        now = utcnow()
        submission = Submission(
            task_type=request.task_type,
            submitted_at=now,
            target=request.target,
            input_bytes=sum(len(f.data) for f in files),
            input_files=len(files),
            input_paths=len(request.paths),
            priority=request.priority,
            agents=tuple(request.agents) if request.agents else None,
            required_capabilities=tuple(request.required_capabilities),
        )
        assessment = await self._intelligence.assess(submission)
        team = assessment.selection.team
        planned = plan_task(
            self._registry,
            task_type=request.task_type,
            team=team,
            selection=assessment.selection,
            items=request.items,
            file_names=[f.name for f in files] + list(request.paths),
            options={k: v for k, v in request.options.items() if v is not None},
            limits=self._limits,
            parse_target=self._targets.parse_target,
        )
        plan = dataclasses.replace(planned.plan, reasons=(*planned.plan.reasons, f"engine {choice.reason}"))
        prediction = assessment.prediction
        status = TaskStatus.QUEUED if request.auto_execute else TaskStatus.PENDING
        task = Task(
            id=str(uuid.uuid4()),
            owner_id=caller.user_id,
            title=request.title,
            task_type=request.task_type,
            target=request.target,
            inputs={
                "files": [encode_upload(f) for f in files],
                "paths": list(request.paths),
                "items": planned.items,
                "options": planned.options,
            },
            priority=request.priority,
            agents=team,
            status=status,
            budget=dict(request.budget),
            deadline_seconds=request.deadline_seconds,
            allow_active_scanning=request.allow_active_scanning,
            engine=choice.engine,
            plan=plan,
            prediction=prediction,
            created_at=now,
            queued_at=now if request.auto_execute else None,
        )
        events: list[tuple[str, dict[str, Any]]] = [
            (
                EventType.TASK_CREATED,
                {
                    "task_type": task.task_type,
                    "agents": list(team),
                    "status": status.value,
                    "engine": choice.engine,
                    "fell_back": choice.fell_back,
                },
            )
        ]
        if request.auto_execute:
            events.append((EventType.TASK_QUEUED, {"priority": task.priority}))

        def persist(tx: WriteTx) -> None:
            task_store.insert_task(tx, task)
            self._intelligence.record(tx, task_id=task.id, submission=submission, assessment=assessment)
            append_events(tx, task.id, events)

        await self._db.write(persist)
        self._metrics.tasks_submitted_total.labels(task.task_type).inc()
        if request.auto_execute:
            await self._queue.enqueue(task.id, priority=task.priority, engine=task.engine)
            self._engine_status.refresh()
        return task

    async def get(self, caller: Caller, task_id: str) -> Task:
        """A task the caller may see; NotFoundError otherwise (never revealing others' tasks)."""
        owner = caller.owner_filter
        task = await self._db.read(lambda conn: task_store.get_task(conn, task_id, owner_id=owner))
        if task is None:
            raise NotFoundError(f"task {task_id} not found", details={"task_id": task_id})
        return task

    async def execute(self, caller: Caller, task_id: str) -> Task:
        """Queue a pending task."""
        task = await self.get(caller, task_id)
        if task.status is not TaskStatus.PENDING:
            raise ConflictError(
                f"task is {task.status.value}; only a pending task can be executed", status=task.status
            )
        await self._requeue(task, from_status=TaskStatus.PENDING, retry=False)
        return await self.get(caller, task_id)

    async def retry(self, caller: Caller, task_id: str) -> Task:
        """Resume a failed, partial or cancelled task from its checkpoints."""
        task = await self.get(caller, task_id)
        if task.status not in (TaskStatus.FAILED, TaskStatus.PARTIAL, TaskStatus.CANCELLED):
            raise ConflictError(
                f"task is {task.status.value}; only failed, partial or cancelled tasks can be retried",
                status=task.status,
            )
        await self._requeue(task, from_status=task.status, retry=True)
        return await self.get(caller, task_id)

    async def _requeue(self, task: Task, *, from_status: TaskStatus, retry: bool) -> None:
        def requeue(tx: WriteTx) -> bool:
            moved = task_store.transition_task(
                tx,
                task.id,
                from_status=from_status,
                status=TaskStatus.QUEUED,
                queued_at=utcnow(),
                error=None,
                finished_at=None,
                cancel_requested=False,
            )
            if moved:
                if retry:
                    task_store.reset_unfinished_steps(tx, task.id, plan=task.plan)
                append_event(tx, task.id, EventType.TASK_QUEUED, {"priority": task.priority, "retry": retry})
            return moved

        if not await self._db.write(requeue):
            raise ConflictError("task changed status meanwhile", status="changed")
        await self._queue.enqueue(task.id, priority=task.priority, engine=task.engine, queued_at=time.time())
        self._engine_status.refresh()

    async def cancel(self, caller: Caller, task_id: str) -> Task:
        """Cancel now when not started; ask the worker to stop when running."""
        task = await self.get(caller, task_id)
        if task.status in TERMINAL_STATUSES:
            raise ConflictError(f"task is already {task.status.value}", status=task.status)
        if task.status in (TaskStatus.PENDING, TaskStatus.QUEUED):

            def cancel_now(tx: WriteTx) -> bool:
                moved = task_store.transition_task(
                    tx,
                    task.id,
                    from_status=task.status,
                    status=TaskStatus.CANCELLED,
                    finished_at=utcnow(),
                    error="cancelled by user",
                )
                if moved:
                    task_store.cancel_unfinished_steps(tx, task.id)
                    append_event(tx, task.id, EventType.TASK_CANCELLED, {"reason": "cancelled by user"})
                return moved

            if await self._db.write(cancel_now):
                self._metrics.observe_task(task.task_type, TaskStatus.CANCELLED.value, None)
                return await self.get(caller, task_id)
        await self._db.write(lambda tx: task_store.set_task_fields(tx, task.id, cancel_requested=True))
        if self._queue.request_cancel(task.id):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await self._wait_terminal(task.id)
        return await self.get(caller, task_id)

    async def _wait_terminal(self, task_id: str) -> None:
        while True:
            task = await self._db.read(lambda conn: task_store.get_task(conn, task_id))
            if task is None or task.status in TERMINAL_STATUSES:
                return
            await asyncio.sleep(0.02)

    # -- execution --------------------------------------------------------------------------------

    async def handle(self, job: Job) -> None:
        """The queue's handler: run a claimed task to a final status (or leave it to be resumed)."""
        task = job.claimed if isinstance(job.claimed, Task) else None
        if task is None:
            task = await self._db.read(lambda conn: task_store.get_task(conn, job.task_id, with_inputs=True))
        if task is None or task.status is not TaskStatus.RUNNING:
            return
        wait = queue_wait(task, claimed_at=utcnow())
        if wait is not None:
            self._metrics.queue_wait.labels(task.task_type).observe(wait)
        engine = self._engine_for(task)
        self._metrics.runs_in_progress.inc()
        self._engine_status.run_started(engine.name, task.id)
        crashed: str | None = None
        try:
            await self._run(task, job, engine)
        except Exception as exc:
            crashed = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            self._metrics.runs_in_progress.dec()
            self._engine_status.run_finished(engine.name, task.id, crashed=crashed)
        if self._memory is not None:
            try:
                await self._memory.ingest_task(task.id)
            except Exception:
                logger.exception("could not remember the report of task %s", task.id)

    def _engine_for(self, task: Task) -> Engine:
        engine = self._engines.get(task.engine)
        if engine is None:
            # Queued before a restart whose configuration no longer has that engine.
            logger.warning(
                "task %s was queued for engine %s, which is gone; the team runs it", task.id, task.engine
            )
            engine = self._engines["team"]
        return engine

    def record_start(self, tx: WriteTx, job: Job, attempt: int, started_at: datetime | None) -> Task | None:
        """Claim hook: stamp the first start and emit `task.started` in the claim's transaction."""
        if started_at is None:
            task_store.set_task_fields(tx, job.task_id, started_at=utcnow())
        append_event(
            tx,
            job.task_id,
            EventType.TASK_STARTED,
            {"attempt": attempt, "resumed": attempt > 1, "worker": job.worker_id},
        )
        return task_store.get_task(tx.conn, job.task_id, with_inputs=True)

    async def _run(self, task: Task, job: Job, engine: Engine) -> None:
        started_at = task.started_at or utcnow()
        try:
            files = await self._load_files(task)
        except OrchestrionError as exc:
            await self._finish(task, TaskStatus.FAILED, started_at, job.worker_id, error=exc.message)
            await self._intelligence.observe(task.id)
            return
        remaining = None
        if task.deadline_seconds is not None:
            remaining = task.deadline_seconds - (utcnow() - started_at).total_seconds()
        outcome = await self._supervise(engine, task, files, job, remaining)
        if outcome == "lease_lost":
            logger.warning("lost the lease of task %s; another worker resumes it", task.id)
            return
        if outcome == "cancelled":
            await self._finish(
                task, TaskStatus.CANCELLED, started_at, job.worker_id, error="cancelled by user"
            )
        elif outcome == "deadline":
            deadline_error = f"deadline of {task.deadline_seconds:g}s exceeded"
            await self._finish(task, TaskStatus.FAILED, started_at, job.worker_id, error=deadline_error)
        elif isinstance(outcome, BudgetExceededError):
            await self._finish(task, TaskStatus.FAILED, started_at, job.worker_id, error=outcome.message)
        elif not isinstance(outcome, str):
            # The engine wrote the outcome with its last checkpoint (see `_finalize`).
            status, _ = final_status(task, outcome)
            self._metrics.observe_task(task.task_type, status.value, (utcnow() - started_at).total_seconds())
        await self._intelligence.observe(task.id)

    async def _supervise(
        self, engine: Engine, task: Task, files: Sequence[InputFile], job: Job, remaining: float | None
    ) -> str | BudgetExceededError | Mapping[str, StepStatus]:
        if job.cancel_requested.is_set():
            return "cancelled"
        if remaining is not None and remaining <= 0:
            return "deadline"
        finalize = functools.partial(self._finalize, task, job.worker_id)
        run = asyncio.create_task(
            engine.run(task, files, worker_id=job.worker_id, finalize=finalize), name=f"engine-{task.id}"
        )
        cancel = asyncio.create_task(job.cancel_requested.wait())
        lost = asyncio.create_task(job.lease_lost.wait())
        try:
            done, _ = await asyncio.wait(
                {run, cancel, lost}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in (run, cancel, lost):
                if not waiter.done():
                    waiter.cancel()
            await asyncio.gather(run, cancel, lost, return_exceptions=True)
        if run in done:
            error = run.exception()
            if isinstance(error, LeaseLostError):
                return "lease_lost"
            if isinstance(error, BudgetExceededError):
                return error
            return run.result()
        if cancel in done:
            return "cancelled"
        if lost in done:
            return "lease_lost"
        return "deadline"

    async def _load_files(self, task: Task) -> list[InputFile]:
        uploaded = [
            decode_upload(f["name"], f["content"], f.get("encoding", "utf-8"))
            for f in task.inputs.get("files", [])
        ]
        paths = task.inputs.get("paths", [])
        return uploaded + (await self._policy.aread_files(paths) if paths else [])

    async def _finish(
        self, task: Task, status: TaskStatus, started_at: datetime, worker_id: str, error: str | None = None
    ) -> None:
        """End a task the engine did not finish (cancelled, past its deadline, unreadable inputs)."""
        await self._db.write(functools.partial(write_outcome, task, status, error, worker_id))
        self._metrics.observe_task(task.task_type, status.value, (utcnow() - started_at).total_seconds())

    def _finalize(self, task: Task, worker_id: str, tx: WriteTx, states: Mapping[str, StepStatus]) -> None:
        status, error = final_status(task, states)
        write_outcome(task, status, error, worker_id, tx)
