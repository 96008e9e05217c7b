"""The Engine ABC: a strategy that executes a task's plan."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

from orchestrion.domain.tasks import StepStatus, Task
from orchestrion.tools.base import InputFile


class Engine(abc.ABC):
    """Executes a claimed task, checkpointing as it goes; returns the final state of each step."""

    name: str

    @abc.abstractmethod
    async def run(self, task: Task, files: Sequence[InputFile]) -> Mapping[str, StepStatus]:
        """Run (or resume) the task's plan."""
