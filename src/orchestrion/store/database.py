"""Engines and transactions for SQLite (embedded) and PostgreSQL (at scale).

SQLite allows one writer at a time. A deferred transaction that reads and then writes can fail with
SQLITE_BUSY when another writer committed in between, so on SQLite every write transaction starts
with ``BEGIN IMMEDIATE`` on a dedicated single-connection engine: in-process writers queue on the
pool, other processes wait on ``busy_timeout``. Reads use a separate pool and never block writers
(WAL). On PostgreSQL both roles share one engine and row locks do the work.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from orchestrion.domain.events import Event

EventSink = Callable[[Sequence[Event]], Awaitable[None]]


class WriteTx:
    """A write transaction: the session, plus events to publish once it commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.events: list[Event] = []


class Database:
    """Owns the engines. Built by `runtime.py`; every repository takes a session from here."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._sinks: list[EventSink] = []
        if self.is_sqlite:
            _ensure_sqlite_dir(url)
            self.read_engine = create_async_engine(
                url, echo=echo, pool_size=pool_size, max_overflow=pool_size, connect_args={"timeout": 30}
            )
            self.write_engine = create_async_engine(
                url, echo=echo, pool_size=1, max_overflow=0, pool_timeout=300, connect_args={"timeout": 30}
            )
            _configure_sqlite(self.read_engine, immediate=False)
            _configure_sqlite(self.write_engine, immediate=True)
        else:
            self.read_engine = create_async_engine(
                url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
            self.write_engine = self.read_engine
        self._read = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._write = async_sessionmaker(self.write_engine, expire_on_commit=False)

    def add_event_sink(self, sink: EventSink) -> None:
        """Call `sink` with the events of every write transaction after it commits."""
        self._sinks.append(sink)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only session."""
        async with self._read() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[WriteTx]:
        """A write transaction; commits on exit, rolls back on error, then publishes its events."""
        async with self._write() as session, session.begin():
            tx = WriteTx(session)
            yield tx
        if tx.events:
            for sink in self._sinks:
                await sink(tx.events)

    async def ping(self) -> None:
        """Run a trivial query (for /health)."""
        from sqlalchemy import text

        async with self.read() as session:
            await session.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            await self.write_engine.dispose()


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine, *, immediate: bool) -> None:
    # Take transaction control from the driver so that BEGIN is ours (SQLAlchemy's documented recipe).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)
