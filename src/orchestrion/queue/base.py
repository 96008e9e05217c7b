"""The JobQueue ABC. The store is the source of truth: a run is claimed with a lease before it runs.

Any backend (local asyncio now, taskiq/Redis Streams later) only moves task ids to workers; the
claim, heartbeat and resume protocol lives in the store (`store/tasks.py`), shared by all of them.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrion.store.database import WriteTx


@dataclass(kw_only=True)
class Job:
    """A claimed run, handed to the handler."""

    task_id: str
    worker_id: str
    claimed: Any = None  # what the claim hook returned (the coordinator: the claimed task)
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)
    lease_lost: asyncio.Event = field(default_factory=asyncio.Event)


JobHandler = Callable[[Job], Awaitable[None]]
ClaimHook = Callable[[WriteTx, Job, int, datetime | None], Any]
"""Runs inside the claim's transaction: (tx, job, attempt, first start time or None)."""


class JobQueue(abc.ABC):
    """Moves runs to workers."""

    @abc.abstractmethod
    async def enqueue(
        self, task_id: str, *, priority: int = 5, engine: str = "team", queued_at: float | None = None
    ) -> None:
        """Make a queued task available to a worker of `engine` (queued now unless `queued_at` says)."""

    @abc.abstractmethod
    async def start(self, handler: JobHandler, *, on_claim: ClaimHook | None = None) -> None:
        """Start consuming (workers, heartbeats, the sweeper that resumes dead workers' runs).

        `on_claim` writes in the same transaction as a successful claim (the run's start event).
        """

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop consuming; runs in flight are cancelled and left for the next start to resume."""

    @abc.abstractmethod
    def request_cancel(self, task_id: str) -> bool:
        """Signal a run in this process to stop; False when it does not run here."""

    @abc.abstractmethod
    def depth(self) -> int:
        """Runs waiting for a worker here."""

    @abc.abstractmethod
    def running(self) -> int:
        """Runs executing here."""

    def depth_by_engine(self) -> Mapping[str, int]:
        """Runs waiting here, per engine."""
        return {}

    def running_by_engine(self) -> Mapping[str, int]:
        """Runs executing here, per engine."""
        return {}
