"""Search hits: the item, the passage that matched, and how each backend ranked it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from orchestrion.engines.recall.fusion import Fused
from orchestrion.engines.recall.query import snippet
from orchestrion.store.memory import MemoryItem, StoredChunk

SearchScope = Literal["mine", "all"]
SEARCH_SCOPES: tuple[SearchScope, ...] = ("mine", "all")
BACKENDS = ("keyword", "vector")


@dataclass(frozen=True, kw_only=True)
class MemoryHit:
    """One item found by a search.

    Attributes:
        item_id: The item.
        chunk_id: The passage that matched best (keyword match first, else nearest vector).
        chunk_index: That passage's position in the item (0 for the first).
        title: The item's title.
        tags: The item's tags.
        owner_id: Who owns it.
        shared: Whether it is shared.
        source: ``document``, ``task`` or ``finding``.
        task_id: The task it came from, if any.
        created_at: When it was added.
        snippet: Text of the passage around the query's words.
        score: The fused score: the sum of 1 / (60 + rank) over the backends that found it.
        matched_by: The backends that found it (``keyword``, ``vector``).
        ranks: Its 1-based rank per backend (by item).
        scores: Its backend score per backend: BM25 (SQLite, higher is better) or `ts_rank_cd`
            (PostgreSQL) for keyword, cosine similarity for vector.
    """

    item_id: str
    chunk_id: int
    chunk_index: int
    title: str
    tags: tuple[str, ...]
    owner_id: str
    shared: bool
    source: str
    task_id: str | None
    created_at: datetime
    snippet: str
    score: float
    matched_by: tuple[str, ...]
    ranks: Mapping[str, int] = field(default_factory=dict)
    scores: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class BackendRanking:
    """One backend's ranking of items: best chunk and score per item, best item first."""

    name: str
    items: list[str] = field(default_factory=list)
    chunk_of: dict[str, int] = field(default_factory=dict)
    score_of: dict[str, float] = field(default_factory=dict)

    def add(self, item_id: str, chunk_id: int, score: float) -> None:
        """Record a chunk match; an item keeps its first (best) chunk."""
        if item_id not in self.chunk_of:
            self.items.append(item_id)
            self.chunk_of[item_id] = chunk_id
            self.score_of[item_id] = score


def build_hits(
    fused: Sequence[Fused],
    rankings: Mapping[str, BackendRanking],
    *,
    items: Mapping[str, MemoryItem],
    chunks: Mapping[int, StoredChunk],
    terms: Sequence[str],
) -> list[MemoryHit]:
    """Hits for fused results whose item and chunk still exist (a delete may have raced the search)."""
    hits: list[MemoryHit] = []
    for result in fused:
        item = items.get(result.key)
        chunk_id = best_chunk(result, rankings)
        chunk = chunks.get(chunk_id) if chunk_id is not None else None
        if item is None or chunk is None:
            continue
        names = tuple(name for name in BACKENDS if name in result.ranks)
        hits.append(
            MemoryHit(
                item_id=item.id,
                chunk_id=chunk.id,
                chunk_index=chunk.position,
                title=item.title,
                tags=item.tags,
                owner_id=item.owner_id,
                shared=item.shared,
                source=item.source,
                task_id=item.task_id,
                created_at=item.created_at,
                snippet=snippet(chunk.body, terms),
                score=round(result.score, 6),
                matched_by=names,
                ranks=dict(result.ranks),
                scores={name: round(rankings[name].score_of[item.id], 6) for name in names},
            )
        )
    return hits


def best_chunk(result: Fused, rankings: Mapping[str, BackendRanking]) -> int | None:
    """The chunk to show for a fused item: the keyword backend's if it found it, else the first one's."""
    for name in BACKENDS:
        if name in result.ranks and name in rankings:
            return rankings[name].chunk_of[result.key]
    return None
