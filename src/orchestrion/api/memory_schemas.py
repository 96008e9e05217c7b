"""API models of /api/v1/memory (docs/recall.md): `MemoryCreate` in, `MemoryItemPublic` and hits out."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrion.engines.recall import MemoryHit, MemoryItem


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MemoryFileInput(_In):
    """A text document uploaded as a file: UTF-8 text, or base64 of UTF-8 bytes."""

    name: str = Field(min_length=1, max_length=512)
    content: str
    encoding: Literal["utf-8", "base64"] = "utf-8"


class MemoryCreate(_In):
    """Documents to remember: `text` (one item), `files` (one item each), or both.

    `title` names the `text` item (default: its first line); files are titled by their names.
    """

    title: str | None = Field(default=None, max_length=200)
    text: str | None = None
    files: list[MemoryFileInput] = Field(default_factory=list, max_length=100)
    tags: list[str] = Field(default_factory=list, max_length=32)
    shared: bool = Field(default=False, description="Every user may find these items (not only the owner).")


class MemoryItemPublic(BaseModel):
    """A memory item (without its text)."""

    id: str
    owner_id: str
    title: str
    tags: list[str]
    source: str
    task_id: str | None
    shared: bool
    size_bytes: int
    content_hash: str
    chunks: int
    embedding_model: str | None
    created_at: datetime

    @classmethod
    def of(cls, item: MemoryItem) -> MemoryItemPublic:
        """From the engine's item."""
        return cls(
            id=item.id,
            owner_id=item.owner_id,
            title=item.title,
            tags=list(item.tags),
            source=item.source,
            task_id=item.task_id,
            shared=item.shared,
            size_bytes=item.size_bytes,
            content_hash=item.content_hash,
            chunks=item.chunk_count,
            embedding_model=item.embedding_model,
            created_at=item.created_at,
        )


class MemoryItemDetail(MemoryItemPublic):
    """A memory item with its text."""

    text: str


class MemoryItemsPublic(BaseModel):
    """A page of memory items, newest first."""

    data: list[MemoryItemPublic]
    next_cursor: str | None = None


class MemoryHitPublic(BaseModel):
    """One search hit: the item, its best passage, and how each backend ranked it."""

    item_id: str
    chunk_id: int
    chunk_index: int
    title: str
    tags: list[str]
    owner_id: str
    shared: bool
    source: str
    task_id: str | None
    created_at: datetime
    snippet: str
    score: float = Field(description="Reciprocal-rank fused score: the sum of 1 / (60 + rank).")
    matched_by: list[str]
    ranks: dict[str, int]
    scores: dict[str, float]

    @classmethod
    def of(cls, hit: MemoryHit) -> MemoryHitPublic:
        """From the engine's hit."""
        return cls(
            item_id=hit.item_id,
            chunk_id=hit.chunk_id,
            chunk_index=hit.chunk_index,
            title=hit.title,
            tags=list(hit.tags),
            owner_id=hit.owner_id,
            shared=hit.shared,
            source=hit.source,
            task_id=hit.task_id,
            created_at=hit.created_at,
            snippet=hit.snippet,
            score=hit.score,
            matched_by=list(hit.matched_by),
            ranks=dict(hit.ranks),
            scores=dict(hit.scores),
        )


class MemorySearchPublic(BaseModel):
    """Search results, with the backends that ranked them."""

    query: str
    k: int
    scope: str
    backends: list[str] = Field(description="`keyword`, and `vector` when embeddings are available.")
    vector_note: str | None = Field(default=None, description="Why the search was keyword-only, if it was.")
    data: list[MemoryHitPublic]
