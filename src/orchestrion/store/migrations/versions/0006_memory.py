"""memory items, chunks, tags, vectors and the keyword index

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 19:30:00

The keyword index depends on the backend: SQLite gets an external-content FTS5 table over
`memory_chunks` (porter stemming, BM25 through `bm25()`) kept in step by triggers; PostgreSQL gets
a generated `tsvector` column (heading weighted A, body B) with a GIN index. Vectors are float32
blobs on both: pgvector is not packaged for this project's PostgreSQL (see docs/recall.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orchestrion.store.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_FTS_DELETE = (
    "INSERT INTO memory_fts(memory_fts, rowid, heading, body) "
    "VALUES ('delete', old.id, old.heading, old.body);"
)
_FTS_INSERT = "INSERT INTO memory_fts(rowid, heading, body) VALUES (new.id, new.heading, new.body);"
_SQLITE_FTS = (
    "CREATE VIRTUAL TABLE memory_fts USING fts5(heading, body, content='memory_chunks', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER memory_chunks_ai AFTER INSERT ON memory_chunks BEGIN {_FTS_INSERT} END",
    f"CREATE TRIGGER memory_chunks_ad AFTER DELETE ON memory_chunks BEGIN {_FTS_DELETE} END",
    f"CREATE TRIGGER memory_chunks_au AFTER UPDATE ON memory_chunks BEGIN {_FTS_DELETE} {_FTS_INSERT} END",
)

_POSTGRES_TSV = (
    "ALTER TABLE memory_chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english'::regconfig, heading), 'A') || "
    "setweight(to_tsvector('english'::regconfig, body), 'B')) STORED",
    "CREATE INDEX ix_memory_chunks_tsv ON memory_chunks USING gin (tsv)",
)


def upgrade() -> None:
    op.create_table(
        "memory_items",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("task_id", sa.String(length=36), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("embedding_model", sa.String(length=100), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_memory_items_owner_created", "memory_items", ["owner_id", "created_at", "id"], unique=False
    )
    op.create_index("ix_memory_items_task", "memory_items", ["task_id"], unique=False)
    op.create_table(
        "memory_chunks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("heading", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["memory_items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_memory_chunks_item", "memory_chunks", ["item_id", "position"], unique=False)
    op.create_table(
        "memory_tags",
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["memory_items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id", "tag"),
    )
    op.create_index("ix_memory_tags_tag", "memory_tags", ["tag", "item_id"], unique=False)
    op.create_table(
        "memory_vectors",
        sa.Column("chunk_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.String(length=36), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["chunk_id"], ["memory_chunks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["item_id"], ["memory_items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("chunk_id"),
    )
    op.create_index("ix_memory_vectors_item", "memory_vectors", ["item_id"], unique=False)
    counters = op.create_table(
        "memory_counters",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(counters, [{"id": 1, "inserted": 0, "deleted": 0}])
    statements = _SQLITE_FTS if op.get_bind().dialect.name == "sqlite" else _POSTGRES_TSV
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("memory_chunks_au", "memory_chunks_ad", "memory_chunks_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS memory_fts")
    op.drop_table("memory_counters")
    op.drop_index("ix_memory_vectors_item", table_name="memory_vectors")
    op.drop_table("memory_vectors")
    op.drop_index("ix_memory_tags_tag", table_name="memory_tags")
    op.drop_table("memory_tags")
    op.drop_index("ix_memory_chunks_item", table_name="memory_chunks")
    op.drop_table("memory_chunks")
    op.drop_index("ix_memory_items_task", table_name="memory_items")
    op.drop_index("ix_memory_items_owner_created", table_name="memory_items")
    op.drop_table("memory_items")
