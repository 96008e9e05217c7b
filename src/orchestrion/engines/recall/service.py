"""`MemoryService`: add, search (keyword + vector, fused by reciprocal rank), read and delete memory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy import Connection

from orchestrion.engines.recall.embeddings import Embedder
from orchestrion.engines.recall.fusion import reciprocal_rank_fusion
from orchestrion.engines.recall.hits import SEARCH_SCOPES, BackendRanking, MemoryHit, build_hits
from orchestrion.engines.recall.ingest import Document, task_documents
from orchestrion.engines.recall.prepare import check_document, new_items, normalise_tags, passages_of
from orchestrion.engines.recall.query import query_terms
from orchestrion.engines.recall.vectors import VectorIndex
from orchestrion.exceptions import NotFoundError, PermissionDeniedError, UnknownChoiceError, ValidationError
from orchestrion.store import memory as memory_store
from orchestrion.store import runs as run_store
from orchestrion.store import tasks as task_store
from orchestrion.store.database import Database, WriteTx
from orchestrion.store.memory import (
    MEMORY_SOURCES,
    ItemFilter,
    MemoryItem,
    MemoryStats,
    NewMemoryItem,
    StoredChunk,
)
from orchestrion.store.memory_search import ChunkMatch, KeywordQuery, common_terms, keyword_search

logger = logging.getLogger(__name__)

MAX_K = 100
MIN_SIMILARITY = 0.2
"""Searches leave out items only the vector backend found, with a cosine similarity below this: the
nearest vectors of an unrelated query are noise (all-MiniLM-L6-v2 puts unrelated texts near 0)."""
COMMON_FRACTION = 0.02
COMMON_FLOOR = 200
"""A word in more than max(COMMON_FLOOR, COMMON_FRACTION x chunks) chunks is common (see
`_keyword_matches`)."""
RELEVANT_MIN_SIMILARITY = 0.3
"""The same floor for agent context, higher: a wrong memory in a prompt costs more than a missing one."""


class MemoryService:
    """The recall engine's memory: items, their indexes, and hybrid search over them.

    Args:
        db: The database.
        embedder: Computes vectors (None: keyword search only).
        vector_note: Why there is no embedder (shown by searches), when there is none.
        max_item_bytes: Largest item text accepted, in UTF-8 bytes (task reports are cut to it).
        ignore_task_types: Task types whose results `ingest_task` skips (memory queries themselves).
    """

    def __init__(
        self,
        *,
        db: Database,
        embedder: Embedder | None = None,
        vector_note: str | None = None,
        max_item_bytes: int = 1024 * 1024,
        ignore_task_types: frozenset[str] = frozenset(),
    ) -> None:
        self._db = db
        self._embedder = embedder
        self._vector_note = vector_note if embedder is None else None
        self._vectors = VectorIndex(db, model=embedder.name) if embedder is not None else None
        self.max_item_bytes = max_item_bytes
        self._ignore_task_types = ignore_task_types

    @property
    def embedder(self) -> Embedder | None:
        """The embedder, for other engines to reuse (None when vectors are unavailable)."""
        return self._embedder

    @property
    def backends(self) -> tuple[str, ...]:
        """The search backends in use: ``keyword``, and ``vector`` with an embedder."""
        return ("keyword", "vector") if self._embedder is not None else ("keyword",)

    @property
    def vector_note(self) -> str | None:
        """Why search is keyword-only (None when vectors are used)."""
        return self._vector_note

    async def add(
        self,
        *,
        owner_id: str,
        title: str,
        text: str,
        tags: Sequence[str] = (),
        shared: bool = False,
        source: str = "document",
        task_id: str | None = None,
    ) -> MemoryItem:
        """Remember one text. Raises ValidationError (empty text, bad tags) or PayloadTooLargeError."""
        document = Document(title=title, text=text, tags=tags, shared=shared, source=source, task_id=task_id)
        return (await self.add_documents(owner_id=owner_id, documents=[document]))[0]

    async def add_documents(self, *, owner_id: str, documents: Sequence[Document]) -> list[MemoryItem]:
        """Remember several texts in one transaction (all or none)."""
        prepared = await self._prepare(owner_id, documents, truncate=False)
        await self._db.write(lambda tx: memory_store.insert_items(tx, prepared))
        return [new.item for new in prepared]

    async def search(
        self,
        *,
        owner_id: str,
        query: str,
        k: int = 10,
        tags: Sequence[str] = (),
        scope: str = "mine",
        sources: Sequence[str] = (),
        admin: bool = False,
    ) -> list[MemoryHit]:
        """The `k` items most relevant to `query` that the caller may see, best first.

        `scope` ``mine`` searches the caller's items and shared ones; ``all`` (admins only) every
        item. Items must have every tag in `tags`, and come from one of `sources` when given.
        """
        if scope not in SEARCH_SCOPES:
            raise UnknownChoiceError(field="scope", value=scope, choices=SEARCH_SCOPES)
        if scope == "all" and not admin:
            raise PermissionDeniedError("scope 'all' needs the admin role", details={"field": "scope"})
        if not 1 <= k <= MAX_K:
            raise ValidationError(f"k must be between 1 and {MAX_K}", field="k")
        if not query.strip():
            raise ValidationError("the query is empty", field="query")
        terms = query_terms(query)
        if not terms:
            raise ValidationError("the query has no words to search for", field="query")
        for source in sources:
            if source not in MEMORY_SOURCES:
                raise UnknownChoiceError(field="sources", value=source, choices=MEMORY_SOURCES)
        where = ItemFilter(
            viewer=None if scope == "all" else owner_id, tags=normalise_tags(tags), sources=tuple(sources)
        )
        return await self._hybrid(query, terms, where=where, k=k, min_similarity=MIN_SIMILARITY)

    async def relevant(
        self, *, owner_id: str, text: str, k: int, exclude_task_id: str | None = None
    ) -> list[MemoryHit]:
        """The `k` memories most relevant to `text` (an agent's task) owned by or shared with `owner_id`.

        Empty when nothing is visible to the owner (checked first, so no model is loaded for
        nothing), and never items of `exclude_task_id` (the task asking).
        """
        terms = query_terms(text)
        if k <= 0 or not owner_id or not terms:
            return []
        if not await self._db.read(lambda conn: memory_store.has_visible_items(conn, owner_id)):
            return []
        hits = await self._hybrid(
            text, terms, where=ItemFilter(viewer=owner_id), k=k + 8, min_similarity=RELEVANT_MIN_SIMILARITY
        )
        return [h for h in hits if exclude_task_id is None or h.task_id != exclude_task_id][:k]

    async def get(self, *, owner_id: str, item_id: str, admin: bool = False) -> MemoryItem:
        """An item with its text; NotFoundError unless the caller owns it, it is shared, or an admin asks."""
        item = await self._db.read(lambda conn: memory_store.get_item(conn, item_id, with_text=True))
        if item is None or not (admin or item.shared or item.owner_id == owner_id):
            raise NotFoundError(f"no memory item {item_id}", details={"id": item_id})
        return item

    async def list_items(
        self,
        *,
        owner_id: str,
        scope: str = "mine",
        admin: bool = False,
        tags: Sequence[str] = (),
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[MemoryItem], str | None]:
        """The caller's items (every item for scope ``all``, admins only), newest first, and a cursor."""
        if scope not in SEARCH_SCOPES:
            raise UnknownChoiceError(field="scope", value=scope, choices=SEARCH_SCOPES)
        if scope == "all" and not admin:
            raise PermissionDeniedError("scope 'all' needs the admin role", details={"field": "scope"})
        owner = None if scope == "all" else owner_id
        wanted = normalise_tags(tags)
        return await self._db.read(
            lambda conn: memory_store.list_items(
                conn, owner_id=owner, tags=wanted, limit=limit, cursor=cursor
            )
        )

    async def delete(self, *, owner_id: str, item_id: str, admin: bool = False) -> None:
        """Delete an item from every index. NotFoundError for items the caller cannot see;
        PermissionDeniedError for a shared item of someone else."""
        item = await self._db.read(lambda conn: memory_store.get_item(conn, item_id))
        if item is None or not (admin or item.shared or item.owner_id == owner_id):
            raise NotFoundError(f"no memory item {item_id}", details={"id": item_id})
        if not admin and item.owner_id != owner_id:
            raise PermissionDeniedError("only its owner or an admin may delete a shared item")
        deleted = await self._db.write(lambda tx: memory_store.delete_items(tx, [item_id]))
        if not deleted:
            raise NotFoundError(f"no memory item {item_id}", details={"id": item_id})

    async def ingest_task(self, task_id: str) -> int:
        """Remember a finished task's report and findings, replacing what earlier runs left.

        Returns the number of items written (0 for a task without a result, or of an ignored type).
        """
        task = await self._db.read(lambda conn: task_store.get_task(conn, task_id))
        if task is None:
            raise NotFoundError(f"no task {task_id}", details={"id": task_id})
        if task.task_type in self._ignore_task_types:
            return 0
        result = await self._db.read(lambda conn: run_store.read_result(conn, task_id))
        if result is None:
            return 0
        runs = await self._db.read(lambda conn: run_store.read_runs(conn, task_id))
        evidence = {e.id: e for run in runs for e in run.evidence}
        documents = task_documents(task, result, evidence)
        prepared = await self._prepare(task.owner_id, documents, truncate=True)

        def replace(tx: WriteTx) -> None:
            memory_store.delete_task_items(tx, task_id)
            memory_store.insert_items(tx, prepared)

        await self._db.write(replace)
        return len(prepared)

    async def stats(self) -> MemoryStats:
        """How many items, chunks and vectors are stored."""
        return await self._db.read(memory_store.memory_stats)

    async def aclose(self) -> None:
        """Stop the embedder's thread."""
        if self._embedder is not None:
            await self._embedder.aclose()

    async def _hybrid(
        self,
        query: str,
        terms: Sequence[str],
        *,
        where: ItemFilter,
        k: int,
        min_similarity: float,
    ) -> list[MemoryHit]:
        pool = max(3 * k, 30)
        rankings = {"keyword": BackendRanking(name="keyword")}
        # The keyword query (a database thread) and the query's embedding (the model's) overlap.
        matches, vector = await asyncio.gather(
            self._db.read(lambda conn: _keyword_matches(conn, terms, where, pool, k)),
            self._vector_ranking(query, where, pool),
        )
        for match in matches:
            rankings["keyword"].add(match.item_id, match.chunk_id, match.score)
        if vector is not None:
            rankings["vector"] = vector
        fused = reciprocal_rank_fusion({name: r.items for name, r in rankings.items()})
        if vector is not None:
            fused = [
                f for f in fused if "keyword" in f.ranks or vector.score_of.get(f.key, -1.0) >= min_similarity
            ]
        fused = fused[:k]
        item_ids = [f.key for f in fused]
        chunk_ids = [rankings[name].chunk_of[f.key] for f in fused for name in f.ranks if name in rankings]

        def read(conn: Connection) -> tuple[dict[str, MemoryItem], dict[int, StoredChunk]]:
            return memory_store.read_items(conn, item_ids), memory_store.read_chunks(conn, chunk_ids)

        items, chunks = await self._db.read(read)
        return build_hits(fused, rankings, items=items, chunks=chunks, terms=terms)

    async def _vector_ranking(self, query: str, where: ItemFilter, pool: int) -> BackendRanking | None:
        if self._embedder is None or self._vectors is None:
            return None
        try:
            vector = (await self._embedder.embed_matrix([query]))[0]
        except Exception as exc:  # a broken model install must not take keyword search down
            self._disable(exc)
            return None
        ranking = BackendRanking(name="vector")
        for match in await self._vectors.search(vector, where=where, limit=pool):
            ranking.add(match.item_id, match.chunk_id, match.score)
        return ranking

    def _disable(self, exc: Exception) -> None:
        logger.error("embedding failed, memory search is keyword-only from now on: %s", exc)
        self._vector_note = f"the embedding model failed: {type(exc).__name__}: {exc}"
        self._embedder = None
        self._vectors = None

    async def _prepare(
        self, owner_id: str, documents: Sequence[Document], *, truncate: bool
    ) -> list[NewMemoryItem]:
        """Validate, chunk and embed documents into items ready to insert (one embedding call)."""
        many = len(documents) > 1
        checked = [
            check_document(
                d, max_bytes=self.max_item_bytes, field=f"documents[{i}]." if many else "", truncate=truncate
            )
            for i, d in enumerate(documents)
        ]
        embedder = self._embedder
        vectors = None
        if embedder is not None:
            texts = [text for parts in passages_of(checked) for text in parts]
            try:
                vectors = await embedder.embed_matrix(texts)
            except Exception as exc:
                self._disable(exc)
        model = embedder.name if embedder is not None and vectors is not None else None
        return new_items(owner_id, checked, vectors=vectors, model=model)


def _keyword_matches(
    conn: Connection, terms: Sequence[str], where: ItemFilter, pool: int, k: int
) -> list[ChunkMatch]:
    """Chunks with every term; then, while fewer than `k` items matched, with all terms but one;
    then with any term. Each level is ranked on its own, after the previous one.

    The relaxed levels rank every chunk they match, which is slow when a query mixes common words
    with a rare one (a host name): they then keep to chunks holding one of the rarer terms, and only
    if that finds too little do they run unnarrowed.
    """
    matches: list[ChunkMatch] = []
    seen: set[int] = set()

    def enough() -> bool:
        return len({m.item_id for m in matches}) >= k

    def add(query: KeywordQuery) -> None:
        more = keyword_search(conn, query, where=where, limit=pool)
        matches.extend(m for m in more if m.chunk_id not in seen)
        seen.update(m.chunk_id for m in more)

    add(KeywordQuery(clauses=[list(terms)]))
    if enough() or len(terms) == 1:
        return matches
    common = common_terms(conn, terms, fraction=COMMON_FRACTION, floor=COMMON_FLOOR)
    rare = [t for t in terms if t not in common]
    narrowed = rare if common and rare else []
    for clauses in relaxed_levels(terms):
        if not enough():
            add(KeywordQuery(clauses=clauses, required=narrowed))
    if narrowed and not enough():
        add(KeywordQuery(clauses=[[t] for t in terms]))
    return matches


def relaxed_levels(terms: Sequence[str]) -> list[list[list[str]]]:
    """After every term: all terms but one (for 3 to 6 terms), then any term.

    "All but one" finds a chunk missing one word without ranking every chunk that has any word.
    """
    levels = []
    if 3 <= len(terms) <= 6:
        levels.append([[t for t in terms if t != left_out] for left_out in terms])
    levels.append([[t] for t in terms])
    return levels
