"""The WebSocket hub: every connection of this process, and the fan-out of bus events to them.

The hub holds one bus subscription for all task events and one per notice channel, and routes each
event to the streams that may see it: `task:{id}` streams of that task, admins' `tasks` streams, and
the `tasks` streams of the task's owner (owners are looked up once per task and cached). Fan-out
never waits on a client: each connection has its own bounded queue (`WsConnection`). One heartbeat
task pings every connection once per interval, a slice at a time, and closes those gone silent.

It depends on no web framework (connections are `WsTransport`s), so `runtime.py` builds it and
`api/ws.py` feeds it sockets.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import TypeVar

from orchestrion.bus.base import EventBus, NoticeSubscription, Subscription
from orchestrion.domain.events import Channel, Event
from orchestrion.engines.coordinator import Caller
from orchestrion.realtime.connection import WsConnection, WsTransport
from orchestrion.realtime.metrics import WsMetrics
from orchestrion.realtime.protocol import (
    CHANNEL_PATTERNS,
    PING_MESSAGE,
    PROTOCOL_VERSION,
    SILENT_INTERVALS,
    ChannelRef,
    CloseCode,
    encode,
    notice_message,
    task_event_message,
)
from orchestrion.realtime.streams import NoticeLog, NoticeStream, Stream, TaskStream
from orchestrion.store.database import Database
from orchestrion.store.events import read_last_event_id, read_task_owners

logger = logging.getLogger(__name__)

_OWNER_CACHE = 16_384
_HEARTBEAT_SLICES = 20
S = TypeVar("S", bound=Stream)


class WebSocketHub:
    """Owns the WebSocket connections of this process and fans bus events out to them.

    Args:
        db: Where replays and owner lookups read from.
        bus: Where live events and notices come from.
        metrics: `orchestrion_ws_*`.
        send_queue: Messages each connection may have queued (`ws_send_queue`).
        ping_interval: Seconds between server pings (`ws_ping_interval_seconds`).
        max_subscriptions: Channels per connection (`ws_max_subscriptions`).
        notice_logs: Persisted logs of notice channels, which make those channels resumable.
        bus_queue: Depth of the hub's own bus subscriptions.
    """

    def __init__(
        self,
        *,
        db: Database,
        bus: EventBus,
        metrics: WsMetrics,
        send_queue: int,
        ping_interval: float,
        max_subscriptions: int,
        notice_logs: Mapping[str, NoticeLog] | None = None,
        bus_queue: int = 100_000,
    ) -> None:
        self.send_queue = send_queue
        self.ping_interval = ping_interval
        self.max_subscriptions = max_subscriptions
        self.metrics = metrics
        self._db = db
        self._bus = bus
        self._notice_logs = dict(notice_logs or {})
        self._bus_queue = bus_queue
        self._connections: set[WsConnection] = set()
        self._task_streams: dict[str, set[TaskStream]] = {}
        self._all_tasks_streams: set[TaskStream] = set()
        self._owner_streams: dict[str, set[TaskStream]] = {}
        self._notice_streams: dict[str, set[NoticeStream]] = {}
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._workers: list[asyncio.Task[None]] = []
        self._starting: asyncio.Task[None] | None = None
        self._last_seen = 0  # the highest event id handed to the streams
        self._slots = itertools.count()
        self._closed = False

    # -- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe to the bus and start the fan-out and heartbeat tasks (once; later calls wait for it)."""
        if self._starting is None:
            self._starting = asyncio.create_task(self._start())
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        # Subscribed first: an event committed while the log's end is read is queued, not lost.
        events = self._bus.subscribe(None, maxsize=self._bus_queue)
        notices = [self._bus.subscribe_channel(c.value, maxsize=self._bus_queue) for c in Channel]
        try:
            last = await self._db.read(read_last_event_id)
        except BaseException:
            self._bus.unsubscribe(events)
            for subscription in notices:
                self._bus.unsubscribe_channel(subscription)
            self._starting = None
            raise
        self._last_seen = max(self._last_seen, last)
        self._workers.append(asyncio.create_task(self._pump_events(events)))
        self._workers.extend(asyncio.create_task(self._pump_notices(n)) for n in notices)
        self._workers.append(asyncio.create_task(self._heartbeat()))

    async def aclose(self) -> None:
        """Close every connection (1001) and stop the hub's tasks."""
        self._closed = True
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        connections = list(self._connections)
        for conn in connections:
            conn.close(CloseCode.GOING_AWAY, "server shutting down")
        await asyncio.gather(*(conn.aclose() for conn in connections), return_exceptions=True)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()

    @property
    def connection_count(self) -> int:
        """Connections open now."""
        return len(self._connections)

    # -- connections and subscriptions ---------------------------------------------------------------

    async def connect(self, transport: WsTransport, caller: Caller) -> WsConnection:
        """Register an authenticated client and greet it with `welcome`."""
        await self.start()
        conn = WsConnection(
            transport, caller=caller, capacity=self.send_queue, metrics=self.metrics, on_close=self._forget
        )
        if self._closed:
            conn.close(CloseCode.GOING_AWAY, "server shutting down")
            return conn
        conn.heartbeat_slot = next(self._slots) % _HEARTBEAT_SLICES
        self._connections.add(conn)
        self.metrics.connections.inc()
        conn.send(
            encode(
                {
                    "type": "welcome",
                    "protocol": PROTOCOL_VERSION,
                    "user_id": caller.user_id,
                    "role": caller.role,
                    "channels": list(CHANNEL_PATTERNS),
                    "ping_interval_seconds": self.ping_interval,
                    "max_subscriptions": self.max_subscriptions,
                    "send_queue": self.send_queue,
                }
            )
        )
        return conn

    def remember_owner(self, task_id: str, owner_id: str) -> None:
        """Cache a task's owner (the session learns it when it authorises `task:{id}`)."""
        self._owners[task_id] = owner_id
        self._owners.move_to_end(task_id)
        if len(self._owners) > _OWNER_CACHE:
            self._owners.popitem(last=False)

    def subscribe(
        self, conn: WsConnection, channel: ChannelRef, *, last_event_id: int | None, last_seq: int | None
    ) -> bool:
        """Start a stream on an authorised channel; True when missed events will be replayed.

        The stream is registered before anything is read, so nothing published meanwhile is missed.
        """
        stream: Stream
        if channel.is_task_stream:
            owner = conn.caller.owner_filter
            task_stream = TaskStream(
                conn,
                channel.name,
                db=self._db,
                task_id=channel.task_id,
                owner_id=owner,
                registered_at=self._last_seen,
            )
            if channel.task_id is not None:
                self._task_streams.setdefault(channel.task_id, set()).add(task_stream)
            elif owner is None:
                self._all_tasks_streams.add(task_stream)
            else:
                self._owner_streams.setdefault(owner, set()).add(task_stream)
            stream = task_stream
        else:
            notice_stream = NoticeStream(conn, channel.name, log=self._notice_logs.get(channel.name))
            self._notice_streams.setdefault(channel.name, set()).add(notice_stream)
            stream = notice_stream
        conn.streams[channel.name] = stream
        return stream.start(last_event_id=last_event_id, last_seq=last_seq)

    def unsubscribe(self, conn: WsConnection, channel: str) -> bool:
        """Stop a stream; False when the connection had none on `channel`."""
        stream = conn.streams.pop(channel, None)
        if stream is None:
            return False
        stream.stop()
        self._unindex(stream)
        return True

    def _forget(self, conn: WsConnection) -> None:
        if conn not in self._connections:
            return
        self._connections.discard(conn)
        self.metrics.connections.dec()
        for stream in conn.streams.values():
            self._unindex(stream)

    def _unindex(self, stream: Stream) -> None:
        if isinstance(stream, TaskStream):
            if stream.task_id is not None:
                _discard(self._task_streams, stream.task_id, stream)
            elif stream.owner_id is None:
                self._all_tasks_streams.discard(stream)
            else:
                _discard(self._owner_streams, stream.owner_id, stream)
        elif isinstance(stream, NoticeStream):
            _discard(self._notice_streams, stream.channel, stream)

    # -- fan-out -----------------------------------------------------------------------------------

    async def _pump_events(self, subscription: Subscription) -> None:
        while True:
            event = await subscription.get()
            if event is None:
                if not subscription.overflowed:
                    return  # the bus closed
                logger.warning("the WebSocket hub fell behind the event bus; streams resync from the log")
                self._bus.unsubscribe(subscription)
                subscription = self._bus.subscribe(None, maxsize=self._bus_queue)
                for conn in list(self._connections):
                    for stream in list(conn.streams.values()):
                        stream.resync()
                continue
            await self._fan_out(event)

    async def _fan_out(self, event: Event) -> None:
        if event.id is not None and event.id > self._last_seen:
            self._last_seen = event.id
        streams = self._task_streams.get(event.task_id)
        if streams:
            text = task_event_message(event, f"task:{event.task_id}")
            for stream in tuple(streams):
                stream.offer(event, text)
        if not (self._all_tasks_streams or self._owner_streams):
            return
        targets = list(self._all_tasks_streams)
        if self._owner_streams:
            try:
                owner = await self._owner_of(event.task_id)
            except Exception:
                # The event is in the log: the streams that may have needed it read it from there.
                logger.exception("owner of task %s not found out; users' streams resync", event.task_id)
                for streams in list(self._owner_streams.values()):
                    for stream in tuple(streams):
                        stream.resync()
                owner = None
            if owner is not None:
                targets.extend(self._owner_streams.get(owner, ()))
        if targets:
            text = task_event_message(event, "tasks")
            for stream in targets:
                stream.offer(event, text)

    async def _owner_of(self, task_id: str) -> str | None:
        owner = self._owners.get(task_id)
        if owner is None:
            found = await self._db.read(functools.partial(read_task_owners, task_ids=[task_id]))
            owner = found.get(task_id)
            if owner is not None:
                self.remember_owner(task_id, owner)
        return owner

    async def _pump_notices(self, subscription: NoticeSubscription) -> None:
        channel = subscription.channel
        while True:
            notice = await subscription.get()
            if notice is None:
                if not subscription.overflowed:
                    return
                logger.warning("the WebSocket hub fell behind on channel %s", channel)
                self._bus.unsubscribe_channel(subscription)
                subscription = self._bus.subscribe_channel(channel, maxsize=self._bus_queue)
                for stream in tuple(self._notice_streams.get(channel, ())):
                    stream.resync()
                continue
            streams = self._notice_streams.get(channel)
            if streams:
                text = notice_message(notice, resumable=channel in self._notice_logs)
                for stream in tuple(streams):
                    stream.offer(notice, text)

    async def _heartbeat(self) -> None:
        # Connections are pinged in slices spread over the interval: pinging a thousand clients at
        # once (and reading their thousand pongs) would stall every other delivery for that long.
        step = self.ping_interval / _HEARTBEAT_SLICES
        tick = 0
        while True:
            await asyncio.sleep(step)
            tick = (tick + 1) % _HEARTBEAT_SLICES
            silent_since = time.monotonic() - SILENT_INTERVALS * self.ping_interval
            for conn in tuple(self._connections):
                if conn.heartbeat_slot != tick:
                    continue
                if conn.last_heard < silent_since:
                    conn.close(
                        CloseCode.HEARTBEAT_TIMEOUT,
                        "heartbeat timeout: nothing received for two ping intervals",
                        drop_reason="heartbeat_timeout",
                    )
                else:
                    conn.send(PING_MESSAGE)


def _discard(index: dict[str, set[S]], key: str, stream: S) -> None:
    streams = index.get(key)
    if streams is not None:
        streams.discard(stream)
        if not streams:
            del index[key]
