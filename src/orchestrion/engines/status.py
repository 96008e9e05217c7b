"""Engine status (idle, processing, overloaded, error), published as `engine.status` notices.

The coordinator tells the tracker when a run of an engine starts, when it finishes (and whether the
engine crashed) and when it queued one; the tracker works out each engine's state from its running
runs, its waiting runs and its limit, keeps the latest snapshot (for the API and system health) and
publishes a notice on the `engines` channel whenever an engine's snapshot changes. The tracker is
synchronous, so it never makes the coordinator wait for the bus; `NoticeRelay` does the asynchronous
publishing for it (and for the circuit breakers' listeners).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from orchestrion.bus.base import EventBus
from orchestrion.domain.events import Channel, EventType, Notice
from orchestrion.domain.tasks import utcnow

logger = logging.getLogger(__name__)

NoticeSink = Callable[[Notice], None]
"""Takes a notice to publish without blocking the caller."""


class EngineState(enum.StrEnum):
    """What an engine is doing."""

    IDLE = "idle"
    PROCESSING = "processing"
    OVERLOADED = "overloaded"
    ERROR = "error"


@dataclass(frozen=True, kw_only=True)
class EngineStatus:
    """An engine's status now.

    Attributes:
        engine: The engine's name.
        state: `error` when its last run crashed (cleared by the next run that does not);
            `overloaded` when every one of its slots is busy and runs wait for it (never in a process
            without workers); `processing` when it runs or has runs waiting; `idle` otherwise.
        running: Runs this engine executes in this process.
        queued: Runs waiting for this engine in this process.
        concurrency: Runs it may execute at once in this process (its limit; 0 without a worker).
        current_tasks: Ids of the runs it executes.
        error: What went wrong in its last run, when it crashed.
        changed_at: When the snapshot last changed (UTC).
    """

    engine: str
    state: EngineState
    running: int
    queued: int
    concurrency: int
    changed_at: datetime
    current_tasks: tuple[str, ...] = field(default=())
    error: str | None = None

    def notice(self, previous: EngineState | None) -> Notice:
        """The `engine.status` notice WebSocket clients receive on the `engines` channel.

        Every role may read that channel, so the notice carries counts, not the ids of anyone's tasks
        (GET /api/v1/engines shows those to whoever may see them).
        """
        return Notice(
            channel=Channel.ENGINES.value,
            type=EventType.ENGINE_STATUS.value,
            data={
                "engine": self.engine,
                "state": self.state.value,
                "previous": previous.value if previous is not None else None,
                "running": self.running,
                "queued": self.queued,
                "concurrency": self.concurrency,
                "error": self.error,
            },
            created_at=self.changed_at,
        )


class EngineStatusTracker:
    """Tracks each engine's state and publishes it when it changes.

    Args:
        engines: The engines' names.
        queue_depth: Runs waiting for each engine now (engine -> count).
        limits: Runs each engine may execute at once here (0 for all without an embedded worker).
        publish: Where notices go (None: tracked, not published).
    """

    def __init__(
        self,
        engines: Iterable[str],
        *,
        queue_depth: Callable[[], Mapping[str, int]],
        limits: Mapping[str, int],
        publish: NoticeSink | None = None,
    ) -> None:
        self._queue_depth = queue_depth
        self._limits = dict(limits)
        self._publish = publish
        self._tasks: dict[str, list[str]] = {}
        now = utcnow()
        self._status = {name: self._initial(name, now) for name in engines}

    def _initial(self, engine: str, now: datetime) -> EngineStatus:
        return EngineStatus(
            engine=engine,
            state=EngineState.IDLE,
            running=0,
            queued=0,
            concurrency=self._limits.get(engine, 0),
            changed_at=now,
        )

    def snapshot(self) -> list[EngineStatus]:
        """Every engine's latest status."""
        return list(self._status.values())

    def status(self, engine: str) -> EngineStatus | None:
        """One engine's latest status."""
        return self._status.get(engine)

    def run_started(self, engine: str, task_id: str = "") -> None:
        """A worker started running a task with `engine`."""
        self._tasks.setdefault(engine, []).append(task_id)
        self._update(engine)

    def run_finished(self, engine: str, task_id: str = "", *, crashed: str | None = None) -> None:
        """A run of `engine` ended; `crashed` says what broke when the engine itself failed."""
        tasks = self._tasks.get(engine, [])
        if task_id in tasks:
            tasks.remove(task_id)
        elif tasks:
            tasks.pop()
        self._update(engine, error=crashed, clear_error=crashed is None)

    def refresh(self) -> None:
        """Re-read the queue (after queuing a run) and publish the engines whose status changed."""
        for engine in list(self._status):
            self._update(engine)

    def _update(self, engine: str, *, error: str | None = None, clear_error: bool = False) -> None:
        current = self._status.get(engine) or self._initial(engine, utcnow())
        tasks = tuple(t for t in self._tasks.get(engine, []) if t)
        running = len(self._tasks.get(engine, []))
        queued = int(self._queue_depth().get(engine, 0))
        failure = error if error is not None else (None if clear_error else current.error)
        limit = current.concurrency
        if failure is not None:
            state = EngineState.ERROR
        elif queued > 0 and running >= limit > 0:
            state = EngineState.OVERLOADED
        elif running > 0 or queued > 0:
            state = EngineState.PROCESSING
        else:
            state = EngineState.IDLE
        if (state, running, queued, tasks, failure) == (
            current.state,
            current.running,
            current.queued,
            current.current_tasks,
            current.error,
        ):
            self._status[engine] = current
            return
        status = replace(
            current,
            state=state,
            running=running,
            queued=queued,
            current_tasks=tasks,
            error=failure,
            changed_at=utcnow(),
        )
        self._status[engine] = status
        if self._publish is not None:
            self._publish(status.notice(current.state))


class NoticeRelay:
    """Publishes notices on the bus for synchronous code, in order, without making it wait.

    Each notice becomes a task that first waits for the previous one, so a subscriber sees a
    deployment's circuit open before it sees it half-open, whatever the bus backend. The tasks are
    kept until done and `aclose` waits for those still pending. A notice sent from a thread without
    an event loop goes to the loop the relay last ran in; before any, it is dropped (and logged).
    """

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def send(self, notice: Notice) -> None:
        """Publish `notice` soon; never blocks and never raises."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._loop = loop
            self._spawn(notice)
        elif self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._spawn, notice)
        else:
            logger.debug("no event loop to publish a %s notice on; dropped", notice.type)

    def _spawn(self, notice: Notice) -> None:
        task = asyncio.create_task(self._deliver(notice, self._last), name=f"notice-{notice.type}")
        self._last = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, notice: Notice, after: asyncio.Task[None] | None) -> None:
        if after is not None and not after.done():
            # `wait` rather than `await`: the previous notice's failure is its own, not this one's.
            await asyncio.wait({after})
        try:
            await self._bus.publish_notice(notice)
        except Exception:
            logger.exception("publishing a %s notice failed", notice.type)

    async def aclose(self) -> None:
        """Wait for the notices still being published."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._last = None
