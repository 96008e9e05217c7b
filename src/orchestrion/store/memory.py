"""Memory items: their chunks, tags, vectors and the keyword index, on SQLite and PostgreSQL.

An item is written with its chunks, tags and vectors in one transaction; the keyword index follows
the chunks (SQLite: FTS5 triggers; PostgreSQL: a generated `tsvector` column), so deleting an item's
chunks in the same transaction removes it from every index at once. Keyword search itself lives in
`store/memory_search.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from orchestrion.store.database import WriteTx
from orchestrion.store.models import (
    MemoryChunkRow,
    MemoryCounterRow,
    MemoryItemRow,
    MemoryTagRow,
    MemoryVectorRow,
)
from orchestrion.store.tasks import decode_cursor, encode_cursor

ITEMS = cast(Table, MemoryItemRow.__table__)
CHUNKS = cast(Table, MemoryChunkRow.__table__)
TAGS = cast(Table, MemoryTagRow.__table__)
VECTORS = cast(Table, MemoryVectorRow.__table__)
COUNTERS = cast(Table, MemoryCounterRow.__table__)

MEMORY_SOURCES = ("document", "task", "finding")


@dataclass(frozen=True, kw_only=True)
class MemoryItem:
    """A stored memory item.

    Attributes:
        id: Its id (a UUID).
        owner_id: The user who owns it.
        shared: Whether every user may find it (otherwise only its owner and admins).
        source: ``document`` (added by a user), ``task`` (a task's report) or ``finding``.
        task_id: The task it came from (None for documents).
        title: Its title.
        tags: Its tags, sorted.
        size_bytes: Size of its text in UTF-8.
        content_hash: SHA-256 of its text.
        chunk_count: How many passages it was split into.
        embedding_model: The model its vectors come from (None: no vectors).
        created_at: When it was added (UTC).
        text: Its full text, when it was read with it.
    """

    id: str
    owner_id: str
    shared: bool
    source: str
    task_id: str | None
    title: str
    tags: tuple[str, ...]
    size_bytes: int
    content_hash: str
    chunk_count: int
    embedding_model: str | None
    created_at: datetime
    text: str | None = None


@dataclass(frozen=True, kw_only=True)
class NewChunk:
    """A passage to store: `text` is `item_text[start:start + len(text)]`; `vector` is float32 bytes."""

    position: int
    start: int
    text: str
    vector: bytes | None = None


@dataclass(frozen=True, kw_only=True)
class NewMemoryItem:
    """An item to insert with its chunks (`item.chunk_count` must equal `len(chunks)`)."""

    item: MemoryItem
    chunks: Sequence[NewChunk]
    dim: int = 0


@dataclass(frozen=True, kw_only=True)
class StoredChunk:
    """A chunk as read back for hits and snippets."""

    id: int
    item_id: str
    position: int
    start: int
    body: str


@dataclass(frozen=True, kw_only=True)
class ItemFilter:
    """Which items a query may return.

    Attributes:
        viewer: Items owned by this user or shared; None: every item (admins).
        tags: Items must have every one of these tags.
        sources: Items must come from one of these sources (empty: any).
    """

    viewer: str | None
    tags: Sequence[str] = ()
    sources: Sequence[str] = ()

    def clauses(self) -> list[ColumnElement[bool]]:
        """WHERE clauses over `memory_items` (empty when nothing is filtered)."""
        clauses: list[ColumnElement[bool]] = []
        if self.viewer is not None:
            clauses.append(or_(ITEMS.c.owner_id == self.viewer, ITEMS.c.shared.is_(True)))
        if self.sources:
            clauses.append(ITEMS.c.source.in_(list(self.sources)))
        if self.tags:
            clauses.append(ITEMS.c.id.in_(items_with_tags(self.tags)))
        return clauses


@dataclass(frozen=True, kw_only=True)
class MemoryStats:
    """Counts and sizes of the memory store."""

    items: int
    chunks: int
    vectors: int
    text_bytes: int


def items_with_tags(tags: Sequence[str]) -> Any:
    """A subquery of the ids of items that have every tag in `tags` (an index range per tag)."""
    wanted = sorted(set(tags))
    return (
        select(TAGS.c.item_id)
        .where(TAGS.c.tag.in_(wanted))
        .group_by(TAGS.c.item_id)
        .having(func.count() == len(wanted))
    )


def _item(row: Any, text: str | None = None) -> MemoryItem:
    return MemoryItem(
        id=row.id,
        owner_id=row.owner_id,
        shared=bool(row.shared),
        source=row.source,
        task_id=row.task_id,
        title=row.title,
        tags=tuple(row.tags),
        size_bytes=row.size_bytes,
        content_hash=row.content_hash,
        chunk_count=row.chunk_count,
        embedding_model=row.embedding_model,
        created_at=row.created_at,
        text=text,
    )


def _bump(tx: WriteTx, *, inserted: int = 0, deleted: int = 0) -> None:
    tx.conn.execute(
        update(COUNTERS)
        .where(COUNTERS.c.id == 1)
        .values(inserted=COUNTERS.c.inserted + inserted, deleted=COUNTERS.c.deleted + deleted)
    )


def insert_items(tx: WriteTx, items: Sequence[NewMemoryItem]) -> None:
    """Insert items with their tags, chunks (indexed by the keyword index) and vectors."""
    if not items:
        return
    # The counter row first: its row lock serialises memory writers until they commit, so chunk ids
    # become visible in increasing order (the vector cache loads "ids above the last one it has").
    _bump(tx, inserted=len(items))
    conn = tx.conn
    conn.execute(
        insert(ITEMS),
        [
            {
                "id": new.item.id,
                "owner_id": new.item.owner_id,
                "shared": new.item.shared,
                "source": new.item.source,
                "task_id": new.item.task_id,
                "title": new.item.title,
                "tags": list(new.item.tags),
                "size_bytes": new.item.size_bytes,
                "content_hash": new.item.content_hash,
                "chunk_count": len(new.chunks),
                "embedding_model": new.item.embedding_model,
                "created_at": new.item.created_at,
            }
            for new in items
        ],
    )
    tags = [{"item_id": new.item.id, "tag": tag} for new in items for tag in new.item.tags]
    if tags:
        conn.execute(insert(TAGS), tags)
    vectors: list[dict[str, Any]] = []
    for new in items:
        # One statement per item: the chunk ids are needed for the vectors, and RETURNING of a
        # multi-row insert keeps no order guarantee on every backend.
        chunk_ids = conn.execute(
            insert(CHUNKS).returning(CHUNKS.c.id, CHUNKS.c.position),
            [
                {
                    "item_id": new.item.id,
                    "position": chunk.position,
                    "start": chunk.start,
                    "heading": new.item.title,
                    "body": chunk.text,
                }
                for chunk in new.chunks
            ],
        ).all()
        by_position = {row.position: row.id for row in chunk_ids}
        model = new.item.embedding_model
        vectors.extend(
            {
                "chunk_id": by_position[chunk.position],
                "item_id": new.item.id,
                "model": model,
                "dim": new.dim,
                "vector": chunk.vector,
            }
            for chunk in new.chunks
            if chunk.vector is not None and model is not None
        )
    if vectors:
        conn.execute(insert(VECTORS), vectors)


def delete_items(tx: WriteTx, item_ids: Sequence[str]) -> int:
    """Delete items from every index (vectors, tags, chunks and so the keyword index); returns how many."""
    if not item_ids:
        return 0
    ids = list(item_ids)
    conn = tx.conn
    _bump(tx, deleted=len(ids))
    conn.execute(delete(VECTORS).where(VECTORS.c.item_id.in_(ids)))
    conn.execute(delete(TAGS).where(TAGS.c.item_id.in_(ids)))
    conn.execute(delete(CHUNKS).where(CHUNKS.c.item_id.in_(ids)))
    return int(conn.execute(delete(ITEMS).where(ITEMS.c.id.in_(ids))).rowcount)


def delete_task_items(tx: WriteTx, task_id: str) -> int:
    """Delete the items made from a task's report and findings (before remembering them again)."""
    # Lock the counter row before reading: two ingests of one task then run one after the other.
    _bump(tx)
    rows = tx.conn.execute(
        select(ITEMS.c.id).where(ITEMS.c.task_id == task_id, ITEMS.c.source.in_(("task", "finding")))
    )
    return delete_items(tx, [row.id for row in rows])


def get_item(conn: Connection, item_id: str, *, with_text: bool = False) -> MemoryItem | None:
    """An item by id (with its text reassembled from its chunks when asked)."""
    row = conn.execute(select(ITEMS).where(ITEMS.c.id == item_id)).one_or_none()
    if row is None:
        return None
    text = None
    if with_text:
        chunks = conn.execute(
            select(CHUNKS.c.start, CHUNKS.c.body)
            .where(CHUNKS.c.item_id == item_id)
            .order_by(CHUNKS.c.position)
        )
        text = ""
        for chunk in chunks:
            text += chunk.body[len(text) - chunk.start :]
    return _item(row, text)


def read_items(conn: Connection, item_ids: Sequence[str]) -> dict[str, MemoryItem]:
    """Items by id (those that exist)."""
    if not item_ids:
        return {}
    rows = conn.execute(select(ITEMS).where(ITEMS.c.id.in_(list(set(item_ids)))))
    return {row.id: _item(row) for row in rows}


def read_chunks(conn: Connection, chunk_ids: Sequence[int]) -> dict[int, StoredChunk]:
    """Chunks by id (those that exist)."""
    if not chunk_ids:
        return {}
    rows = conn.execute(
        select(CHUNKS.c.id, CHUNKS.c.item_id, CHUNKS.c.position, CHUNKS.c.start, CHUNKS.c.body).where(
            CHUNKS.c.id.in_(list(set(chunk_ids)))
        )
    )
    return {
        row.id: StoredChunk(
            id=row.id, item_id=row.item_id, position=row.position, start=row.start, body=row.body
        )
        for row in rows
    }


def filter_item_ids(conn: Connection, item_ids: Sequence[str], where: ItemFilter) -> set[str]:
    """The subset of `item_ids` that `where` lets through."""
    if not item_ids:
        return set()
    statement = select(ITEMS.c.id).where(ITEMS.c.id.in_(list(set(item_ids))), *where.clauses())
    return {row.id for row in conn.execute(statement)}


def tagged_item_ids(conn: Connection, tags: Sequence[str]) -> set[str]:
    """Ids of the items that have every tag in `tags`."""
    return {row.item_id for row in conn.execute(items_with_tags(tags))}


def has_visible_items(conn: Connection, viewer: str | None) -> bool:
    """Whether `viewer` can see at least one item (None: whether there is any)."""
    statement = select(ITEMS.c.id).where(*ItemFilter(viewer=viewer).clauses()).limit(1)
    return conn.execute(statement).first() is not None


def list_items(
    conn: Connection,
    *,
    owner_id: str | None,
    tags: Sequence[str] = (),
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[MemoryItem], str | None]:
    """Items owned by `owner_id` (every item for None), newest first, keyset-paginated."""
    statement = select(ITEMS)
    if owner_id is not None:
        statement = statement.where(ITEMS.c.owner_id == owner_id)
    if tags:
        statement = statement.where(ITEMS.c.id.in_(items_with_tags(tags)))
    if cursor:
        created_at, item_id = decode_cursor(cursor)
        statement = statement.where(
            or_(
                ITEMS.c.created_at < created_at,
                and_(ITEMS.c.created_at == created_at, ITEMS.c.id < item_id),
            )
        )
    rows = list(
        conn.execute(statement.order_by(ITEMS.c.created_at.desc(), ITEMS.c.id.desc()).limit(limit + 1))
    )
    items = [_item(row) for row in rows[:limit]]
    next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if len(rows) > limit else None
    return items, next_cursor


def read_counters(conn: Connection) -> tuple[int, int]:
    """How many items were ever inserted and deleted (vector caches compare these)."""
    row = conn.execute(select(COUNTERS.c.inserted, COUNTERS.c.deleted).where(COUNTERS.c.id == 1)).one()
    return int(row.inserted), int(row.deleted)


_VECTOR_ROWS = (
    select(
        VECTORS.c.chunk_id,
        VECTORS.c.item_id,
        VECTORS.c.vector,
        ITEMS.c.owner_id,
        ITEMS.c.shared,
        ITEMS.c.source,
    )
    .join(ITEMS, ITEMS.c.id == VECTORS.c.item_id)
    .where(
        VECTORS.c.model == bindparam("model"),
        VECTORS.c.dim == bindparam("dim"),
        VECTORS.c.chunk_id > bindparam("after"),
    )
    .order_by(VECTORS.c.chunk_id)
)


def read_vectors(conn: Connection, *, model: str, dim: int, after: int = 0) -> list[Any]:
    """Vectors of `model` with chunk ids above `after`, with their item's owner, sharing and source."""
    return list(conn.execute(_VECTOR_ROWS, {"model": model, "dim": dim, "after": after}))


def read_vector_ids(conn: Connection, *, model: str) -> list[int]:
    """Chunk ids that have a vector of `model`."""
    return [row.chunk_id for row in conn.execute(select(VECTORS.c.chunk_id).where(VECTORS.c.model == model))]


def memory_stats(conn: Connection) -> MemoryStats:
    """How many items, chunks and vectors are stored, and the bytes of text."""
    items, size = conn.execute(select(func.count(), func.coalesce(func.sum(ITEMS.c.size_bytes), 0))).one()
    chunks = conn.execute(select(func.count()).select_from(CHUNKS)).scalar_one()
    vectors = conn.execute(select(func.count()).select_from(VECTORS)).scalar_one()
    return MemoryStats(items=int(items), chunks=int(chunks), vectors=int(vectors), text_bytes=int(size))
