"""Transactions as units of work, run in one hop: SQLite (embedded) and PostgreSQL (at scale).

Repository functions are synchronous SQLAlchemy Core functions of a `Connection`. `Database.write`
and `Database.read` run one such function as a whole transaction:

- SQLite: on a dedicated writer thread (SQLite allows one writer at a time; the thread serialises
  this process's writers and `BEGIN IMMEDIATE` with `busy_timeout` serialises other processes) or on
  a small reader pool (WAL: readers never block the writer). A transaction costs one thread hop,
  not one per statement. The writer commits every unit queued by the time it starts in one
  transaction (group commit); if that fails, it runs them again one transaction each, so a failing
  unit never takes another's work down with it.
- PostgreSQL: on the asyncpg engine through `AsyncConnection.run_sync`, row locks doing the rest.

Events recorded by a write (`WriteTx.events`) are published to the sinks after it commits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from orchestrion.domain.events import Event

logger = logging.getLogger(__name__)

T = TypeVar("T")
EventSink = Callable[[Sequence[Event]], Awaitable[None]]


class WriteTx:
    """A write transaction: its connection, work to do before it commits, events to publish after."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.events: list[Event] = []
        self.pending_events: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self._before_commit: list[Callable[[WriteTx], None]] = []

    def before_commit(self, hook: Callable[[WriteTx], None]) -> None:
        """Run `hook` once the unit has returned, still inside the transaction."""
        self._before_commit.append(hook)

    def finish(self) -> None:
        """Run the before-commit hooks (called by `Database`)."""
        for hook in self._before_commit:
            hook(self)


class Database:
    """Owns engines and threads. Built by `runtime.py`; repositories receive connections from it."""

    def __init__(self, url: str, *, read_threads: int = 4, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._sinks: list[EventSink] = []
        self._background: set[asyncio.Task[None]] = set()
        self._async_engine: AsyncEngine | None = None
        self._writer: _SqliteWriter | None = None
        self._readers: concurrent.futures.ThreadPoolExecutor | None = None
        if self.is_sqlite:
            _ensure_sqlite_dir(url)
            sync_url = "sqlite:" + url.split(":", 1)[1]
            args = {"check_same_thread": False, "timeout": 30}
            self._write_engine: Engine = create_engine(
                sync_url, pool_size=1, max_overflow=0, connect_args=args
            )
            self._read_engine: Engine = create_engine(
                sync_url, pool_size=read_threads, max_overflow=0, connect_args=args
            )
            _configure_sqlite(self._write_engine, immediate=True)
            _configure_sqlite(self._read_engine, immediate=False)
            self._writer = _SqliteWriter(self._write_engine)
            self._readers = concurrent.futures.ThreadPoolExecutor(
                read_threads, thread_name_prefix="orchestrion-db-reader"
            )
        else:
            self._async_engine = create_async_engine(
                url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )

    def add_event_sink(self, sink: EventSink) -> None:
        """Call `sink` with the events of every write transaction after it commits."""
        self._sinks.append(sink)

    async def write(self, unit: Callable[[WriteTx], T]) -> T:
        """Run `unit` as one write transaction (commit on return, roll back on error)."""
        result: T
        events: list[Event]
        if self._writer is not None:
            future = self._writer.submit(unit)
            try:
                result, events = await asyncio.shield(future)
            except asyncio.CancelledError:
                # The transaction may still commit on the writer thread: publish its events if so.
                future.add_done_callback(self._publish_later)
                raise
        else:
            assert self._async_engine is not None
            async with self._async_engine.connect() as aconn, aconn.begin():
                result, events = await aconn.run_sync(_run_unit, unit)
        if events:
            await self._publish(events)
        return result

    async def read(self, unit: Callable[[Connection], T]) -> T:
        """Run `unit` in a read transaction (a consistent snapshot)."""
        if self._readers is not None:
            return await asyncio.get_running_loop().run_in_executor(self._readers, self._read_sqlite, unit)
        assert self._async_engine is not None
        async with self._async_engine.connect() as aconn, aconn.begin():
            return await aconn.run_sync(unit)

    def _read_sqlite(self, unit: Callable[[Connection], T]) -> T:
        with self._read_engine.connect() as conn, conn.begin():
            return unit(conn)

    async def _publish(self, events: list[Event]) -> None:
        for sink in self._sinks:
            await sink(events)

    def _publish_later(self, future: asyncio.Future[tuple[Any, list[Event]]]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        _, events = future.result()
        if events:
            task = asyncio.get_running_loop().create_task(self._publish(events))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def ping(self) -> None:
        """Run a trivial query (for /health)."""
        await self.read(lambda conn: conn.execute(text("SELECT 1")).scalar_one())

    async def dispose(self) -> None:
        """Close connections and stop the threads."""
        for task in list(self._background):
            await task
        if self._async_engine is not None:
            await self._async_engine.dispose()
        if self._writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._writer.stop)
        if self._readers is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._readers.shutdown)
        if self.is_sqlite:
            self._write_engine.dispose()
            self._read_engine.dispose()


_Item = tuple[Callable[[WriteTx], Any], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class _SqliteWriter:
    """The one thread that writes to a SQLite file for this process, with group commit."""

    def __init__(self, engine: Engine, *, max_batch: int = 128) -> None:
        self._engine = engine
        self._max_batch = max_batch
        # Only the writer thread touches this connection: kept open between transactions, it spares
        # each one a pool checkout and the ROLLBACK the pool issues on check-in.
        self._conn: Connection | None = None
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="orchestrion-db-writer", daemon=True)
        self._thread.start()

    def submit(self, unit: Callable[[WriteTx], Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put((unit, future, loop))
        return future

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._close()
                return
            batch = [item]
            stopping = False
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            self._commit(batch)
            if stopping:
                self._close()
                return

    def _commit(self, batch: list[_Item]) -> None:
        try:
            conn = self._connection()
            with conn.begin():
                outcomes = [_run_unit(conn, unit) for unit, _, _ in batch]
        except Exception as exc:
            if self._conn is not None and self._conn.invalidated:
                self._close()
            if len(batch) == 1:
                _deliver(batch[0], error=exc)
                return
            for item in batch:  # one failed: give each its own transaction
                self._commit([item])
            return
        for item, outcome in zip(batch, outcomes, strict=True):
            _deliver(item, result=outcome)

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed:
            self._conn = self._engine.connect()
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _deliver(item: _Item, *, result: Any = None, error: BaseException | None = None) -> None:
    _, future, loop = item

    def settle() -> None:
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    loop.call_soon_threadsafe(settle)


def _run_unit(conn: Connection, unit: Callable[[WriteTx], T]) -> tuple[T, list[Event]]:
    tx = WriteTx(conn)
    result = unit(tx)
    tx.finish()
    return result, tx.events


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: Engine, *, immediate: bool) -> None:
    # Take transaction control from the driver so that BEGIN is ours (SQLAlchemy's documented recipe).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)
