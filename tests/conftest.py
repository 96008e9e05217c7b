"""Shared fixtures: real SQLite files, a real PostgreSQL server process, a real uvicorn server."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from orchestrion.api.app import create_app
from orchestrion.providers.base import Provider
from orchestrion.providers.presets import PRESETS
from orchestrion.runtime import Runtime, prepare_database
from orchestrion.settings import Settings
from orchestrion.store.database import Database
from orchestrion.store.migrate import aupgrade_database
from orchestrion.testing import ScriptedProvider
from orchestrion.testing.responders import grounded_analyst
from tests import network_guard

network_guard.install(
    sorted({p.api_key_env for p in PRESETS.values() if p.api_key_env} | {"ORCHESTRION_OPENAI_API_KEY"})
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- PostgreSQL ----------------------------------------------------------------------------------


def _pg_bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


@dataclass
class PostgresServer:
    host: str
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@{self.host}:{self.port}/{database}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster in a temp dir, run as the `postgres` user when we are root."""
    bindir = _pg_bindir()
    if bindir is None:
        if os.environ.get("ORCHESTRION_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL binaries not found but ORCHESTRION_REQUIRE_POSTGRES=1")
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not installed")
    root = Path(tempfile.mkdtemp(prefix="orchestrion-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, sock):
            os.chown(path, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(root / "log"),
            "-o",
            options,
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield PostgresServer(host="127.0.0.1", port=port)
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


async def create_pg_database(server: PostgresServer) -> str:
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(host=server.host, port=server.port, user="postgres", database="postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server.url(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL: a SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'orchestrion.db'}"
    server = request.getfixturevalue("postgres_server")
    return asyncio.run(create_pg_database(server))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated database."""
    await aupgrade_database(database_url)
    db = Database(database_url)
    try:
        yield db
    finally:
        await db.dispose()


# -- runtimes and servers ------------------------------------------------------------------------


def make_settings(home: Path, **overrides: Any) -> Settings:
    """Settings for tests: the given home, the LLM off unless routes are given, fast leases."""
    values: dict[str, Any] = {
        "home": home,
        "llm": "none",
        "workers": 2,
        "lease_seconds": 5.0,
        "sweep_interval_seconds": 0.5,
        "retry_backoff_seconds": 0.01,
        "admin_api_key": "orc_test_" + secrets.token_urlsafe(24),
        # Memory search by keyword unless a test asks for vectors: loading the model costs seconds.
        "embeddings": "off",
    }
    values.update(overrides)
    return Settings(**values)


def scripted_routes(delay: float = 0.0) -> dict[str, list[Provider]]:
    """A default route answered by a scripted analyst."""
    return {"default": [ScriptedProvider(default=grounded_analyst, delay=delay)]}


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    """An in-process runtime on a migrated SQLite file with a scripted LLM, workers started."""
    settings = make_settings(tmp_path)
    await aupgrade_database(settings.resolved_database_url)
    rt = Runtime.create(settings, routes=scripted_routes())
    await rt.bootstrap_admin()
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


@dataclass
class LiveServer:
    base_url: str
    admin_key: str
    settings: Settings
    runtime: Runtime

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        token = key if key is not None else self.admin_key
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30.0, **kwargs)


class ServerThread:
    """uvicorn serving an app on 127.0.0.1 from a background thread."""

    def __init__(self, app: Any, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


@contextlib.contextmanager
def serve(
    home: Path,
    *,
    routes: Mapping[str, Sequence[Provider]] | None = None,
    configured_llm: bool = False,
    **overrides: Any,
) -> Iterator[LiveServer]:
    """Migrate, bootstrap the admin and serve a real app on a free port.

    LLM calls go to a scripted analyst unless `routes` are given or `configured_llm` asks for the
    deployment named by the settings (the real embedded model).
    """
    settings = make_settings(home, **overrides)
    # A thread of its own: the caller may be inside a running event loop (an async test).
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(prepare_database, settings).result()
    if not configured_llm and routes is None:
        routes = scripted_routes()
    app = create_app(settings, routes=routes)
    port = free_port()
    thread = ServerThread(app, port)
    thread.start()
    try:
        assert settings.admin_api_key is not None
        yield LiveServer(
            base_url=f"http://127.0.0.1:{port}",
            admin_key=settings.admin_api_key.get_secret_value(),
            settings=settings,
            runtime=app.state.runtime,
        )
    finally:
        thread.stop()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A real uvicorn server on SQLite with a scripted LLM."""
    with serve(tmp_path) as server:
        yield server


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start servers with custom settings; all stopped at the end."""
    stack = contextlib.ExitStack()

    def start(**overrides: Any) -> LiveServer:
        home = tmp_path / f"home-{uuid.uuid4().hex[:6]}"
        return stack.enter_context(serve(home, **overrides))

    with stack:
        yield start
