"""Persistence: table models, repositories as synchronous Core units of work, Alembic migrations.

`database.Database` runs each unit as one transaction (SQLite on a writer thread with group commit,
PostgreSQL through asyncpg); `models` defines the schema; `tasks`, `runs`, `events` and `users` are the
repositories; `migrations` holds the Alembic history.
"""
