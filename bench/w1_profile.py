"""Where a W1 task's time goes in Orchestrion, at concurrency 1.

Runs the W1 runtime of bench/w1_orchestrion.py against the test server, warms up, then

1. counts, per task, the database work: write transactions (each one ``BEGIN IMMEDIATE`` ... ``COMMIT``
   on the single writer connection), read sessions, SQL statements by kind, and the wall time spent
   inside them; and splits CPU time between the event-loop thread and the others (aiosqlite's);
2. profiles more tasks with cProfile (event-loop thread) and groups the time by library.

The instrumentation wraps the runtime's `Database` methods from the outside; src/ is not touched.

Usage::

    .venv/bin/python bench/w1_profile.py [--tasks 50]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import cProfile
import io
import pstats
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import aiosqlite
from sqlalchemy import Table, event, text, update

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from harness import run_sequential  # noqa: E402
from w1 import TestServer  # noqa: E402
from w1_orchestrion import W1Client, w1_runtime  # noqa: E402

from orchestrion.store.events import read_events  # noqa: E402
from orchestrion.store.models import TaskRow  # noqa: E402

# Library buckets for the cProfile summary, matched against each function's file path, in order.
BUCKETS = (
    ("sqlalchemy", "/sqlalchemy/"),
    ("aiosqlite", "/aiosqlite/"),
    ("httpx/httpcore/anyio", ("/httpx/", "/httpcore/", "/anyio/", "/h11/")),
    ("asyncio", "/asyncio/"),
    ("json", "/json/"),
    ("orchestrion", "/orchestrion/"),
    ("prometheus_client", "/prometheus_client/"),
    ("logging", "/logging/"),
)


class DatabaseCounters:
    """Counts and times the runtime's transactions and SQL statements."""

    def __init__(self) -> None:
        self.write_tx = 0
        self.read_sessions = 0
        self.write_seconds = 0.0
        self.read_seconds = 0.0
        self.statements: collections.Counter[str] = collections.Counter()
        self.driver_calls = 0
        self.enabled = False

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]
        self.enabled = True

    def install(self, client: W1Client) -> None:
        db = client.runtime.db
        original_write, original_read = db.write, db.read

        @contextlib.asynccontextmanager
        async def write() -> AsyncIterator[Any]:
            started = time.perf_counter()
            async with original_write() as tx:
                yield tx
            if self.enabled:
                self.write_tx += 1
                self.write_seconds += time.perf_counter() - started

        @contextlib.asynccontextmanager
        async def read() -> AsyncIterator[Any]:
            started = time.perf_counter()
            async with original_read() as session:
                yield session
            if self.enabled:
                self.read_sessions += 1
                self.read_seconds += time.perf_counter() - started

        # Instance attributes shadow the methods for every holder of this Database object.
        db.write = write  # type: ignore[method-assign]
        db.read = read  # type: ignore[method-assign]

        # Every call aiosqlite hands to its thread (cursor, execute, fetch, close, commit, rollback).
        original_execute: Callable[..., Awaitable[Any]] = aiosqlite.Connection._execute
        counters = self

        async def counted_execute(conn: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
            if counters.enabled:
                counters.driver_calls += 1
            return await original_execute(conn, fn, *args, **kwargs)

        setattr(aiosqlite.Connection, "_execute", counted_execute)  # noqa: B010 - bench-only patch

        for role, engine in (("write", db.write_engine), ("read", db.read_engine)):
            listener = self._statement_listener(role)
            event.listen(engine.sync_engine, "before_cursor_execute", listener)

    def _statement_listener(self, role: str) -> Callable[..., None]:
        def on_statement(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if not self.enabled:
                return
            words = statement.split()
            verb = words[0].upper()
            table = ""
            for keyword in ("INTO", "FROM", "UPDATE"):
                if keyword in (w.upper() for w in words[:6]):
                    index = [w.upper() for w in words].index(keyword)
                    table = words[index + 1] if keyword != "UPDATE" else words[1]
                    break
            self.statements[f"{role}: {verb} {table}".strip()] += 1

        return on_statement

    def per_task(self, tasks: int) -> dict[str, Any]:
        return {
            "write_transactions": self.write_tx / tasks,
            "read_sessions": self.read_sessions / tasks,
            "statements": sum(self.statements.values()) / tasks,
            "aiosqlite_thread_handoffs": self.driver_calls / tasks,
            "write_tx_wall_ms": round(self.write_seconds / tasks * 1000, 2),
            "read_wall_ms": round(self.read_seconds / tasks * 1000, 2),
            "by_statement": {k: v / tasks for k, v in sorted(self.statements.items())},
        }


def bucket_profile(stats: pstats.Stats, tasks: int) -> dict[str, float]:
    """Own time (tottime) per library bucket, in ms per task."""
    totals: collections.Counter[str] = collections.Counter()
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        label = "other"
        for name, patterns in BUCKETS:
            if any(p in filename for p in ((patterns,) if isinstance(patterns, str) else patterns)):
                label = name
                break
        if filename == "~":
            label = "idle (epoll: waiting for the server or aiosqlite)" if "poll" in _name else "C builtins"
        totals[label] += tottime
    return {k: round(v / tasks * 1000, 2) for k, v in totals.most_common()}


async def _per_call(make: Callable[[], Awaitable[Any]], rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        await make()
    return round((time.perf_counter() - started) / rounds * 1000, 3)


async def transaction_costs(client: W1Client, task_id: str, rounds: int = 300) -> dict[str, float]:
    """What one write transaction and one statement cost on this store, in ms, with no other load.

    Separates the per-transaction cost (session, pool checkout, BEGIN IMMEDIATE, COMMIT) from the
    per-statement cost, and the statement's driver round trip (aiosqlite's thread hop) from the
    SQLAlchemy layers above it. The UPDATE is the one `append_event` runs for every event.
    """
    db = client.runtime.db
    orm_bump = (
        update(TaskRow)
        .where(TaskRow.id == task_id)
        .values(event_seq=TaskRow.event_seq)
        .returning(TaskRow.event_seq)
    )
    table = cast(Table, TaskRow.__table__)
    core_bump = (
        update(table)
        .where(table.c.id == task_id)
        .values(event_seq=table.c.event_seq)
        .returning(table.c.event_seq)
    )
    raw_bump = "UPDATE tasks SET event_seq = event_seq WHERE id = ? RETURNING event_seq"
    costs: dict[str, float] = {}

    async def one_tx() -> None:
        async with db.write() as tx:
            await tx.session.execute(orm_bump)

    costs["write tx with one ORM UPDATE ... RETURNING"] = await _per_call(one_tx, rounds)
    async with db.write() as tx:
        costs["ORM UPDATE ... RETURNING (session.execute, as append_event)"] = await _per_call(
            lambda: tx.session.execute(orm_bump), rounds
        )
        costs["Core UPDATE ... RETURNING (session.execute on the Table)"] = await _per_call(
            lambda: tx.session.execute(core_bump), rounds
        )
        connection = await tx.session.connection()
        costs["Core UPDATE ... RETURNING (AsyncConnection.execute)"] = await _per_call(
            lambda: connection.execute(core_bump), rounds
        )
        costs["text SELECT 1 (session.execute)"] = await _per_call(
            lambda: tx.session.execute(text("SELECT 1")), rounds
        )
    costs["write tx fixed cost (tx with one ORM UPDATE minus the UPDATE)"] = round(
        costs["write tx with one ORM UPDATE ... RETURNING"]
        - costs["ORM UPDATE ... RETURNING (session.execute, as append_event)"],
        3,
    )
    path = client.runtime.settings.home / "orchestrion.db"
    async with aiosqlite.connect(path, isolation_level=None) as raw:

        async def raw_statement() -> None:
            async with raw.execute(raw_bump, (task_id,)) as cursor:
                await cursor.fetchall()

        async def raw_tx() -> None:
            await raw.execute("BEGIN IMMEDIATE")
            await raw_statement()
            await raw.execute("COMMIT")

        costs["raw aiosqlite UPDATE ... RETURNING (driver round trip only)"] = await _per_call(
            raw_statement, rounds
        )
        costs["raw aiosqlite BEGIN IMMEDIATE + UPDATE + COMMIT"] = await _per_call(raw_tx, rounds)

    # A checkpoint-sized transaction (five statements) done the way the store does it today, and as
    # one closure run in a thread: one hand-off per transaction instead of several per statement.
    async def five_statement_orm_tx() -> None:
        async with db.write() as tx:
            for _ in range(5):
                await tx.session.execute(orm_bump)

    costs["5-statement write tx, ORM session (as the store does today)"] = await _per_call(
        five_statement_orm_tx, rounds
    )
    sync = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    try:
        sync.execute("PRAGMA busy_timeout=30000")

        def five_statements() -> None:
            sync.execute("BEGIN IMMEDIATE")
            for _ in range(5):
                sync.execute(raw_bump, (task_id,)).fetchall()
            sync.execute("COMMIT")

        costs["5-statement write tx, sqlite3 in one asyncio.to_thread hop"] = await _per_call(
            lambda: asyncio.to_thread(five_statements), rounds
        )
    finally:
        sync.close()
    return costs


async def profile(base_url: str, tasks: int, warmup: int) -> str:
    out = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="orchestrion-w1-profile-") as home:
        async with w1_runtime(Path(home), base_url=base_url, workers=50) as client:
            counters = DatabaseCounters()
            counters.install(client)
            await run_sequential(client.run_task, warmup)

            counters.reset()
            main_cpu, all_cpu, wall = time.thread_time(), time.process_time(), time.perf_counter()
            latencies = await run_sequential(client.run_task, tasks, first_index=warmup)
            main_cpu = time.thread_time() - main_cpu
            all_cpu = time.process_time() - all_cpu
            wall = time.perf_counter() - wall
            counters.enabled = False
            per_task = counters.per_task(tasks)

            print(f"W1 profile, concurrency 1, {tasks} tasks after {warmup} warm-up tasks", file=out)
            print(f"wall per task: {wall / tasks * 1000:.2f} ms (min {min(latencies) * 1000:.2f})", file=out)
            print(
                f"CPU per task: {all_cpu / tasks * 1000:.2f} ms in all threads, "
                f"{main_cpu / tasks * 1000:.2f} ms on the event loop thread, "
                f"{(all_cpu - main_cpu) / tasks * 1000:.2f} ms in other threads (aiosqlite)",
                file=out,
            )
            print(
                "database work per task (write_tx_wall_ms sums every transaction's wall time, waiting for"
                " the single writer connection included, so parallel steps count their overlap):",
                file=out,
            )
            for key, value in per_task.items():
                if key != "by_statement":
                    print(f"  {key}: {value}", file=out)
            for key, value in per_task["by_statement"].items():
                print(f"    {value:5.1f}  {key}", file=out)
            assert client.last_task_id is not None
            async with client.runtime.db.read() as session:
                events = await read_events(session, client.last_task_id)
            kinds = collections.Counter(e.type for e in events)
            print(
                f"events per task: {len(events)} ({', '.join(f'{k} x{v}' for k, v in kinds.items())})",
                file=out,
            )
            print(
                "transaction costs on this store, ms (one at a time, the runtime otherwise idle):", file=out
            )
            for key, value in (await transaction_costs(client, client.last_task_id)).items():
                print(f"  {key}: {value}", file=out)

            profiler = cProfile.Profile()
            profiler.enable()
            await run_sequential(client.run_task, tasks, first_index=warmup + tasks)
            profiler.disable()
    stats = pstats.Stats(profiler)
    print(
        f"\ncProfile of {tasks} more tasks (event-loop thread; cProfile itself inflates the figures)",
        file=out,
    )
    print("own time by library, ms per task:", file=out)
    for label, ms in bucket_profile(stats, tasks).items():
        print(f"  {ms:7.2f}  {label}", file=out)
    listing = io.StringIO()
    stats.stream = listing  # type: ignore[attr-defined]
    # Only own time (tottime) is listed: SQLAlchemy's greenlet switches make cProfile's cumulative
    # times of coroutines meaningless (a frame switched out keeps accruing time).
    stats.sort_stats("tottime").print_stats(30)
    print(listing.getvalue(), file=out)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    with TestServer() as server:
        report = asyncio.run(profile(server.base_url, args.tasks, args.warmup))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"w1-profile-{datetime.now(UTC).date().isoformat()}.txt"
    out.write_text(report)
    print(report)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
