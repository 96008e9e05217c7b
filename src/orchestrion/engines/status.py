"""Engine status (idle, processing, overloaded), published as `engine.status` notices.

The coordinator tells the tracker when a run starts, when one finishes and when it queued one; the
tracker works out each engine's state from its running count, the queue depth and the worker count,
keeps the latest snapshot (for the API) and publishes a notice on the `engines` channel whenever the
snapshot changes. The tracker is synchronous, so it never makes the coordinator wait for the bus;
`NoticeRelay` does the asynchronous publishing for it (and for the circuit breakers' listeners).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
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


@dataclass(frozen=True, kw_only=True)
class EngineStatus:
    """An engine's status now.

    Attributes:
        engine: The engine's name.
        state: `overloaded` when every worker is busy and runs are waiting, `processing` when it runs
            or runs are waiting for a free worker, `idle` otherwise.
        running: Runs this engine executes in this process.
        queued: Runs waiting for a worker (the queue is shared by the engines).
        concurrency: Workers in this process (0 without an embedded worker).
        changed_at: When the snapshot last changed (UTC).
    """

    engine: str
    state: EngineState
    running: int
    queued: int
    concurrency: int
    changed_at: datetime

    def notice(self, previous: EngineState | None) -> Notice:
        """The `engine.status` notice WebSocket clients receive on the `engines` channel."""
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
            },
            created_at=self.changed_at,
        )


class EngineStatusTracker:
    """Tracks each engine's state and publishes it when it changes.

    Args:
        engines: The engines' names.
        queue_depth: Runs waiting for a worker now.
        concurrency: Workers in this process.
        publish: Where notices go (None: tracked, not published).
    """

    def __init__(
        self,
        engines: Iterable[str],
        *,
        queue_depth: Callable[[], int],
        concurrency: int,
        publish: NoticeSink | None = None,
    ) -> None:
        self._queue_depth = queue_depth
        self._concurrency = concurrency
        self._publish = publish
        now = utcnow()
        self._status = {
            name: EngineStatus(
                engine=name,
                state=EngineState.IDLE,
                running=0,
                queued=0,
                concurrency=concurrency,
                changed_at=now,
            )
            for name in engines
        }

    def snapshot(self) -> list[EngineStatus]:
        """Every engine's latest status."""
        return list(self._status.values())

    def run_started(self, engine: str) -> None:
        """A worker started running a task with `engine`."""
        self._update(engine, running_delta=1)

    def run_finished(self, engine: str) -> None:
        """A run of `engine` ended (whatever its outcome)."""
        self._update(engine, running_delta=-1)

    def refresh(self) -> None:
        """Re-read the queue depth (after queuing a run) and publish the engines whose status changed."""
        for engine in self._status:
            self._update(engine, running_delta=0)

    def _update(self, engine: str, *, running_delta: int) -> None:
        current = self._status.get(engine)
        if current is None:
            # An engine the tracker was not told about (a later issue adds engines): track it from now.
            current = EngineStatus(
                engine=engine,
                state=EngineState.IDLE,
                running=0,
                queued=0,
                concurrency=self._concurrency,
                changed_at=utcnow(),
            )
        running = max(0, current.running + running_delta)
        queued = self._queue_depth()
        busy = sum(s.running for name, s in self._status.items() if name != engine) + running
        if queued > 0 and busy >= self._concurrency:
            state = EngineState.OVERLOADED
        elif running > 0 or queued > 0:
            state = EngineState.PROCESSING
        else:
            state = EngineState.IDLE
        if (state, running, queued) == (current.state, current.running, current.queued):
            self._status[engine] = current
            return
        status = replace(current, state=state, running=running, queued=queued, changed_at=utcnow())
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
