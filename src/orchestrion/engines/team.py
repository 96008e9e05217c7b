"""TeamEngine: runs a plan's DAG with checkpoints, timeouts, retries, and a reporter step.

The scheduler commits one transaction per round: the checkpoints of the steps that just finished
(each AgentRun with its tool calls, evidence and findings, the step status and `step.completed` or
`step.failed`), the starts of the steps they unblocked (`step.started`) and, in the last round, the
task's outcome. A checkpoint is therefore never visible without the state it leads to, and a crash
between rounds loses only work that was not checkpointed. On resume, succeeded, failed and skipped
steps are kept; steps caught running (the worker died) or cancelled are run again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from orchestrion.agents.prompts import summary_request, usable_text
from orchestrion.agents.registry import AgentRegistry
from orchestrion.agents.runner import AgentRequest, AgentRunner
from orchestrion.domain.events import EventType
from orchestrion.domain.tasks import AgentRun, Result, Step, StepStatus, Task, ToolCall, utcnow
from orchestrion.engines.base import Engine, Finalizer
from orchestrion.engines.report import aggregate, headline
from orchestrion.exceptions import BudgetExceededError, LeaseLostError, OrchestrionError, ProviderError
from orchestrion.monitoring.metrics import Metrics
from orchestrion.providers.budget import TaskBudget
from orchestrion.providers.context import UsageMeter, bind_call, current_call
from orchestrion.store import llm_calls as ledger_store
from orchestrion.store import runs as run_store
from orchestrion.store import tasks as task_store
from orchestrion.store.database import Database, WriteTx
from orchestrion.store.events import append_event, append_events
from orchestrion.tools.base import InputFile

logger = logging.getLogger(__name__)

_FINISHED = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED})


class TeamEngine(Engine):
    """Specialists in parallel where the DAG allows, then the reporter."""

    name = "team"

    def __init__(
        self,
        *,
        db: Database,
        registry: AgentRegistry,
        runner: AgentRunner,
        metrics: Metrics,
        step_concurrency: int = 8,
        retry_backoff: float = 0.5,
        llm_max_tokens: int = 256,
    ) -> None:
        self._db = db
        self._registry = registry
        self._runner = runner
        self._metrics = metrics
        self._step_concurrency = step_concurrency
        self._backoff = retry_backoff
        self._llm_max_tokens = llm_max_tokens

    async def run(
        self, task: Task, files: Sequence[InputFile], *, worker_id: str, finalize: Finalizer | None = None
    ) -> Mapping[str, StepStatus]:
        assert task.plan is not None
        plan = task.plan
        states = {s.id: (s.status if s.status in _FINISHED else StepStatus.PENDING) for s in plan.steps}
        attempts = {s.id: s.attempts for s in plan.steps}
        runs: dict[str, AgentRun] = {}
        finished: list[StepOutcome] = []
        running: dict[asyncio.Task[StepOutcome], str] = {}
        slots = asyncio.Semaphore(self._step_concurrency)
        budget = await self._budget(task)
        halted: list[BudgetExceededError] = []
        try:
            while True:
                ready, skipped = _schedule(plan.steps, states, set(running.values()))
                if halted:
                    # Over budget: nothing new starts; what is running finishes or fails fast.
                    for step in ready:
                        states[step.id] = StepStatus.SKIPPED
                    skipped, ready = skipped + ready, []
                done = not ready and not skipped and not running
                if finished or ready or skipped or (done and finalize is not None):
                    # One transaction per scheduling round: the checkpoints of the steps that just
                    # finished, the starts of the steps they unblocked and, at the end, the outcome.
                    await self._db.write(
                        functools.partial(
                            _commit_round,
                            task,
                            worker_id,
                            list(finished),
                            ready,
                            dict(attempts),
                            skipped,
                            finalize if done and not halted else None,
                            dict(states),
                        )
                    )
                    finished.clear()
                if done and halted:
                    raise halted[0]
                for step in ready:
                    attempts[step.id] += 1
                    job = asyncio.create_task(
                        self._guarded(slots, task, step, attempts[step.id], files, runs, worker_id, budget),
                        name=f"step-{step.id}",
                    )
                    running[job] = step.id
                if done:
                    return states
                if not running:
                    continue
                completed, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for job in completed:
                    outcome = job.result()
                    del running[job]
                    states[outcome.step.id] = outcome.run.status
                    attempts[outcome.step.id] = outcome.run.attempts
                    runs[outcome.step.id] = outcome.run
                    finished.append(outcome)
                    if outcome.over_budget is not None and not halted:
                        halted.append(outcome.over_budget)
        finally:
            for job in running:
                job.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def _guarded(
        self,
        slots: asyncio.Semaphore,
        task: Task,
        step: Step,
        attempt: int,
        files: Sequence[InputFile],
        runs: Mapping[str, AgentRun],
        worker_id: str,
        budget: TaskBudget,
    ) -> StepOutcome:
        async with slots:
            return await self._execute(task, step, attempt, files, runs, worker_id, budget)

    async def _budget(self, task: Task) -> TaskBudget:
        """The task's budget, charged with what earlier runs of it already spent."""
        max_tokens = task.budget.get("max_tokens")
        max_cost = task.budget.get("max_cost_usd")
        budget = TaskBudget(
            max_tokens=int(max_tokens) if max_tokens is not None else None,
            max_cost_usd=float(max_cost) if max_cost is not None else None,
        )
        if budget.limited:
            budget.spent_tokens, budget.spent_cost_usd = await self._db.read(
                lambda conn: ledger_store.read_task_usage(conn, task.id)
            )
        return budget

    async def _execute(
        self,
        task: Task,
        step: Step,
        first_attempt: int,
        files: Sequence[InputFile],
        runs: Mapping[str, AgentRun],
        worker_id: str,
        budget: TaskBudget,
    ) -> StepOutcome:
        """Run a step whose first attempt the scheduler marked started; retries mark their own."""
        spec = self._registry.agent(step.agent_id)
        error = ""
        attempt = first_attempt
        for retry in range(step.max_retries + 1):
            attempt = first_attempt + retry
            if retry:
                await self._db.write(
                    _fenced(worker_id, task.id, functools.partial(_start_steps, task, [(step, attempt)]))
                )
            started = time.perf_counter()
            meter = UsageMeter()
            try:
                with bind_call(task_id=task.id, step_id=step.id, budget=budget, meter=meter):
                    async with asyncio.timeout(step.timeout_seconds):
                        if spec.kind == "reporter":
                            run, result = await self._report(task, step, attempt, files, runs)
                        else:
                            run = await self._runner.run(
                                spec,
                                AgentRequest(
                                    task_id=task.id,
                                    step_id=step.id,
                                    title=task.title,
                                    task_type=task.task_type,
                                    target=task.target,
                                    files=files,
                                    allow_active_scanning=task.allow_active_scanning,
                                ),
                                on_tool_call=functools.partial(
                                    self._tool_called, worker_id, task.id, step.id, attempt
                                ),
                            )
                            result = None
            except TimeoutError:
                error = f"step timed out after {step.timeout_seconds:g}s"
            except LeaseLostError:
                raise  # not the step's failure: this worker must stop writing
            except BudgetExceededError as exc:
                # Retrying cannot help: the task is out of budget. The engine stops the task.
                await self._flush_calls()
                self._metrics.observe_step(spec.id, StepStatus.FAILED, time.perf_counter() - started)
                failed = AgentRun(
                    task_id=task.id,
                    step_id=step.id,
                    agent_id=spec.id,
                    status=StepStatus.FAILED,
                    attempts=attempt,
                    error=exc.message,
                    **_usage(meter),
                )
                return StepOutcome(step=step, run=failed, result=None, over_budget=exc)
            except OrchestrionError as exc:
                error = exc.message
            except Exception as exc:
                logger.exception("step %s of task %s crashed", step.id, task.id)
                error = f"{type(exc).__name__}: {exc}"
            else:
                await self._flush_calls()
                run = replace(
                    run, attempts=attempt, duration_seconds=time.perf_counter() - started, **_usage(meter)
                )
                self._metrics.observe_step(spec.id, StepStatus.SUCCEEDED, time.perf_counter() - started)
                return StepOutcome(step=step, run=run, result=result)
            self._metrics.observe_step(spec.id, StepStatus.FAILED, time.perf_counter() - started)
            if retry < step.max_retries:
                delay = random.uniform(0, self._backoff * 2**retry)
                retrying = {
                    "step_id": step.id,
                    "attempt": attempt,
                    "error": error,
                    "delay_seconds": round(delay, 3),
                }
                await self._db.write(
                    _fenced(
                        worker_id,
                        task.id,
                        functools.partial(
                            append_event, task_id=task.id, type_=EventType.STEP_RETRYING, data=retrying
                        ),
                    )
                )
                await asyncio.sleep(delay)
        failed = AgentRun(
            task_id=task.id,
            step_id=step.id,
            agent_id=spec.id,
            status=StepStatus.FAILED,
            attempts=attempt,
            error=error,
        )
        return StepOutcome(step=step, run=failed, result=None)

    async def _flush_calls(self) -> None:
        """Write the step's call records first, so its `llm.called` events precede its outcome."""
        router = self._runner.router
        if router is not None:
            await router.flush()

    async def _tool_called(
        self, worker_id: str, task_id: str, step_id: str, attempt: int, call: ToolCall
    ) -> None:
        self._metrics.observe_tool(call.tool, "error" if call.error else "ok", call.duration_seconds)
        data = {
            "step_id": step_id,
            "attempt": attempt,
            "tool": call.tool,
            "evidence": len(call.evidence_ids),
            "duration_seconds": round(call.duration_seconds, 4),
            "error": call.error,
        }
        await self._db.write(
            _fenced(
                worker_id,
                task_id,
                functools.partial(append_event, task_id=task_id, type_=EventType.TOOL_CALLED, data=data),
            )
        )

    async def _report(
        self, task: Task, step: Step, attempt: int, files: Sequence[InputFile], known: Mapping[str, AgentRun]
    ) -> tuple[AgentRun, Result]:
        spec = self._registry.agent(step.agent_id)
        runs = [known[d] for d in step.depends_on if d in known]
        if len(runs) < len(step.depends_on):
            # Resumed: steps checkpointed by an earlier attempt are read back.
            stored = await self._db.read(lambda conn: run_store.read_runs(conn, task.id))
            runs += [r for r in stored if r.step_id in step.depends_on and r.step_id not in known]
        agg = aggregate(runs, planned_specialists=len(step.depends_on))
        summary = headline(
            findings=agg.findings, counts=agg.counts, agents=len(step.depends_on), inputs=len(files)
        )
        response = None
        router = self._runner.router
        if spec.analysis and router is not None and router.has_route(spec.route):
            try:
                response = await router.complete(
                    spec.route,
                    summary_request(
                        system_prompt=spec.system_prompt,
                        title=task.title,
                        findings=agg.findings,
                        max_tokens=self._llm_max_tokens,
                    ),
                )
                text = str(response.json().get("summary") or "").strip()
                if usable_text(text):
                    summary = f"{summary}\n\n{text}"
            except ProviderError as exc:
                logger.warning("reporter summary unavailable: %s", exc.message)
        # The reporter's own calls (fallbacks and retries included) are on the step's meter.
        own = current_call().meter or UsageMeter()
        tokens_in = sum(r.tokens_in for r in runs) + own.input_tokens
        tokens_out = sum(r.tokens_out for r in runs) + own.output_tokens
        stats = {
            "agents": len(step.depends_on),
            "agents_succeeded": sum(1 for r in runs if r.status is StepStatus.SUCCEEDED),
            "inputs": len(files),
            "evidence": sum(len(r.evidence) for r in runs),
            "tool_calls": sum(len(r.tool_calls) for r in runs),
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "cost_usd": round(sum(r.cost_usd for r in runs) + own.cost_usd, 8),
            "severity_counts": agg.counts,
            "ungrounded_findings": sum(1 for f in agg.findings if not f.grounded),
        }
        result = Result(
            task_id=task.id,
            summary=summary,
            findings=agg.findings,
            remediation=agg.remediation,
            quality=agg.quality,
            stats=stats,
            created_at=utcnow(),
        )
        run = AgentRun(
            task_id=task.id,
            step_id=step.id,
            agent_id=spec.id,
            status=StepStatus.SUCCEEDED,
            summary=summary,
            provider=response.provider if response else None,
            model=response.model if response else None,
            tokens_in=response.usage.input_tokens if response else 0,
            tokens_out=response.usage.output_tokens if response else 0,
            cost_usd=response.cost_usd if response else 0.0,
            attempts=attempt,
        )
        return run, result


@dataclass(frozen=True, kw_only=True)
class StepOutcome:
    """A finished step, waiting for the scheduler to checkpoint it."""

    step: Step
    run: AgentRun
    result: Result | None
    over_budget: BudgetExceededError | None = None


def _usage(meter: UsageMeter) -> dict[str, Any]:
    """A step attempt's LLM usage, from every call it made (retries and fallbacks included)."""
    return {
        "tokens_in": meter.input_tokens,
        "tokens_out": meter.output_tokens,
        "cost_usd": round(meter.cost_usd, 8),
    }


def _fenced(worker_id: str, task_id: str, unit: Callable[[WriteTx], None]) -> Callable[[WriteTx], None]:
    """`unit`, run only while `worker_id` still holds the task's lease (LeaseLostError otherwise)."""

    def fenced(tx: WriteTx) -> None:
        task_store.check_lease(tx, task_id, worker_id)
        unit(tx)

    return fenced


def _schedule(
    steps: Sequence[Step], states: dict[str, StepStatus], running: set[str]
) -> tuple[list[Step], list[Step]]:
    """Steps that may start now and steps to skip (a dependency did not succeed); marks the skipped."""
    ready: list[Step] = []
    skipped: list[Step] = []
    for step in steps:
        if states[step.id] is not StepStatus.PENDING or step.id in running:
            continue
        deps = [states[d] for d in step.depends_on]
        if any(d not in _FINISHED for d in deps):
            continue
        if step.trigger == "all_succeeded" and any(d is not StepStatus.SUCCEEDED for d in deps):
            states[step.id] = StepStatus.SKIPPED
            skipped.append(step)
        else:
            ready.append(step)
    return ready, skipped


def _commit_round(
    task: Task,
    worker_id: str,
    finished: Sequence[StepOutcome],
    ready: Sequence[Step],
    attempts: Mapping[str, int],
    skipped: Sequence[Step],
    finalize: Finalizer | None,
    states: Mapping[str, StepStatus],
    tx: WriteTx,
) -> None:
    task_store.check_lease(tx, task.id, worker_id)
    for outcome in finished:
        _checkpoint(task, outcome.step, outcome.run, outcome.result, tx)
    now = utcnow()
    for step in skipped:
        task_store.set_step_fields(tx, task.id, step.id, status=StepStatus.SKIPPED, finished_at=now)
        append_event(
            tx,
            task.id,
            EventType.STEP_FAILED,
            {
                "step_id": step.id,
                "agent_id": step.agent_id,
                "skipped": True,
                "error": "a dependency did not succeed",
            },
        )
    if finished or skipped:
        done = sum(1 for status in states.values() if status in _FINISHED)
        append_event(
            tx,
            task.id,
            EventType.TASK_PROGRESS,
            {
                "steps_done": done,
                "steps_total": len(states),
                "percent": round(100 * done / max(1, len(states)), 1),
                "succeeded": sum(1 for status in states.values() if status is StepStatus.SUCCEEDED),
            },
        )
    _start_steps(task, [(step, attempts[step.id] + 1) for step in ready], tx)
    if finalize is not None:
        finalize(tx, states)


def _start_steps(task: Task, steps: Sequence[tuple[Step, int]], tx: WriteTx) -> None:
    if not steps:
        return
    now = utcnow()
    for step, attempt in steps:
        task_store.set_step_fields(
            tx, task.id, step.id, status=StepStatus.RUNNING, attempts=attempt, started_at=now, error=None
        )
    append_events(
        tx,
        task.id,
        [(EventType.STEP_STARTED, {"step_id": s.id, "agent_id": s.agent_id, "attempt": a}) for s, a in steps],
    )


def _checkpoint(task: Task, step: Step, run: AgentRun, result: Result | None, tx: WriteTx) -> None:
    """One step's outcome: the run, the result (reporter), the step status and its event, atomically."""
    run_store.save_run(tx, run)
    if result is not None:
        run_store.save_result(tx, result)
    task_store.set_step_fields(
        tx, task.id, step.id, status=run.status, attempts=run.attempts, finished_at=utcnow(), error=run.error
    )
    data: dict[str, Any] = {
        "step_id": step.id,
        "agent_id": run.agent_id,
        "attempt": run.attempts,
        "duration_seconds": round(run.duration_seconds, 4),
    }
    if run.status is StepStatus.SUCCEEDED:
        data |= {
            "findings": len(run.findings),
            "evidence": len(run.evidence),
            "tokens": run.tokens_in + run.tokens_out,
        }
        append_event(tx, task.id, EventType.STEP_COMPLETED, data)
    else:
        append_event(tx, task.id, EventType.STEP_FAILED, data | {"error": run.error})
