"""The EventBus ABC and its bounded subscriptions."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Sequence
from typing import Generic, TypeVar

from orchestrion.domain.events import Event, Notice

T = TypeVar("T")


class BoundedStream(Generic[T]):
    """A bounded stream. A consumer that falls behind is cut off (`overflowed`), never waited for."""

    def __init__(self, *, maxsize: int) -> None:
        self.overflowed = False
        self.closed = False
        self._queue: asyncio.Queue[T | None] = asyncio.Queue(maxsize=maxsize)

    def offer(self, item: T) -> None:
        """Deliver without blocking; on a full queue mark the stream overflowed and close it."""
        if self.closed:
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    def close(self) -> None:
        """End the stream; `get` returns None once what was queued is drained."""
        if self.closed:
            return
        self.closed = True
        try:
            self._queue.put_nowait(None)
        except asyncio.QueueFull:
            # The consumer will see `closed` when it drains the queue and finds no sentinel.
            pass

    async def get(self) -> T | None:
        """The next item; None once closed and drained."""
        if self.closed and self._queue.empty():
            return None
        return await self._queue.get()


class Subscription(BoundedStream[Event]):
    """The events of one task (or of every task). Events are persisted before they are published, so
    a cut-off consumer can catch up from the log."""

    def __init__(self, task_id: str | None, *, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.task_id = task_id


class NoticeSubscription(BoundedStream[Notice]):
    """The notices of one channel."""

    def __init__(self, channel: str, *, maxsize: int) -> None:
        super().__init__(maxsize=maxsize)
        self.channel = channel


class EventBus(abc.ABC):
    """Publishes persisted events to live subscribers (per task, or all tasks with task_id None)."""

    @abc.abstractmethod
    async def publish(self, events: Sequence[Event]) -> None:
        """Deliver events to current subscribers."""

    @abc.abstractmethod
    def subscribe(self, task_id: str | None = None, *, maxsize: int = 1000) -> Subscription:
        """Start receiving events of one task (or every task)."""

    @abc.abstractmethod
    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop a subscription."""

    @abc.abstractmethod
    async def publish_notice(self, notice: Notice) -> None:
        """Deliver a notice to the current subscribers of its channel."""

    @abc.abstractmethod
    def subscribe_channel(self, channel: str, *, maxsize: int = 1000) -> NoticeSubscription:
        """Start receiving the notices of a channel."""

    @abc.abstractmethod
    def unsubscribe_channel(self, subscription: NoticeSubscription) -> None:
        """Stop a channel subscription."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""
