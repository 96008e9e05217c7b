"""Vector search by brute force: every stored vector of the model in one float32 matrix, in memory.

pgvector is not packaged for this project's PostgreSQL, and an exact dot product over 100,000
384-dimension vectors takes a few milliseconds with NumPy, so the vectors are stored as blobs on
both backends and searched here. The matrix is a cache of the `memory_vectors` table: before each
search it compares the store's insert and delete counters with the ones it was built at, loads the
vectors added since (chunk ids only grow, and memory writers are serialised on the counter row,
so ids become visible in order), and drops deleted ones when the delete counter moved. Processes
sharing a PostgreSQL database thus see each other's writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from orchestrion.engines.recall.embeddings import Matrix, from_blobs
from orchestrion.store import memory as memory_store
from orchestrion.store.database import Database
from orchestrion.store.memory import MEMORY_SOURCES, ItemFilter


@dataclass(frozen=True, kw_only=True)
class VectorMatch:
    """A chunk near the query, by cosine similarity (-1..1, higher is nearer)."""

    chunk_id: int
    item_id: str
    score: float


@dataclass(frozen=True, kw_only=True)
class _Snapshot:
    counters: tuple[int, int]
    dim: int
    chunk_ids: npt.NDArray[np.int64]
    item_ids: list[str]
    owners: npt.NDArray[np.int32]
    shared: npt.NDArray[np.bool_]
    sources: npt.NDArray[np.int8]
    matrix: Matrix
    owner_codes: dict[str, int] = field(default_factory=dict)
    rows_of_item: dict[str, list[int]] = field(default_factory=dict)

    @property
    def max_chunk(self) -> int:
        return int(self.chunk_ids[-1]) if len(self.chunk_ids) else 0


def _empty(dim: int) -> _Snapshot:
    return _Snapshot(
        counters=(-1, -1),
        dim=dim,
        chunk_ids=np.zeros(0, dtype=np.int64),
        item_ids=[],
        owners=np.zeros(0, dtype=np.int32),
        shared=np.zeros(0, dtype=np.bool_),
        sources=np.zeros(0, dtype=np.int8),
        matrix=np.zeros((0, dim), dtype=np.float32),
    )


@dataclass(frozen=True, kw_only=True)
class _Changes:
    counters: tuple[int, int]
    keep: list[int] | None  # chunk ids still stored, when some were deleted
    rows: list[Any]


class VectorIndex:
    """The vectors of one embedding model, searchable with the store's item filters.

    Args:
        db: The database holding `memory_vectors`.
        model: The embedding model whose vectors are searched (others are ignored).
    """

    def __init__(self, db: Database, *, model: str) -> None:
        self._db = db
        self._model = model
        self._snapshot: _Snapshot | None = None
        self._lock = asyncio.Lock()

    @property
    def size(self) -> int:
        """Vectors in memory now."""
        return len(self._snapshot.chunk_ids) if self._snapshot is not None else 0

    async def search(self, query: Matrix, *, where: ItemFilter, limit: int) -> list[VectorMatch]:
        """The `limit` chunks nearest to `query` (a normalised vector) among the items `where` allows."""
        snapshot = await self._current(int(query.shape[-1]))
        if not len(snapshot.chunk_ids) or limit <= 0:
            return []
        allowed_rows: list[int] | None = None
        if where.tags:
            tags = where.tags
            allowed = await self._db.read(lambda conn: memory_store.tagged_item_ids(conn, tags))
            allowed_rows = [row for item in allowed for row in snapshot.rows_of_item.get(item, ())]
        return await asyncio.to_thread(_rank, snapshot, query, where, allowed_rows, limit)

    async def _current(self, dim: int) -> _Snapshot:
        counters = await self._db.read(memory_store.read_counters)
        snapshot = self._snapshot
        if snapshot is not None and snapshot.dim == dim and snapshot.counters == counters:
            return snapshot
        async with self._lock:
            snapshot = self._snapshot
            if snapshot is None or snapshot.dim != dim:
                snapshot = _empty(dim)
            if snapshot.counters == counters:
                return snapshot
            base = snapshot
            changes = await self._db.read(lambda conn: self._changes(conn, base))
            snapshot = await asyncio.to_thread(_apply, base, changes)
            self._snapshot = snapshot
            return snapshot

    def _changes(self, conn: Connection, snapshot: _Snapshot) -> _Changes:
        counters = memory_store.read_counters(conn)
        keep = None
        if snapshot.counters[1] != counters[1] and len(snapshot.chunk_ids):
            keep = memory_store.read_vector_ids(conn, model=self._model)
        rows = memory_store.read_vectors(conn, model=self._model, dim=snapshot.dim, after=snapshot.max_chunk)
        return _Changes(counters=counters, keep=keep, rows=rows)


def _apply(snapshot: _Snapshot, changes: _Changes) -> _Snapshot:
    """A new snapshot: `snapshot` without deleted chunks, plus the new rows."""
    owner_codes = dict(snapshot.owner_codes)
    chunk_ids, item_ids = snapshot.chunk_ids, snapshot.item_ids
    owners, shared, sources, matrix = snapshot.owners, snapshot.shared, snapshot.sources, snapshot.matrix
    if changes.keep is not None:
        mask = np.isin(chunk_ids, np.asarray(changes.keep, dtype=np.int64))
        chunk_ids, owners, shared, sources, matrix = (
            chunk_ids[mask],
            owners[mask],
            shared[mask],
            sources[mask],
            matrix[mask],
        )
        item_ids = [item for item, kept in zip(item_ids, mask.tolist(), strict=True) if kept]
    rows = changes.rows
    if rows:
        for row in rows:
            owner_codes.setdefault(row.owner_id, len(owner_codes))
        chunk_ids = np.concatenate([chunk_ids, np.asarray([r.chunk_id for r in rows], dtype=np.int64)])
        item_ids = item_ids + [r.item_id for r in rows]
        owners = np.concatenate([owners, np.asarray([owner_codes[r.owner_id] for r in rows], dtype=np.int32)])
        shared = np.concatenate([shared, np.asarray([bool(r.shared) for r in rows], dtype=np.bool_)])
        codes = [MEMORY_SOURCES.index(r.source) if r.source in MEMORY_SOURCES else -1 for r in rows]
        sources = np.concatenate([sources, np.asarray(codes, dtype=np.int8)])
        matrix = np.concatenate([matrix, from_blobs([r.vector for r in rows], snapshot.dim)])
    rows_of_item: dict[str, list[int]] = {}
    for index, item in enumerate(item_ids):
        rows_of_item.setdefault(item, []).append(index)
    return _Snapshot(
        counters=changes.counters,
        dim=snapshot.dim,
        chunk_ids=chunk_ids,
        item_ids=item_ids,
        owners=owners,
        shared=shared,
        sources=sources,
        matrix=np.ascontiguousarray(matrix, dtype=np.float32),
        owner_codes=owner_codes,
        rows_of_item=rows_of_item,
    )


def _rank(
    snapshot: _Snapshot, query: Matrix, where: ItemFilter, allowed_rows: Sequence[int] | None, limit: int
) -> list[VectorMatch]:
    scores = snapshot.matrix @ np.asarray(query, dtype=np.float32).reshape(-1)
    mask = np.ones(len(scores), dtype=np.bool_)
    if where.viewer is not None:
        code = snapshot.owner_codes.get(where.viewer, -1)
        mask &= (snapshot.owners == code) | snapshot.shared
    if where.sources:
        codes = [MEMORY_SOURCES.index(s) for s in where.sources if s in MEMORY_SOURCES]
        mask &= np.isin(snapshot.sources, np.asarray(codes, dtype=np.int8))
    if allowed_rows is not None:
        by_tags = np.zeros(len(scores), dtype=np.bool_)
        by_tags[np.asarray(allowed_rows, dtype=np.int64)] = True
        mask &= by_tags
    candidates = np.flatnonzero(mask)
    if not len(candidates):
        return []
    chosen = scores[candidates]
    if len(candidates) > limit:
        top = np.argpartition(-chosen, limit - 1)[:limit]
        candidates, chosen = candidates[top], chosen[top]
    order = np.argsort(-chosen, kind="stable")
    return [
        VectorMatch(chunk_id=int(snapshot.chunk_ids[i]), item_id=snapshot.item_ids[i], score=float(chosen[j]))
        for j, i in zip(order.tolist(), candidates[order].tolist(), strict=True)
    ]
