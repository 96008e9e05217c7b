"""A historical prior for task outcomes, used until learned models exist.

Success: the posterior mean of Beta(4 + successes, 1 + failures) over the latest finished tasks of the
type: a prior of 0.8 worth five tasks, which history overrides quickly. Duration: the median and 90th
percentile of recent durations; with no history, 15 s per planned step (p50) and four times that (p90).
Confidence: n / (n + 10), so it reaches one half after ten tasks of the type.
"""

from __future__ import annotations

import statistics
import time

from orchestrion.domain.tasks import Prediction, TaskStatus
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
        self._cache: dict[str, tuple[float, list[tuple[str, float | None]]]] = {}

    async def predict(self, task_type: str, *, steps: int) -> Prediction:
        """Predict the outcome of a task of `task_type` with a plan of `steps` steps."""
        outcomes = await self._outcomes(task_type)
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
            cost_usd=0.0,
            confidence=round(n / (n + 10), 4),
            sample_size=n,
            model="prior",
        )

    async def _outcomes(self, task_type: str) -> list[tuple[str, float | None]]:
        now = time.monotonic()
        cached = self._cache.get(task_type)
        if cached and now - cached[0] < self._cache_seconds:
            return cached[1]
        outcomes = await self._db.read(lambda conn: task_store.recent_outcomes(conn, task_type))
        self._cache[task_type] = (now, outcomes)
        return outcomes
