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
        self, task: Task, files: Sequence[InputFile], *, finalize: Finalizer | None = None
    ) -> Mapping[str, StepStatus]:
        """Run (or resume) the task's plan; `finalize` joins the transaction of its last checkpoint."""
