"""Client processes of the WebSocket benchmark: many `websockets` clients on one event loop each.

`run_followers` connects clients that each follow one task (`task:{id}` from seq 0, so the log's
history is replayed first), checks every seq for gaps and duplicates, and times publish-to-receive
from the `ts` in each benchmark event. `run_idle` holds connections that only answer pings. Both talk
to the parent (`bench/ws.py`) through a multiprocessing connection: "ready" once every client is
subscribed, then they wait for the parent's word.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

CONNECT_CONCURRENCY = 50


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Follower:
    task_id: str
    seqs: list[int] = field(default_factory=list)
    duplicates: int = 0
    gaps: int = 0
    closed: int | None = None
    latencies: list[float] = field(default_factory=list)
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    target: int | None = None  # the task's last seq, once publishing is over
    done: asyncio.Event = field(default_factory=asyncio.Event)


async def _open(url: str, key: str, gate: asyncio.Semaphore, compression: bool) -> ClientConnection:
    async with gate:
        for attempt in range(5):
            try:
                ws = await connect(
                    url,
                    open_timeout=30,
                    close_timeout=5,
                    max_queue=None,
                    compression="deflate" if compression else None,
                )
                break
            except (OSError, TimeoutError):
                if attempt == 4:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
        await ws.send(json.dumps({"type": "auth", "token": key}))
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome", welcome
        return ws


async def _follow(ws: ClientConnection, follower: Follower) -> None:
    last = 0
    try:
        async for frame in ws:
            received = time.time()
            message = json.loads(frame)
            kind = message["type"]
            if kind == "ping":
                await ws.send('{"type":"pong"}')
            elif kind == "synced":
                follower.synced.set()
            elif "seq" in message:
                seq = message["seq"]
                if seq <= last:
                    follower.duplicates += 1
                    continue
                if seq != last + 1:
                    follower.gaps += seq - last - 1
                last = seq
                follower.seqs.append(seq)
                stamp = message["data"].get("ts")
                if stamp is not None:
                    follower.latencies.append(received - stamp)
                if follower.target is not None and seq >= follower.target:
                    follower.done.set()
    except ConnectionClosed as exc:
        follower.closed = exc.rcvd.code if exc.rcvd is not None else 1006


async def _followers(url: str, key: str, compression: bool, tasks: list[str], pipe: Connection) -> None:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    followers = [Follower(task_id=task) for task in tasks]
    sockets = await asyncio.gather(*(_open(url, key, gate, compression) for _ in followers))
    readers = []
    for ws, follower in zip(sockets, followers, strict=True):
        await ws.send(json.dumps({"type": "subscribe", "channel": f"task:{follower.task_id}", "last_seq": 0}))
        readers.append(asyncio.create_task(_follow(ws, follower)))
    await asyncio.wait_for(asyncio.gather(*(f.synced.wait() for f in followers)), 120)
    cpu_ready = time.process_time()
    pipe.send({"ready": len(followers)})
    last_seq: dict[str, int] = await asyncio.to_thread(pipe.recv)  # after the publishing phase
    for follower in followers:
        follower.target = last_seq[follower.task_id]
        if follower.seqs and follower.seqs[-1] >= follower.target:
            follower.done.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(f.done.wait() for f in followers)), 30)
    cpu = time.process_time() - cpu_ready
    for ws in sockets:
        await ws.close()
    await asyncio.gather(*readers, return_exceptions=True)
    latencies = [x for f in followers for x in f.latencies]
    pipe.send(
        {
            "clients": len(followers),
            "expected": sum(last_seq[f.task_id] for f in followers),
            "received": sum(len(f.seqs) for f in followers),
            "lost": sum(last_seq[f.task_id] - len(f.seqs) for f in followers),
            "gaps": sum(f.gaps for f in followers),
            "duplicates": sum(f.duplicates for f in followers),
            "closed_early": [f.closed for f in followers if f.closed not in (None, 1000)],
            "latencies": latencies,
            "cpu_seconds": round(cpu, 2),
        }
    )


def run_followers(url: str, key: str, compression: bool, tasks: list[str], pipe: Connection) -> None:
    """Process entry point: one follower per entry of `tasks`."""
    raise_fd_limit()
    uvloop.run(_followers(url, key, compression, tasks, pipe))


async def _idle(
    url: str, key: str, compression: bool, count: int, channels: list[str], pipe: Connection
) -> None:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    sockets = await asyncio.gather(*(_open(url, key, gate, compression) for _ in range(count)))
    followers = [Follower(task_id="") for _ in sockets]
    readers = []
    for index, (ws, follower) in enumerate(zip(sockets, followers, strict=True)):
        await ws.send(json.dumps({"type": "subscribe", "channel": channels[index % len(channels)]}))
        readers.append(asyncio.create_task(_follow(ws, follower)))
    await asyncio.sleep(1)
    pipe.send({"ready": count})
    await asyncio.to_thread(pipe.recv)
    open_now = sum(1 for f in followers if f.closed is None)
    for ws in sockets:
        await ws.close()
    await asyncio.gather(*readers, return_exceptions=True)
    pipe.send({"open": open_now, "closed_early": [f.closed for f in followers if f.closed is not None]})


def run_idle(
    url: str, key: str, compression: bool, count: int, channels: list[str], pipe: Connection
) -> None:
    """Process entry point: `count` connections that subscribe and then only answer pings."""
    raise_fd_limit()
    uvloop.run(_idle(url, key, compression, count, channels, pipe))


def summarise(latencies: list[float]) -> dict[str, Any]:
    ordered = sorted(latencies)
    if not ordered:
        return {"samples": 0}

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {
        "samples": len(ordered),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "p999_ms": pct(0.999),
        "max_ms": round(ordered[-1] * 1000, 2),
    }
