"""Where a W1 task's time goes in Orchestrion, at concurrency 1.

Runs the W1 runtime of bench/w1_orchestrion.py against the test server, warms up, then

1. times tasks, nothing instrumented yet: wall time, and CPU time split between the event-loop thread, the
   SQLite writer thread, the reader threads and the rest (every thread's own CPU clock);
2. counts, per task, the database work: `Database.write` units and the write transactions that
   commit them (the writer thread commits every unit queued by the time it starts in one
   transaction), `Database.read` units, SQL statements by kind and which unit ran them; the wall
   time the event loop spends awaiting writes, reads and LLM calls; and the writer thread's CPU
   inside its transactions (`_SqliteWriter._commit`) and inside the units themselves;
3. measures one `Database.write` round trip for an empty unit, one `append_event` and a
   checkpoint-sized unit, against the same unit called directly on a sync connection, and the
   `append_event` UPDATE in raw sqlite3 for reference;
4. profiles more tasks with cProfile, the event-loop thread and, separately, the writer thread
   inside its transactions, and groups each one's time by library.

The instrumentation wraps the runtime's `Database` (and its writer) from the outside; src/ is not
touched.

Usage::

    .venv/bin/python bench/w1_profile.py [--tasks 200] [--warmup 20] [--rounds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import contextlib
import cProfile
import functools
import io
import pstats
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from harness import run_sequential  # noqa: E402
from w1 import VendorProcess  # noqa: E402
from w1_orchestrion import W1Client, w1_runtime  # noqa: E402

from orchestrion.domain.events import EventType  # noqa: E402
from orchestrion.domain.tasks import AgentRun, utcnow  # noqa: E402
from orchestrion.providers.base import ChatRequest, ChatResponse  # noqa: E402
from orchestrion.store.database import Database, WriteTx, _configure_sqlite, _SqliteWriter  # noqa: E402
from orchestrion.store.events import append_event, read_events  # noqa: E402
from orchestrion.store.runs import read_runs, save_run  # noqa: E402
from orchestrion.store.tasks import set_step_fields  # noqa: E402

T = TypeVar("T")

# Library buckets for the cProfile summary, matched against each function's file path, in order.
BUCKETS = (
    ("sqlalchemy", "/sqlalchemy/"),
    ("httpx/httpcore/anyio/h11", ("/httpx/", "/httpcore/", "/anyio/", "/h11/")),
    ("asyncio", "/asyncio/"),
    ("concurrent.futures/threading/queue", ("/concurrent/futures/", "/threading.py", "/queue.py")),
    ("json", "/json/"),
    ("orchestrion", "/orchestrion/"),
    ("bench driver", "/bench/"),
    ("prometheus_client", "/prometheus_client/"),
    ("logging", "/logging/"),
)

IDLE = "idle (epoll: waiting for the server or the database threads)"

# The statement `append_event` runs for every batch of events, as SQLAlchemy compiles it for SQLite;
# bumping by 0 leaves the task's sequence alone.
RAW_BUMP = "UPDATE tasks SET event_seq=(tasks.event_seq + ?) WHERE tasks.id = ? RETURNING tasks.event_seq"


def progress(message: str) -> None:
    print(f"-- {message} ...", file=sys.stderr, flush=True)


def thread_cpu(thread: threading.Thread) -> float:
    """CPU seconds `thread` has used so far (its POSIX CPU-time clock); 0 once it has ended."""
    if thread.ident is None or not thread.is_alive():
        return 0.0
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    except OSError:  # ended in between
        return 0.0


def writer_of(db: Database) -> _SqliteWriter:
    if db._writer is None:
        raise SystemExit("the profile needs the SQLite store (a writer thread)")
    return db._writer


def reader_threads(db: Database) -> list[threading.Thread]:
    # ThreadPoolExecutor starts its threads lazily: read the set each time.
    return list(db._readers._threads) if db._readers is not None else []


class ThreadClocks:
    """CPU time per thread over a span: event loop, writer, readers, and the rest of the process."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._writer_thread = writer_of(db)._thread
        self._start: dict[str, float] = {}
        self._readers_start: dict[int, float] = {}

    def start(self) -> None:
        self._start = {
            "process": time.process_time(),
            "loop": time.thread_time(),
            "writer": thread_cpu(self._writer_thread),
        }
        self._readers_start = {id(t): thread_cpu(t) for t in reader_threads(self.db)}

    def stop(self) -> dict[str, float]:
        process = time.process_time() - self._start["process"]
        loop = time.thread_time() - self._start["loop"]
        writer = thread_cpu(self._writer_thread) - self._start["writer"]
        readers = sum(thread_cpu(t) - self._readers_start.get(id(t), 0.0) for t in reader_threads(self.db))
        return {
            "process": process,
            "event loop thread": loop,
            "writer thread": writer,
            "reader threads": readers,
            "other threads": max(0.0, process - loop - writer - readers),
        }


def unit_name(unit: object) -> str:
    """Where a unit of work comes from: its function's qualified name (through partials)."""
    while isinstance(unit, functools.partial):
        unit = unit.func
    module = str(getattr(unit, "__module__", "") or "").removeprefix("orchestrion.")
    return f"{module}.{getattr(unit, '__qualname__', type(unit).__name__)}"


def statement_label(statement: str, executemany: bool) -> str:
    words = statement.split()
    upper = [w.upper() for w in words]
    verb = upper[0]
    label = verb
    if verb == "BEGIN":
        label = " ".join(upper[:2])
    elif verb == "UPDATE":
        label = f"UPDATE {words[1]}"
    else:
        for keyword in ("INTO", "FROM"):
            if keyword in upper:
                label = f"{verb} {words[upper.index(keyword) + 1]}"
                break
    return f"{label} (executemany)" if executemany else label


class DatabaseCounters:
    """Counts and times the runtime's units of work, transactions, SQL statements and LLM calls.

    The loop-side figures (units, awaited wall time) are kept on the event-loop thread; the
    thread-side ones (statements, CPU inside transactions and units) under a lock, since the reader
    pool has several threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[tuple[Engine, str, Callable[..., None]]] = []
        self._zero()

    def _zero(self) -> None:
        self.enabled = False
        self.writes = 0
        self.reads = 0
        self.write_wait = 0.0
        self.read_wait = 0.0
        self.llm_calls = 0
        self.llm_wait = 0.0
        self.commits = 0
        self.units_committed = 0
        self.commit_wall = 0.0
        self.commit_cpu = 0.0
        self.write_unit_cpu = 0.0
        self.read_tx_cpu = 0.0
        self.read_unit_cpu = 0.0
        self.statements: collections.Counter[str] = collections.Counter()
        self.units: collections.Counter[str] = collections.Counter()
        # Set while profiling: run on the writer thread around each transaction.
        self.writer_profiler: cProfile.Profile | None = None

    def start(self) -> None:
        """Zero the counts and count from now on (SQL listeners included)."""
        self._zero()
        for engine, name, listener in self._listeners:
            event.listen(engine, name, listener)
        self.enabled = True

    def stop(self) -> None:
        """Stop counting and take the SQL listeners off (their dispatch costs every statement)."""
        self.enabled = False
        for engine, name, listener in self._listeners:
            event.remove(engine, name, listener)

    def _add(self, name: str, amount: float) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    @contextlib.contextmanager
    def _thread_cpu(self, name: str) -> Iterator[None]:
        started = time.thread_time()
        try:
            yield
        finally:
            if self.enabled:
                self._add(name, time.thread_time() - started)

    def install(self, client: W1Client) -> None:
        db = client.runtime.db
        writer = writer_of(db)
        original_write, original_read = db.write, db.read
        original_read_sqlite, original_commit = db._read_sqlite, writer._commit
        counters = self

        async def write(unit: Callable[[WriteTx], T]) -> T:
            if not counters.enabled:
                return await original_write(unit)
            counters.units[f"write: {unit_name(unit)}"] += 1

            def timed_unit(tx: WriteTx) -> T:
                with counters._thread_cpu("write_unit_cpu"):
                    return unit(tx)

            started = time.perf_counter()
            try:
                return await original_write(timed_unit)
            finally:
                counters.writes += 1
                counters.write_wait += time.perf_counter() - started

        async def read(unit: Callable[[Connection], T]) -> T:
            if not counters.enabled:
                return await original_read(unit)
            counters.units[f"read: {unit_name(unit)}"] += 1

            def timed_unit(conn: Connection) -> T:
                with counters._thread_cpu("read_unit_cpu"):
                    return unit(conn)

            started = time.perf_counter()
            try:
                return await original_read(timed_unit)
            finally:
                counters.reads += 1
                counters.read_wait += time.perf_counter() - started

        def read_sqlite(unit: Callable[[Connection], T]) -> T:
            with counters._thread_cpu("read_tx_cpu"):
                return original_read_sqlite(unit)

        depth = 0  # `_commit` calls itself per unit when a group fails: time the outer call only

        def commit(batch: list[Any]) -> None:
            nonlocal depth
            profiler = None if depth else counters.writer_profiler
            if profiler is not None:
                profiler.enable()  # this thread only
            try:
                if not counters.enabled or depth:
                    counters.commits += counters.enabled
                    original_commit(batch)
                    return
                depth += 1
                wall, cpu = time.perf_counter(), time.thread_time()
                try:
                    original_commit(batch)
                finally:
                    depth -= 1
                    counters.commits += 1
                    counters.units_committed += len(batch)
                    counters.commit_wall += time.perf_counter() - wall
                    counters.commit_cpu += time.thread_time() - cpu
            finally:
                if profiler is not None:
                    profiler.disable()

        # Instance attributes shadow the methods for every holder of these objects; the writer
        # thread looks `self._commit` up for each batch, and `read` looks up `self._read_sqlite`.
        db.write = write  # type: ignore[method-assign]
        db.read = read  # type: ignore[method-assign]
        db._read_sqlite = read_sqlite  # type: ignore[method-assign]
        writer._commit = commit  # type: ignore[method-assign]

        router = client.runtime.router
        if router is not None:
            original_complete = router.complete

            async def complete(route: str, request: ChatRequest) -> ChatResponse:
                started = time.perf_counter()
                try:
                    return await original_complete(route, request)
                finally:
                    if counters.enabled:
                        counters.llm_calls += 1
                        counters.llm_wait += time.perf_counter() - started

            router.complete = complete  # type: ignore[method-assign]

        for role, engine in (("write", db._write_engine), ("read", db._read_engine)):
            self._listeners += [
                (engine, "before_cursor_execute", self._statement_listener(role)),
                (engine, "commit", self._end_listener(role, "COMMIT")),
                (engine, "rollback", self._end_listener(role, "ROLLBACK")),
            ]

    def _statement_listener(self, role: str) -> Callable[..., None]:
        def on_statement(
            conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
        ) -> None:
            if self.enabled:
                with self._lock:
                    self.statements[f"{role}: {statement_label(statement, executemany)}"] += 1

        return on_statement

    def _end_listener(self, role: str, verb: str) -> Callable[[Any], None]:
        def on_end(conn: Any) -> None:
            if self.enabled:
                with self._lock:
                    self.statements[f"{role}: {verb} (driver)"] += 1

        return on_end

    def report(self, tasks: int, out: io.StringIO) -> None:
        def per(value: float) -> str:
            return f"{value / tasks:.2f}"

        def ms(seconds: float) -> str:
            return f"{seconds / tasks * 1000:.2f} ms"

        sql = sum(n for k, n in self.statements.items() if "(driver)" not in k)
        lines = [
            f"Database.write units: {per(self.writes)}, awaited {ms(self.write_wait)} (wall, summed over"
            " the parallel steps)",
            f"write transactions (writer commits): {per(self.commits)}, carrying {per(self.units_committed)}"
            " units (group commit)",
            f"Database.read units (one transaction each): {per(self.reads)}, awaited {ms(self.read_wait)}",
            f"LLM calls: {per(self.llm_calls)}, awaited {ms(self.llm_wait)} (wall, summed over the parallel"
            " steps)",
            f"SQL statements through the cursor (BEGIN included; COMMIT is the driver's): {per(sql)}",
            f"writer thread inside its transactions: {ms(self.commit_wall)} wall, {ms(self.commit_cpu)} CPU,"
            f" of which {ms(self.write_unit_cpu)} inside the units",
            f"reader threads inside read transactions: {ms(self.read_tx_cpu)} CPU, of which"
            f" {ms(self.read_unit_cpu)} inside the units",
        ]
        if self.commits and sql:
            outside = (self.commit_cpu - self.write_unit_cpu) / self.commits * 1000
            write_sql = (
                sum(n for k, n in self.statements.items() if k.startswith("write: ")) - 2 * self.commits
            )
            per_statement = self.write_unit_cpu / max(write_sql, 1) * 1000
            lines.append(
                f"per write transaction: {self.commit_cpu / self.commits * 1000:.3f} ms writer CPU, of which"
                f" {outside:.3f} ms outside the units (pool checkout, BEGIN IMMEDIATE, COMMIT and its WAL"
                f" writes); per statement inside the units: {per_statement:.3f} ms"
            )
        for line in lines:
            print(f"  {line}", file=out)
        print("  statements per task:", file=out)
        for key, value in sorted(self.statements.items()):
            print(f"    {value / tasks:5.2f}  {key}", file=out)
        print("  units of work per task:", file=out)
        for key, value in sorted(self.units.items()):
            print(f"    {value / tasks:5.2f}  {key}", file=out)


def bucket_profile(stats: pstats.Stats, tasks: int) -> dict[str, float]:
    """Own time (tottime) per library bucket, in ms per task."""
    totals: collections.Counter[str] = collections.Counter()
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        label = "other"
        for bucket, patterns in BUCKETS:
            if any(p in filename for p in ((patterns,) if isinstance(patterns, str) else patterns)):
                label = bucket
                break
        if filename == "~":
            if "poll" in name:
                label = IDLE
            elif "sqlite3" in name:
                label = "sqlite3 (C: statements, BEGIN, COMMIT)"
            else:
                label = "C builtins"
        totals[label] += tottime
    return {k: round(v / tasks * 1000, 2) for k, v in totals.most_common()}


def short_path(filename: str) -> str:
    for marker in ("/site-packages/", "/src/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def cumulative_listing(stats: pstats.Stats, tasks: int, limit: int) -> list[str]:
    """The functions of Orchestrion and its libraries (site-packages) by cumulative time.

    cProfile ends a coroutine's call at each suspension and starts another at each resumption, so
    its cumulative time is the time it ran (its callees included), not the time it was awaited, and
    its call count counts resumptions.
    """
    rows = []
    for (filename, line, name), (_cc, nc, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "/orchestrion/" in filename or "/site-packages/" in filename:
            rows.append((cumtime, tottime, nc, f"{short_path(filename)}:{line}({name})"))
    rows.sort(reverse=True)
    lines = [f"  {'cum ms/task':>11}  {'own ms/task':>11}  {'calls/task':>10}  function"]
    for cumtime, tottime, nc, where in rows[:limit]:
        lines.append(
            f"  {cumtime / tasks * 1000:11.3f}  {tottime / tasks * 1000:11.3f}  {nc / tasks:10.1f}  {where}"
        )
    return lines


async def _per_call(make: Callable[[], Any], rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        await make()
    return (time.perf_counter() - started) / rounds * 1000


def _sync_costs(engine: Engine, unit: Callable[[WriteTx], object], rounds: int) -> tuple[float, float]:
    """ms per call of `unit` run on this thread: in its own transaction, and inside one open one."""

    def run(conn: Connection) -> None:
        tx = WriteTx(conn)
        unit(tx)
        tx.finish()  # the before-commit work (events are flushed here), as Database does

    started = time.perf_counter()
    for _ in range(rounds):
        with engine.connect() as conn, conn.begin():
            run(conn)
    own = (time.perf_counter() - started) / rounds * 1000
    with engine.connect() as conn, conn.begin():
        started = time.perf_counter()
        for _ in range(rounds):
            run(conn)
        in_tx = (time.perf_counter() - started) / rounds * 1000
    return own, in_tx


async def write_costs(client: W1Client, task_id: str, rounds: int) -> list[str]:
    """What one write costs on this store, in ms, one at a time with the runtime otherwise idle.

    For each unit: the `await db.write(unit)` round trip (wall; CPU of the event-loop thread and of
    the writer thread), the unit in its own transaction on a sync connection of the write engine
    (no thread hop, no event publishing), and the unit alone inside one open transaction.
    """
    db = client.runtime.db
    writer_thread = writer_of(db)._thread
    runs = await db.read(lambda conn: read_runs(conn, task_id))
    run: AgentRun = next(r for r in runs if r.agent_id != "reporter")
    event_data = {"step_id": run.step_id, "agent_id": run.agent_id, "attempt": run.attempts}

    def empty(tx: WriteTx) -> None:
        return None

    def one_event(tx: WriteTx) -> None:
        append_event(tx, task_id, EventType.TASK_PROGRESS, {"probe": True})

    def checkpoint(tx: WriteTx) -> None:  # as engines.team._checkpoint for a specialist step
        save_run(tx, run)
        set_step_fields(
            tx,
            task_id,
            run.step_id,
            status=run.status,
            attempts=run.attempts,
            finished_at=utcnow(),
            error=None,
        )
        data = event_data | {"duration_seconds": 0.01, "findings": 0, "evidence": 0, "tokens": 0}
        append_event(tx, task_id, EventType.STEP_COMPLETED, data)

    units: dict[str, Callable[[WriteTx], None]] = {
        "empty unit": empty,
        "one append_event (UPDATE tasks + INSERT events)": one_event,
        "checkpoint (save_run + set_step_fields + append_event: 5 statements)": checkpoint,
    }
    header = (
        f"  {'await db.write':>14} {'loop CPU':>9} {'writer CPU':>10}"
        f"  {'sync, own tx':>12} {'sync, in open tx':>16}  unit"
    )
    lines = [header]
    # The writer thread keeps the write engine's one connection: direct measurements use a sibling
    # engine on the same file, configured the same way (BEGIN IMMEDIATE, WAL pragmas).
    sibling = create_engine(
        db._write_engine.url,
        pool_size=1,
        max_overflow=0,
        connect_args={"check_same_thread": False, "timeout": 30},
    )
    _configure_sqlite(sibling, immediate=True)
    for label, unit in units.items():
        for _ in range(20):
            await db.write(unit)
        loop_cpu, writer_cpu = time.thread_time(), thread_cpu(writer_thread)
        awaited = await _per_call(functools.partial(db.write, unit), rounds)
        loop_cpu = (time.thread_time() - loop_cpu) / rounds * 1000
        writer_cpu = (thread_cpu(writer_thread) - writer_cpu) / rounds * 1000
        own, in_tx = await asyncio.to_thread(_sync_costs, sibling, unit, rounds)
        lines.append(
            f"  {awaited:14.3f} {loop_cpu:9.3f} {writer_cpu:10.3f}  {own:12.3f} {in_tx:16.3f}  {label}"
        )

    sibling.dispose()
    path = db.url.split(":///", 1)[1].split("?", 1)[0]
    raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    hop = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="w1-profile-hop")
    try:
        raw.execute("PRAGMA synchronous=NORMAL")
        raw.execute("PRAGMA busy_timeout=30000")
        params = (0, task_id)

        def statement() -> None:
            raw.execute(RAW_BUMP, params).fetchall()

        def transaction() -> None:
            raw.execute("BEGIN IMMEDIATE")
            statement()
            raw.execute("COMMIT")

        def in_open_tx() -> float:
            raw.execute("BEGIN IMMEDIATE")
            started = time.perf_counter()
            for _ in range(rounds):
                statement()
            elapsed = (time.perf_counter() - started) / rounds * 1000
            raw.execute("COMMIT")
            return elapsed

        def own_tx() -> float:
            started = time.perf_counter()
            for _ in range(rounds):
                transaction()
            return (time.perf_counter() - started) / rounds * 1000

        loop = asyncio.get_running_loop()
        raw_costs = {
            "the UPDATE inside an open transaction": await loop.run_in_executor(hop, in_open_tx),
            "BEGIN IMMEDIATE + UPDATE + COMMIT": await loop.run_in_executor(hop, own_tx),
            "BEGIN IMMEDIATE + UPDATE + COMMIT, one run_in_executor hop each (from the event loop)": (
                await _per_call(lambda: loop.run_in_executor(hop, transaction), rounds)
            ),
            "an empty run_in_executor hop (event loop -> thread -> event loop)": await _per_call(
                lambda: loop.run_in_executor(hop, time.perf_counter), rounds
            ),
        }
    finally:
        hop.shutdown()
        raw.close()
    lines.append("  raw sqlite3, the UPDATE append_event runs (bumped by 0), for reference:")
    lines.extend(f"  {value:14.3f}  {key}" for key, value in raw_costs.items())
    return lines


async def settle(client: W1Client) -> None:
    """Wait until no worker is still finishing a run before the runtime stops.

    A task's terminal event is published before its worker leaves `LocalJobQueue._run_one`, whose
    `finally` awaits the cancelled heartbeat under ``contextlib.suppress(CancelledError)``: stopping
    the queue at that moment swallows the worker's own cancellation and `stop` waits forever.
    """
    while client.runtime.queue.running():  # noqa: ASYNC110 - the queue offers a count, no event
        await asyncio.sleep(0.001)


async def profile(server: VendorProcess, tasks: int, warmup: int, rounds: int) -> str:
    out = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="orchestrion-w1-profile-") as home:
        async with w1_runtime(Path(home), base_url=server.base_url, workers=50) as client:
            db = client.runtime.db
            progress("warm-up")
            await run_sequential(client.run_task, warmup)
            index = warmup

            # 1. Timing, nothing instrumented yet.
            progress("timing")
            clocks = ThreadClocks(db)
            server_cpu, wall = server.cpu_seconds(), time.perf_counter()
            clocks.start()
            latencies = await run_sequential(client.run_task, tasks, first_index=index)
            cpu = clocks.stop()
            wall = time.perf_counter() - wall
            server_cpu = server.cpu_seconds() - server_cpu
            index += tasks
            ordered = sorted(latencies)
            print(f"W1 profile, concurrency 1, {tasks} tasks after {warmup} warm-up tasks", file=out)
            print(
                f"wall per task: {wall / tasks * 1000:.2f} ms (p50 {ordered[len(ordered) // 2] * 1000:.2f},"
                f" min {ordered[0] * 1000:.2f})",
                file=out,
            )
            print("CPU per task (each thread's own clock; nothing instrumented in this pass):", file=out)
            for key, seconds in cpu.items():
                print(f"  {seconds / tasks * 1000:7.2f} ms  {key}", file=out)
            print(
                f"  {server_cpu / tasks * 1000:7.2f} ms  test server process (/proc, 10 ms ticks)", file=out
            )

            # 2. Counting.
            progress("counting")
            counters = DatabaseCounters()
            counters.install(client)
            counters.start()
            await run_sequential(client.run_task, tasks, first_index=index)
            counters.stop()
            index += tasks
            print(f"\ndatabase and LLM work per task (a second pass of {tasks} tasks, counted):", file=out)
            counters.report(tasks, out)
            last = client.last_task_id
            assert last is not None
            events = await db.read(lambda conn: read_events(conn, last))
            kinds = collections.Counter(e.type for e in events)
            print(
                f"  events per task: {len(events)} ({', '.join(f'{k} x{v}' for k, v in kinds.items())})",
                file=out,
            )

            # 3. Write costs.
            progress("write costs")
            print(
                f"\nwrite costs on this store, ms per call ({rounds} rounds each, one at a time, the"
                " runtime otherwise idle):",
                file=out,
            )
            for line in await write_costs(client, last, rounds):
                print(line, file=out)

            # 4. cProfile of the event-loop thread.
            progress("cProfile")
            writer_thread = writer_of(db)._thread
            writer_cpu = thread_cpu(writer_thread)
            profiler = cProfile.Profile()
            counters.writer_profiler = writer_profiler = cProfile.Profile()
            profiler.enable()
            await run_sequential(client.run_task, tasks, first_index=index)
            profiler.disable()
            counters.writer_profiler = None
            writer_cpu = thread_cpu(writer_thread) - writer_cpu
            await settle(client)
    stats = pstats.Stats(profiler)
    print(
        f"\ncProfile of {tasks} more tasks (event-loop thread only; cProfile itself inflates the figures;"
        f" the writer thread used {writer_cpu / tasks * 1000:.2f} ms CPU per task meanwhile)",
        file=out,
    )
    print("own time by library, ms per task:", file=out)
    for label, ms in bucket_profile(stats, tasks).items():
        print(f"  {ms:7.2f}  {label}", file=out)
    print(
        "\nOrchestrion and its libraries by cumulative time (time running, callees included; a"
        " coroutine's calls count its resumptions):",
        file=out,
    )
    for line in cumulative_listing(stats, tasks, 30):
        print(line, file=out)
    listing = io.StringIO()
    stats.stream = listing  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(25)
    print(f"\n{listing.getvalue().strip()}", file=out)

    writer_stats = pstats.Stats(writer_profiler)
    print(
        f"\ncProfile of the writer thread over the same {tasks} tasks (inside `_SqliteWriter._commit`),"
        " own time by library, ms per task:",
        file=out,
    )
    for label, ms in bucket_profile(writer_stats, tasks).items():
        print(f"  {ms:7.2f}  {label}", file=out)
    listing = io.StringIO()
    writer_stats.stream = listing  # type: ignore[attr-defined]
    writer_stats.sort_stats("tottime").print_stats(20)
    print(f"\n{listing.getvalue().strip()}", file=out)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=200, help="tasks per pass (three passes)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=300, help="calls per write-cost measurement")
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    args = parser.parse_args()
    with VendorProcess() as server:
        report = asyncio.run(profile(server, args.tasks, args.warmup, args.rounds))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"w1-profile-{datetime.now(UTC).date().isoformat()}.txt"
    out.write_text(report)
    print(report)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
