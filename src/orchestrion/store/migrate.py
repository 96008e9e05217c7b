"""Apply Alembic migrations programmatically (`orchestrion db upgrade`, and `serve` on start)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from orchestrion.store.database import _ensure_sqlite_dir

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the packaged migrations and `url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    return config


def upgrade_database(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision` (blocking; runs its own event loop)."""
    if url.startswith("sqlite"):
        _ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)


async def aupgrade_database(url: str, revision: str = "head") -> None:
    """`upgrade_database` from async code: Alembic's env runs its own loop, so use a thread."""
    await asyncio.to_thread(upgrade_database, url, revision)
