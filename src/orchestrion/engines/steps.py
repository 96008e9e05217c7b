"""Step executors: what one step of a plan does, by the kind of agent it names.

The DAG engine (`engines/team.py`) owns scheduling, checkpoints, timeouts, retries, the budget and
the usage meter; an executor only does the work of one attempt of one step and returns its AgentRun
(and, for the step that writes the report, the task's Result). An attempt fails by raising an
OrchestrionError (retried up to the step's `max_retries`) or by exceeding the step's timeout.

Engines differ in how they plan a task (`engines/planner.py`) and in their concurrency, not in this
contract: a map step of the Parallel engine, a candidate of the Creative engine and a specialist of a
team are all steps of one DAG, checkpointed the same way.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from orchestrion.agents.runner import ToolCallHook
from orchestrion.agents.spec import AgentSpec
from orchestrion.domain.tasks import AgentRun, Result, Step, Task
from orchestrion.tools.base import InputFile

ITEM_PREFIX = "item-"
"""Map steps of the Parallel engine are `item-00000`, `item-00001`...: the index into the task's items."""

CANDIDATE_PREFIX = "candidate-"
"""Generator steps of the Creative engine are `candidate-0`, `candidate-1`...: their variant index."""

RECALL_STEP = "recall"
"""The hybrid pipeline's first step: the memory librarian searching the owner's memory."""

ANALYSIS_PREFIX = "analysis-"
"""The hybrid pipeline's team steps, `analysis-<agent_id>`, run under `options.analysis_task_type`."""


@dataclass(frozen=True, kw_only=True)
class StepContext:
    """Everything an executor may use for one attempt of one step.

    Attributes:
        task: The task, with its inputs (`task.inputs["items"]` for batches, `task.inputs["options"]`
            for engine options).
        step: The step being run.
        spec: The agent the step names.
        attempt: This attempt's number (1 for the first run of the step).
        files: The task's input files, read once per run.
        on_tool_call: Report a tool call (persists `tool.called`, observes its metric).
    """

    task: Task
    step: Step
    spec: AgentSpec
    attempt: int
    files: Sequence[InputFile]
    on_tool_call: ToolCallHook
    read_dependencies: Callable[[], Awaitable[list[AgentRun]]]

    async def dependency_runs(self) -> list[AgentRun]:
        """The checkpointed runs of the steps this one depends on (this run's or an earlier one's)."""
        return await self.read_dependencies()

    @property
    def items(self) -> list[str]:
        """The task's batch items (empty for tasks that have none)."""
        return [str(item) for item in self.task.inputs.get("items", [])]

    @property
    def options(self) -> Mapping[str, Any]:
        """The task's engine options (operation, instruction, candidates...), empty when none."""
        options = self.task.inputs.get("options") or {}
        return options if isinstance(options, Mapping) else {}


StepOutput = tuple[AgentRun, Result | None]
"""An attempt's checkpoint: the run and, from the step that writes the report, the task's Result."""


class StepExecutor(abc.ABC):
    """Runs one attempt of a step whose agent is of one of `kinds`."""

    kinds: ClassVar[tuple[str, ...]]

    @abc.abstractmethod
    async def execute(self, ctx: StepContext) -> StepOutput:
        """Do the step's work. Raise OrchestrionError to fail the attempt (it may be retried)."""


def task_concurrency(task: Task, default: int) -> int:
    """Steps a task may have in flight: its `options.concurrency` when set, at most `default`."""
    options = task.inputs.get("options") or {}
    requested = options.get("concurrency") if isinstance(options, Mapping) else None
    if isinstance(requested, int) and not isinstance(requested, bool) and requested >= 1:
        return min(requested, default)
    return default


def item_index(step_id: str) -> int:
    """The batch index a map step works on (ValueError for any other step)."""
    if not step_id.startswith(ITEM_PREFIX):
        raise ValueError(f"{step_id} is not a map step")
    return int(step_id.removeprefix(ITEM_PREFIX))


def item_step_id(index: int) -> str:
    """The id of the map step for item `index`."""
    return f"{ITEM_PREFIX}{index:05d}"


def candidate_index(step_id: str) -> int:
    """The variant index of a generator step (ValueError for any other step)."""
    if not step_id.startswith(CANDIDATE_PREFIX):
        raise ValueError(f"{step_id} is not a candidate step")
    return int(step_id.removeprefix(CANDIDATE_PREFIX))


def candidate_step_id(index: int) -> str:
    """The id of the generator step for variant `index`."""
    return f"{CANDIDATE_PREFIX}{index}"


def dependency_order(runs: Sequence[AgentRun], step: Step) -> list[AgentRun]:
    """`runs` in the order of `step.depends_on` (steps without a run are left out)."""
    by_step = {run.step_id: run for run in runs}
    return [by_step[d] for d in step.depends_on if d in by_step]
