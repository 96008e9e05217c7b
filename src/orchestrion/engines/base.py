"""The Engine ABC: a strategy that executes a task's plan."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence

from orchestrion.domain.tasks import StepStatus, Task
from orchestrion.store.database import WriteTx
from orchestrion.tools.base import InputFile

Finalizer = Callable[[WriteTx, Mapping[str, StepStatus]], None]
"""Writes the task's outcome in the engine's last transaction, given the final step states."""


class Engine(abc.ABC):
    """Executes a claimed task, checkpointing as it goes; returns the final state of each step."""

    name: str

    @abc.abstractmethod
    async def run(
        self, task: Task, files: Sequence[InputFile], *, worker_id: str, finalize: Finalizer | None = None
    ) -> Mapping[str, StepStatus]:
        """Run (or resume) the task's plan under `worker_id`'s lease.

        Every checkpoint is fenced on that lease (LeaseLostError once another worker took the run);
        `finalize` joins the transaction of the last checkpoint.
        """
