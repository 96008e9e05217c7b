"""A historical prior for task outcomes, used until learned models exist.

Success: the posterior mean of Beta(4 + successes, 1 + failures) over the latest finished tasks of the
type: a prior of 0.8 worth five tasks, which history overrides quickly. Duration: the median and 90th
percentile of recent durations; with no history, 15 s per planned step (p50) and four times that (p90).
Cost: the median USD the same recent tasks spent on LLM calls (from the call ledger); 0 with no history.
Confidence: n / (n + 10), so it reaches one half after ten tasks of the type.
"""

from __future__ import annotations

import statistics
import time

from sqlalchemy import Connection

from orchestrion.domain.tasks import Prediction, TaskStatus
from orchestrion.store import llm_calls as ledger_store
from orchestrion.store import tasks as task_store
from orchestrion.store.database import Database

PRIOR_ALPHA = 4.0
PRIOR_BETA = 1.0
COLD_STEP_SECONDS = 15.0


class PriorPredictor:
    """Predictions from recent history, cached per task type for a few seconds."""

    def __init__(self, db: Database, *, cache_seconds: float = 5.0) -> None:
        self._db = db
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, list[tuple[str, float | None]], list[float]]] = {}

    async def predict(self, task_type: str, *, steps: int) -> Prediction:
        """Predict the outcome of a task of `task_type` with a plan of `steps` steps."""
        outcomes, costs = await self._history(task_type)
        finished = [(s, d) for s, d in outcomes if s != TaskStatus.CANCELLED.value]
        successes = sum(1 for s, _ in finished if s == TaskStatus.SUCCEEDED.value)
        n = len(finished)
        probability = (PRIOR_ALPHA + successes) / (PRIOR_ALPHA + PRIOR_BETA + n)
        durations = sorted(d for _, d in finished if d is not None)
        if durations:
            p50 = statistics.median(durations)
            p90 = durations[min(len(durations) - 1, int(0.9 * len(durations)))]
        else:
            p50 = COLD_STEP_SECONDS * steps
            p90 = 4 * p50
        return Prediction(
            success_probability=round(probability, 4),
            duration_p50_seconds=round(p50, 3),
            duration_p90_seconds=round(max(p90, p50), 3),
            cost_usd=round(statistics.median(costs), 6) if costs else 0.0,
            confidence=round(n / (n + 10), 4),
            sample_size=n,
            model="prior",
        )

    def forget(self, task_type: str) -> None:
        """Drop the cached history of a type (a task of it just finished)."""
        self._cache.pop(task_type, None)

    async def _history(self, task_type: str) -> tuple[list[tuple[str, float | None]], list[float]]:
        now = time.monotonic()
        cached = self._cache.get(task_type)
        if cached and now - cached[0] < self._cache_seconds:
            return cached[1], cached[2]

        def read(conn: Connection) -> tuple[list[tuple[str, float | None]], list[float]]:
            return (
                task_store.recent_outcomes(conn, task_type),
                ledger_store.read_recent_task_costs(conn, task_type),
            )

        outcomes, costs = await self._db.read(read)
        self._cache[task_type] = (now, outcomes, costs)
        return outcomes, costs
