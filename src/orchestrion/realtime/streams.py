"""Subscriptions of one WebSocket connection: replay from the persisted log, then live, no gap, no duplicate.

The approach is the SSE stream's (`api/sse.py`), per subscription: the hub registers the stream
*before* the log is read, so live events that arrive meanwhile are held (`pending`); the log is
replayed after the cursor, then the held events are delivered, skipping what the replay already sent.

- `task:{id}` follows one task by its `seq` (gapless per task): a live event at or below the last
  seq sent is a duplicate; one past the next seq reveals a gap, which is read from the log.
- `tasks` follows many tasks by the global event id: the replay reads events after the client's
  `last_event_id` (only the caller's tasks unless an admin), and the last seq sent per task
  deduplicates and detects gaps as above (a gap is repaired from that task's log).
- Notice channels are live only, unless the channel has a `NoticeLog` (persisted notices with ids):
  then a `last_event_id` is replayed from it and ids deduplicate.

When the hub itself falls behind the bus (it never waits on clients, so only a starved event loop can
cause it), every stream is `resync`ed from the log.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import logging
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Protocol

from orchestrion.domain.events import Event, Notice
from orchestrion.realtime.connection import WsConnection
from orchestrion.realtime.protocol import CloseCode, encode, notice_message, task_event_message
from orchestrion.store.database import Database
from orchestrion.store.events import read_events, read_events_after_id, read_task_seq

logger = logging.getLogger(__name__)

_SEEN_TASKS = 4096  # per `tasks` stream: tasks whose last seq is remembered for dedup and gap checks


class NoticeLog(Protocol):
    """A persisted log of one notice channel, which makes the channel resumable.

    Every notice the channel publishes must carry its id in this log (`Notice.id`), increasing with
    each notice; an id that names something else (an alert's id is shared by its `alert.fired` and
    `alert.resolved`) does not qualify.
    """

    async def read_notices_after(self, after_id: int, *, limit: int) -> Sequence[Notice]:
        """The channel's notices with id > `after_id`, oldest first, at most `limit`."""


class Stream(abc.ABC):
    """One subscription of one connection."""

    def __init__(self, conn: WsConnection, channel: str) -> None:
        self.conn = conn
        self.channel = channel
        self.stopped = False
        self._syncing = False
        self._overflowed = False
        self._sync_task: asyncio.Task[None] | None = None

    @abc.abstractmethod
    def start(self, *, last_event_id: int | None, last_seq: int | None) -> bool:
        """Start delivering; True when what the client missed will be replayed (then `synced` follows)."""

    def stop(self) -> None:
        """Deliver nothing more."""
        self.stopped = True
        task = self._sync_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    @abc.abstractmethod
    def resync(self) -> None:
        """Catch up from the log after the hub missed events (no-op for a channel without a log)."""

    def _spawn_sync(self, *, announce: bool) -> None:
        self._syncing = True
        self._sync_task = self.conn.spawn(self._sync(announce=announce))

    async def _sync(self, *, announce: bool) -> None:
        try:
            await self._find_cursor()
            replayed = await self._catch_up()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("WebSocket replay of %s failed", self.channel)
            self.conn.close(CloseCode.INTERNAL_ERROR, "replay failed; reconnect and resume")
            return
        if announce and not self.stopped:
            self.conn.send(encode(self._synced(replayed)))

    @abc.abstractmethod
    async def _find_cursor(self) -> None:
        """Settle where the replay starts (once, before the first catch-up)."""

    @abc.abstractmethod
    async def _catch_up(self) -> int:
        """Replay from the log, then deliver what was held; returns how many messages were sent."""

    @abc.abstractmethod
    def _synced(self, replayed: int) -> dict[str, object]:
        """The `synced` message."""


class TaskStream(Stream):
    """`task:{id}` (task_id set) or `tasks` (owner_id None for an admin: every task)."""

    def __init__(
        self,
        conn: WsConnection,
        channel: str,
        *,
        db: Database,
        task_id: str | None,
        owner_id: str | None,
        registered_at: int,
    ) -> None:
        super().__init__(conn, channel)
        self.task_id = task_id
        self.owner_id = owner_id
        self._db = db
        self._seqs: OrderedDict[str, int] = OrderedDict()
        self._floor = 0  # `tasks`: the client has every event with id <= floor
        self._cursor_id = 0  # `tasks`: the id-ordered replay continues after this id
        self._last_id: int | None = None
        self._pending: deque[tuple[Event, str | None]] = deque()
        self._gaps: set[str] = set()
        self._sent = 0
        self._start_cursor: tuple[int | None, int | None] | None = None
        # The highest event id the hub had handed out when the stream was registered: where a
        # live-only stream that has delivered nothing yet resyncs from.
        self._registered_at = registered_at

    def start(self, *, last_event_id: int | None, last_seq: int | None) -> bool:
        if last_event_id is None and last_seq is None:
            # Live only: everything the hub hands over from now on, nothing to read first.
            self._cursor_id = self._registered_at
            return False
        self._start_cursor = (last_event_id, last_seq)
        self._spawn_sync(announce=True)
        return True

    async def _find_cursor(self) -> None:
        if self._start_cursor is None:
            return
        last_event_id, last_seq = self._start_cursor
        self._start_cursor = None
        if self.task_id is not None:
            if last_seq is None:
                read = functools.partial(read_task_seq, task_id=self.task_id, at_id=last_event_id)
                last_seq = await self._db.read(read)
            self._seqs[self.task_id] = last_seq
            self._last_id = last_event_id
        elif last_event_id is not None:
            self._floor = self._cursor_id = last_event_id
            self._last_id = last_event_id

    def offer(self, event: Event, text: str | None) -> None:
        """A live event from the hub (`text` preformatted for this channel when known)."""
        if self.stopped:
            return
        if self._syncing:
            self._hold(event, text)
        elif not self._accept(event, text):
            self._gaps.add(event.task_id)
            self._pending.append((event, text))
            self._spawn_sync(announce=False)

    def resync(self) -> None:
        if self.stopped:
            return
        if self._syncing:
            self._overflowed = True  # read the log again once the running replay ends
            return
        if self.task_id is not None and self.task_id not in self._seqs:
            self._start_cursor = (self._registered_at, None)
        self._spawn_sync(announce=False)

    def _hold(self, event: Event, text: str | None) -> None:
        if len(self._pending) >= self.conn.page_size * 2:
            # Too much held: drop it and read it from the log instead (it is persisted).
            self._overflowed = True
            self._pending.clear()
        elif not self._overflowed:
            self._pending.append((event, text))

    def _accept(self, event: Event, text: str | None) -> bool:
        """Deliver `event` unless the client has it; False (not delivered) when it reveals a gap."""
        if event.id is not None and event.id <= self._floor:
            return True
        last = self._seqs.get(event.task_id)
        if last is not None:
            if event.seq <= last:
                return True
            if event.seq > last + 1:
                return False
        self._seqs[event.task_id] = event.seq
        if self.task_id is None:
            self._seqs.move_to_end(event.task_id)
            if len(self._seqs) > _SEEN_TASKS:
                self._seqs.popitem(last=False)
        if event.id is not None:
            self._cursor_id = max(self._cursor_id, event.id)
            self._last_id = max(self._last_id or 0, event.id)
        self._sent += 1
        self.conn.send(text if text is not None else task_event_message(event, self.channel))
        return True

    async def _catch_up(self) -> int:
        start = self._sent
        stuck_at = -1
        while not self.stopped:
            if self.task_id is not None:
                await self._replay_task(self.task_id)
            else:
                await self._replay_tasks()
            # Room for what was held (at most half the queue), so catching up never overflows it.
            await self.conn.wait_for_room()
            if self._overflowed:
                self._overflowed = False
                self._pending.clear()
                continue
            # A gap the log cannot fill (an event published without being persisted) must not loop
            # forever: the second time nothing was sent in between, the held event goes out as is.
            if self._drain(force=stuck_at == self._sent):
                break
            stuck_at = self._sent
        return self._sent - start

    def _drain(self, *, force: bool) -> bool:
        """Deliver the held events; False at a gap (the log has more). No awaits: nothing interleaves."""
        while self._pending:
            event, text = self._pending.popleft()
            last = self._seqs.get(event.task_id)
            if force and last is not None and event.seq > last + 1:
                logger.warning("event %s/%s has no predecessor in the log", event.task_id, event.seq)
                self._seqs[event.task_id] = event.seq - 1
            if not self._accept(event, text):
                self._gaps.add(event.task_id)
                self._pending.appendleft((event, text))
                return False
        self._syncing = False
        return True

    async def _replay_task(self, task_id: str) -> None:
        page = self.conn.page_size
        while not self.stopped:
            await self.conn.wait_for_room()
            after = self._seqs.get(task_id, 0)
            events = await self._db.read(
                functools.partial(read_events, task_id=task_id, after=after, limit=page)
            )
            for event in events:
                self._accept(event, None)
            if len(events) < page:
                self._gaps.discard(task_id)
                return

    async def _replay_tasks(self) -> None:
        page = self.conn.page_size
        while not self.stopped:
            if self._gaps:
                await self._replay_task(self._gaps.pop())
                continue
            await self.conn.wait_for_room()
            read = functools.partial(
                read_events_after_id, after_id=self._cursor_id, owner_id=self.owner_id, limit=page
            )
            events = await self._db.read(read)
            for event in events:
                if not self._accept(event, None):
                    self._gaps.add(event.task_id)
            if events and events[-1].id is not None:
                self._cursor_id = max(self._cursor_id, events[-1].id)
            if len(events) < page and not self._gaps:
                return

    def _synced(self, replayed: int) -> dict[str, object]:
        message: dict[str, object] = {
            "type": "synced",
            "channel": self.channel,
            "replayed": replayed,
            "event_id": self._last_id,
        }
        if self.task_id is not None:
            message["seq"] = self._seqs.get(self.task_id, 0)
        return message


class NoticeStream(Stream):
    """A notice channel: live, and resumable by id when the channel has a `NoticeLog`."""

    def __init__(self, conn: WsConnection, channel: str, *, log: NoticeLog | None) -> None:
        super().__init__(conn, channel)
        self._log = log
        self._last_id: int | None = None
        self._pending: deque[tuple[Notice, str | None]] = deque()
        self._sent = 0

    def start(self, *, last_event_id: int | None, last_seq: int | None) -> bool:
        if self._log is None or last_event_id is None:
            return False
        self._last_id = last_event_id
        self._spawn_sync(announce=True)
        return True

    async def _find_cursor(self) -> None:
        return  # the client's last_event_id, set by `start`

    def offer(self, notice: Notice, text: str | None) -> None:
        """A live notice from the hub."""
        if self.stopped:
            return
        if not self._syncing:
            self._accept(notice, text)
        elif len(self._pending) >= self.conn.page_size * 2:
            self._overflowed = True
            self._pending.clear()
        elif not self._overflowed:
            self._pending.append((notice, text))

    def resync(self) -> None:
        if self.stopped or self._log is None or self._last_id is None:
            return
        if self._syncing:
            self._overflowed = True
        else:
            self._spawn_sync(announce=False)

    def _accept(self, notice: Notice, text: str | None) -> None:
        if self._log is not None and notice.id is not None:
            # Ids of a logged channel increase with each notice: a lower one was replayed already.
            if self._last_id is not None and notice.id <= self._last_id:
                return
            self._last_id = notice.id
        self._sent += 1
        self.conn.send(text if text is not None else notice_message(notice, resumable=self._log is not None))

    async def _catch_up(self) -> int:
        assert self._log is not None
        start = self._sent
        page = self.conn.page_size
        while not self.stopped:
            await self.conn.wait_for_room()
            notices = await self._log.read_notices_after(self._last_id or 0, limit=page)
            for notice in notices:
                self._accept(notice, None)
            if len(notices) >= page:
                continue
            await self.conn.wait_for_room()
            if self._overflowed:
                self._overflowed = False
                self._pending.clear()
                continue
            while self._pending:
                self._accept(*self._pending.popleft())
            self._syncing = False
            break
        return self._sent - start

    def _synced(self, replayed: int) -> dict[str, object]:
        return {"type": "synced", "channel": self.channel, "replayed": replayed, "event_id": self._last_id}
