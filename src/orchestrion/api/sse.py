"""Server-sent events for a task: replay from the persisted log, then live, with no gap or duplicate.

The stream subscribes to the bus *before* reading the log, then skips live events it already sent, so
an event committed between the two reads is neither lost nor repeated. If the bus cuts the stream off
(a slow client), it falls back to the log. It ends after the task's final event.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator

from orchestrion.bus.base import EventBus
from orchestrion.domain.events import Event, EventType
from orchestrion.store.database import Database
from orchestrion.store.events import read_events

FINAL_EVENTS = frozenset({EventType.TASK_COMPLETED, EventType.TASK_FAILED, EventType.TASK_CANCELLED})
KEEPALIVE_SECONDS = 15.0


def format_sse(event: Event) -> str:
    """One SSE frame; `id` is the task's event sequence number (the Last-Event-ID to resume from)."""
    payload = json.dumps(
        {
            "task_id": event.task_id,
            "seq": event.seq,
            "type": event.type,
            "data": event.data,
            "created_at": event.created_at.isoformat(),
        },
        separators=(",", ":"),
    )
    return f"id: {event.seq}\nevent: {event.type}\ndata: {payload}\n\n"


async def stream_task_events(
    db: Database, bus: EventBus, task_id: str, *, after: int, is_final: bool
) -> AsyncIterator[str]:
    """Yield SSE frames for `task_id` after sequence `after`."""
    sub = bus.subscribe(task_id)
    last = after
    try:
        while True:
            backlog = await db.read(functools.partial(read_events, task_id=task_id, after=last))
            for event in backlog:
                last = event.seq
                yield format_sse(event)
                if event.type in FINAL_EVENTS:
                    return
            if is_final and not backlog:
                return
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_SECONDS):
                        live = await sub.get()
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if live is None:
                    # Cut off by the bus: resubscribe and catch up from the log.
                    bus.unsubscribe(sub)
                    sub = bus.subscribe(task_id)
                    break
                if live.seq <= last:
                    continue
                if live.seq > last + 1:
                    break  # a gap: read it from the log
                last = live.seq
                yield format_sse(live)
                if live.type in FINAL_EVENTS:
                    return
    finally:
        bus.unsubscribe(sub)
