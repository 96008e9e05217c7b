"""The recall engine: memory items from documents and finished tasks, searched by keyword and meaning.

`MemoryService` (service.py) is the entry point. Keyword search runs in the store (SQLite FTS5 BM25,
PostgreSQL full text); vector search (embeddings.py, vectors.py) runs when the optional extra
``embeddings`` is installed; the two rankings are fused by reciprocal rank (fusion.py).
"""

from __future__ import annotations

from orchestrion.engines.recall.embeddings import Embedder, EmbeddingsMode, build_embedder
from orchestrion.engines.recall.hits import SEARCH_SCOPES, MemoryHit, SearchScope
from orchestrion.engines.recall.ingest import Document
from orchestrion.engines.recall.service import MemoryService
from orchestrion.store.memory import MEMORY_SOURCES, MemoryItem, MemoryStats

__all__ = [
    "MEMORY_SOURCES",
    "SEARCH_SCOPES",
    "Document",
    "Embedder",
    "EmbeddingsMode",
    "MemoryHit",
    "MemoryItem",
    "MemoryService",
    "MemoryStats",
    "SearchScope",
    "build_embedder",
]
