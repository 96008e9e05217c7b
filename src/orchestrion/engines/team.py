"""The DAG engine: runs a plan's steps with checkpoints, timeouts, retries and a budget.

Every engine (team, parallel, creative, recall) is an instance of it: engines differ in how their
tasks are planned (`engines/planner.py`) and in their concurrency; what each step does is the
StepExecutor for the kind of agent it names (`engines/steps.py`, `engines/executors.py`).

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

from orchestrion.agents.registry import AgentRegistry
from orchestrion.agents.runner import AgentRunner
from orchestrion.domain.events import EventType
from orchestrion.domain.tasks import AgentRun, Result, Step, StepStatus, Task, ToolCall, utcnow
from orchestrion.engines.base import Engine, Finalizer
from orchestrion.engines.executors import ReporterExecutor, SpecialistExecutor
from orchestrion.engines.frontier import FINISHED, Frontier
from orchestrion.engines.steps import StepContext, StepExecutor, dependency_order, task_concurrency
from orchestrion.exceptions import BudgetExceededError, LeaseLostError, OrchestrionError
from orchestrion.monitoring.metrics import Metrics
from orchestrion.providers.budget import TaskBudget
from orchestrion.providers.context import UsageMeter, bind_call
from orchestrion.store import llm_calls as ledger_store
from orchestrion.store import runs as run_store
from orchestrion.store import tasks as task_store
from orchestrion.store.database import Database, WriteTx
from orchestrion.store.events import append_event, append_events
from orchestrion.tools.base import InputFile

logger = logging.getLogger(__name__)


class TeamEngine(Engine):
    """Runs any plan's DAG: steps in parallel where it allows, up to `step_concurrency` at once.

    Args:
        name: The engine's name (team, parallel, creative, recall).
        executors: Step executors by agent kind, added to the team's own (specialist, reporter).
        step_concurrency: Steps in flight per task; a task's `options.concurrency` may lower it.
    """

    def __init__(
        self,
        *,
        db: Database,
        registry: AgentRegistry,
        runner: AgentRunner,
        metrics: Metrics,
        name: str = "team",
        executors: Sequence[StepExecutor] = (),
        step_concurrency: int = 8,
        retry_backoff: float = 0.5,
        llm_max_tokens: int = 256,
    ) -> None:
        self.name = name
        self._db = db
        self._registry = registry
        self._runner = runner
        self._metrics = metrics
        self._step_concurrency = step_concurrency
        self._backoff = retry_backoff
        self._executors: dict[str, StepExecutor] = {}
        for executor in (
            SpecialistExecutor(runner),
            ReporterExecutor(registry, runner, llm_max_tokens=llm_max_tokens),
            *executors,
        ):
            for kind in executor.kinds:
                self._executors[kind] = executor

    @property
    def step_concurrency(self) -> int:
        """Steps in flight per task at most."""
        return self._step_concurrency

    async def run(
        self, task: Task, files: Sequence[InputFile], *, worker_id: str, finalize: Finalizer | None = None
    ) -> Mapping[str, StepStatus]:
        assert task.plan is not None
        plan = task.plan
        frontier = Frontier(
            plan.steps, {s.id: (s.status if s.status in FINISHED else StepStatus.PENDING) for s in plan.steps}
        )
        states = frontier.states
        attempts = {s.id: s.attempts for s in plan.steps}
        runs: dict[str, AgentRun] = {}
        finished: list[StepOutcome] = []
        running: dict[asyncio.Task[StepOutcome], str] = {}
        # Steps start only into free slots, so `step.started` means started, not waiting for a slot.
        concurrency = task_concurrency(task, self._step_concurrency)
        budget = await self._budget(task)
        halted: list[BudgetExceededError] = []
        try:
            while True:
                ready, skipped = frontier.take(concurrency - len(running))
                if halted:
                    # Over budget: nothing new starts; what is running finishes or fails fast.
                    for step in ready:
                        frontier.set_state(step.id, StepStatus.SKIPPED)
                    skipped, ready = skipped + ready, []
                    while frontier.waiting():  # and every step still waiting is skipped too
                        more, also = frontier.take(len(plan.steps))
                        for step in more:
                            frontier.set_state(step.id, StepStatus.SKIPPED)
                        skipped += also + more
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
                            {step.id: attempts[step.id] for step in ready},
                            skipped,
                            finalize if done and not halted else None,
                            dict(states) if done and not halted else {},
                            (frontier.done, frontier.total, frontier.tally[StepStatus.SUCCEEDED]),
                        )
                    )
                    finished.clear()
                if done and halted:
                    raise halted[0]
                for step in ready:
                    attempts[step.id] += 1
                    job = asyncio.create_task(
                        self._execute(task, step, attempts[step.id], files, runs, worker_id, budget),
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
                    frontier.set_state(outcome.step.id, outcome.run.status)
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
        executor = self._executors.get(spec.kind)
        if executor is None:  # a plan this engine cannot run: retrying cannot help
            unable = f"the {self.name} engine cannot run {spec.kind} steps"
            failed = AgentRun(
                task_id=task.id,
                step_id=step.id,
                agent_id=spec.id,
                status=StepStatus.FAILED,
                attempts=first_attempt,
                error=unable,
            )
            return StepOutcome(step=step, run=failed, result=None)
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
                        run, result = await executor.execute(
                            StepContext(
                                task=task,
                                step=step,
                                spec=spec,
                                attempt=attempt,
                                files=files,
                                on_tool_call=functools.partial(
                                    self._tool_called, worker_id, task.id, step.id, attempt
                                ),
                                read_dependencies=functools.partial(self._dependency_runs, task, step, runs),
                            )
                        )
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

    async def _dependency_runs(self, task: Task, step: Step, known: Mapping[str, AgentRun]) -> list[AgentRun]:
        """The runs of `step`'s dependencies: from this execution, else as checkpointed earlier."""
        runs = [known[d] for d in step.depends_on if d in known]
        if len(runs) < len(step.depends_on):
            # Resumed or retried: steps checkpointed by an earlier execution are read back.
            stored = await self._db.read(lambda conn: run_store.read_runs(conn, task.id))
            wanted = set(step.depends_on)
            runs += [r for r in stored if r.step_id in wanted and r.step_id not in known]
        return dependency_order(runs, step)


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


def _commit_round(
    task: Task,
    worker_id: str,
    finished: Sequence[StepOutcome],
    ready: Sequence[Step],
    attempts: Mapping[str, int],
    skipped: Sequence[Step],
    finalize: Finalizer | None,
    states: Mapping[str, StepStatus],
    progress: tuple[int, int, int],
    tx: WriteTx,
) -> None:
    """One round's transaction; `states` are the final ones (with `finalize`), `progress` is
    (steps done, steps in the plan, steps succeeded)."""
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
        done, total, succeeded = progress
        append_event(
            tx,
            task.id,
            EventType.TASK_PROGRESS,
            {
                "steps_done": done,
                "steps_total": total,
                "percent": round(100 * done / max(1, total), 1),
                "succeeded": succeeded,
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
