"""The scheduling frontier of a running plan, kept incrementally.

A round of the DAG engine must cost what changed, not the size of the plan: a batch of 10,000 map
steps finishes in as many rounds, and re-scanning every step (and the reduce step's 10,000
dependencies) each round would be quadratic. The frontier keeps, for every pending step, how many of
its dependencies are unfinished, and a heap of the steps whose dependencies are all finished, in plan
order. It also tallies the states, for the progress events.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping, Sequence

from orchestrion.domain.tasks import Step, StepStatus

FINISHED = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED})
"""Step states that are final within a run (a retry of the task may reopen them)."""


class Frontier:
    """Which steps may start, which must be skipped, and the tally of step states.

    Args:
        steps: The plan's steps, in plan order (the order ties are broken in).
        states: Every step's state at the start of the run (finished ones are kept, others pending).
    """

    def __init__(self, steps: Sequence[Step], states: Mapping[str, StepStatus]) -> None:
        self._steps = list(steps)
        self.states = dict(states)
        self.tally: Counter[StepStatus] = Counter(self.states.values())
        self._position = {step.id: i for i, step in enumerate(self._steps)}
        self._dependents: dict[str, list[str]] = {}
        for step in self._steps:
            for dependency in step.depends_on:
                self._dependents.setdefault(dependency, []).append(step.id)
        self._unfinished: dict[str, int] = {}
        self._open: list[int] = []
        for step in self._steps:
            if self.states[step.id] is StepStatus.PENDING:
                waiting = sum(1 for d in step.depends_on if self.states[d] not in FINISHED)
                self._unfinished[step.id] = waiting
                if waiting == 0:
                    self._open.append(self._position[step.id])
        heapq.heapify(self._open)

    @property
    def total(self) -> int:
        """Steps in the plan."""
        return len(self._steps)

    @property
    def done(self) -> int:
        """Steps finished (succeeded, failed or skipped)."""
        return sum(self.tally[status] for status in FINISHED)

    def set_state(self, step_id: str, state: StepStatus) -> None:
        """Record a step's new state; a finished step may open the steps that wait on it."""
        previous = self.states[step_id]
        self.states[step_id] = state
        self.tally[previous] -= 1
        self.tally[state] += 1
        if state in FINISHED and previous not in FINISHED:
            for dependent in self._dependents.get(step_id, ()):
                if dependent in self._unfinished:
                    self._unfinished[dependent] -= 1
                    if self._unfinished[dependent] == 0:
                        heapq.heappush(self._open, self._position[dependent])

    def take(self, limit: int) -> tuple[list[Step], list[Step]]:
        """Up to `limit` steps to start now, in plan order, and the steps to skip (marked skipped).

        A step whose trigger is ``all_succeeded`` is skipped when one of its dependencies did not
        succeed; skipping it may in turn open (and skip) the steps that wait on it.
        """
        ready: list[Step] = []
        skipped: list[Step] = []
        deferred: list[int] = []
        while self._open:
            position = heapq.heappop(self._open)
            step = self._steps[position]
            if step.trigger == "all_succeeded" and any(
                self.states[d] is not StepStatus.SUCCEEDED for d in step.depends_on
            ):
                del self._unfinished[step.id]
                skipped.append(step)
                self.set_state(step.id, StepStatus.SKIPPED)
            elif len(ready) < limit:
                del self._unfinished[step.id]
                ready.append(step)
            else:
                deferred.append(position)
                if len(deferred) >= 64:
                    break  # keep the round short: the rest are looked at when slots free up
        for position in deferred:
            heapq.heappush(self._open, position)
        return ready, skipped

    def waiting(self) -> bool:
        """Whether steps are open (their dependencies finished) but not started yet."""
        return bool(self._open)
