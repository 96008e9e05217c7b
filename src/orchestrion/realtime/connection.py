"""One WebSocket client: who it is, what it follows, and a bounded send queue drained by one writer.

Producers (the hub's fan-out, replays, replies) never wait on a client: `send` appends to the
queue or, when it is full, disconnects the client with `CloseCode.SLOW_CONSUMER`. The writer task is
the only one that awaits the socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from orchestrion.realtime.metrics import WsMetrics
from orchestrion.realtime.protocol import CLOSE_TIMEOUT_SECONDS, CloseCode

if TYPE_CHECKING:
    from orchestrion.engines.coordinator import Caller
    from orchestrion.realtime.streams import Stream

logger = logging.getLogger(__name__)


class WsTransport(Protocol):
    """What the connection needs of a WebSocket (Starlette's `WebSocket` has it)."""

    async def send_text(self, data: str) -> None:
        """Send one text message."""

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Send a close frame."""


class WsConnection:
    """A connected, authenticated client.

    Args:
        transport: The socket.
        caller: Who authenticated.
        capacity: Messages the send queue holds (`ws_send_queue`).
        metrics: Where sends and drops are counted.
        on_close: Called once when the connection starts closing (the hub forgets it).
    """

    def __init__(
        self,
        transport: WsTransport,
        *,
        caller: Caller,
        capacity: int,
        metrics: WsMetrics,
        on_close: Callable[[WsConnection], None],
    ) -> None:
        self.caller = caller
        self.streams: dict[str, Stream] = {}
        self.last_heard = time.monotonic()
        self.heartbeat_slot = 0  # which slice of the ping interval pings it (set by the hub)
        self.closing = False
        self.close_code: int | None = None
        self._transport = transport
        self._capacity = capacity
        self._low_water = max(1, capacity // 4)
        self._metrics = metrics
        self._on_close = on_close
        self._queue: deque[str] = deque()
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._handler = asyncio.current_task()
        self._abandoned = False
        self._detached = False
        self._writer = asyncio.create_task(self._write())
        self._closer: asyncio.Task[None] | None = None

    @property
    def page_size(self) -> int:
        """How many replayed messages to queue at once: a quarter of the queue, leaving room for live ones."""
        return min(500, self._low_water)

    @property
    def abandoned(self) -> bool:
        """True when the close frame could not be written and the handler was cancelled to end it."""
        return self._abandoned

    def send(self, text: str) -> bool:
        """Queue a message without waiting; on a full queue, disconnect the client (slow consumer)."""
        if self.closing:
            return False
        if len(self._queue) >= self._capacity:
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer: send queue full", drop_reason="slow_consumer")
            return False
        self._queue.append(text)
        self._ready.set()
        if len(self._queue) > self._low_water:
            self._room.clear()
        return True

    async def wait_for_room(self) -> None:
        """Wait until the queue is at most a quarter full (replays pace themselves with this)."""
        while not self.closing and len(self._queue) > self._low_water:
            self._room.clear()
            await self._room.wait()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `coro` for this connection; it is cancelled when the connection closes."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def heard(self) -> None:
        """Note that the client sent something (it is alive)."""
        self.last_heard = time.monotonic()

    def close(self, code: int, reason: str, *, drop_reason: str | None = None) -> None:
        """Start closing: stop its streams and tasks, then send the close frame from a task of its own."""
        if self.closing:
            return
        self.closing = True
        self.close_code = code
        if drop_reason is not None:
            self._metrics.count_drop(drop_reason)
            logger.info("closing WebSocket client %s: %s", self.caller.user_id, reason)
        self._detach()
        self._closer = asyncio.create_task(self._close(code, reason))

    async def aclose(self) -> None:
        """Finish closing (the connection's handler calls this last); never raises."""
        # If the client went away first, there is no one to send a close frame to.
        self.closing = True
        self._detach()
        self._writer.cancel()
        await asyncio.gather(*self._tasks, self._writer, return_exceptions=True)
        if self._closer is not None:
            await asyncio.gather(self._closer, return_exceptions=True)

    def _detach(self) -> None:
        """Leave the hub and stop every stream and task of this connection (once)."""
        if self._detached:
            return
        self._detached = True
        self._room.set()
        self._on_close(self)
        for stream in self.streams.values():
            stream.stop()
        for task in list(self._tasks):
            task.cancel()

    async def _close(self, code: int, reason: str) -> None:
        self._writer.cancel()
        await asyncio.gather(self._writer, return_exceptions=True)
        try:
            # A client that reads nothing leaves the socket unwritable: the close frame then waits
            # behind the unsent data, and after the timeout the handler is ended without it.
            async with asyncio.timeout(CLOSE_TIMEOUT_SECONDS):
                await self._transport.close(code, reason)
            return
        except TimeoutError:
            logger.info("WebSocket client %s did not take its close frame", self.caller.user_id)
        except Exception:  # the socket is already gone
            return
        handler = self._handler
        if handler is not None and not handler.done():
            self._abandoned = True
            handler.cancel()

    async def _write(self) -> None:
        queue, transport, sent = self._queue, self._transport, self._metrics.messages_sent_total
        try:
            while True:
                if not queue:
                    self._ready.clear()
                    await self._ready.wait()
                    continue
                await transport.send_text(queue.popleft())
                sent.inc()
                if len(queue) <= self._low_water:
                    self._room.set()
        except Exception as exc:  # the client went away; its handler sees the disconnect
            logger.debug("WebSocket send failed: %s", type(exc).__name__)
            self.closing = True
            self._detach()
