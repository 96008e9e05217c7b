"""Which waiting run a free worker takes next: priority, then age, with a starvation guard.

Every waiting run has its task's priority (1..10, higher first) and the time it was queued. A run's
effective priority grows by one level for every `aging_seconds` it has waited, up to `max_boost`
levels, so a steady stream of urgent tasks cannot hold a low-priority one back forever: after
`aging_seconds * (10 - p)` seconds a priority-p run competes with fresh priority-10 runs and, being
older, goes first. Among equal effective priorities the oldest goes first.

A run is only taken when its engine has a free slot (`can_start`), so a busy engine's backlog does
not block runs of other engines: the scheduler skips to the best run that can start now.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Waiting:
    """A run waiting for a worker."""

    task_id: str
    priority: int
    engine: str
    queued_at: float
    seq: int

    def effective_priority(self, now: float, *, aging_seconds: float, max_boost: int) -> int:
        """The priority plus one level per `aging_seconds` waited, at most `max_boost` levels more."""
        if aging_seconds <= 0:
            return self.priority
        waited = max(0.0, now - self.queued_at)
        return self.priority + min(max_boost, int(waited // aging_seconds))


class PriorityScheduler:
    """The waiting runs of this process, ordered by effective priority and then age.

    Args:
        aging_seconds: Wait that raises a run's priority by one level (0 turns aging off).
        max_boost: The most levels aging may add.
    """

    def __init__(self, *, aging_seconds: float = 30.0, max_boost: int = 9) -> None:
        self._aging = aging_seconds
        self._max_boost = max_boost
        self._waiting: dict[str, Waiting] = {}
        self._seq = 0

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._waiting

    def __len__(self) -> int:
        return len(self._waiting)

    def push(self, task_id: str, *, priority: int, engine: str, queued_at: float) -> bool:
        """Add a run; False when it is already waiting."""
        if task_id in self._waiting:
            return False
        self._seq += 1
        self._waiting[task_id] = Waiting(
            task_id=task_id, priority=priority, engine=engine, queued_at=queued_at, seq=self._seq
        )
        return True

    def discard(self, task_id: str) -> None:
        """Forget a waiting run (cancelled before it started)."""
        self._waiting.pop(task_id, None)

    def pop(self, now: float, can_start: Callable[[str], bool] = lambda _engine: True) -> Waiting | None:
        """Remove and return the best run whose engine can start one now (None when there is none)."""
        best: Waiting | None = None
        best_key: tuple[int, float, int] | None = None
        allowed: dict[str, bool] = {}
        for run in self._waiting.values():
            ok = allowed.get(run.engine)
            if ok is None:
                ok = allowed[run.engine] = can_start(run.engine)
            if not ok:
                continue
            effective = run.effective_priority(now, aging_seconds=self._aging, max_boost=self._max_boost)
            key = (-effective, run.queued_at, run.seq)
            if best_key is None or key < best_key:
                best, best_key = run, key
        if best is not None:
            del self._waiting[best.task_id]
        return best

    def depth_by_engine(self) -> Counter[str]:
        """Waiting runs per engine."""
        return Counter(run.engine for run in self._waiting.values())

    def oldest_wait(self, now: float) -> float:
        """Seconds the longest-waiting run has waited (0 when none waits)."""
        if not self._waiting:
            return 0.0
        return max(0.0, now - min(run.queued_at for run in self._waiting.values()))
