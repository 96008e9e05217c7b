"""Turning documents into items ready to store: validated, chunked and embedded."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

from orchestrion.domain.tasks import utcnow
from orchestrion.engines.recall.chunking import split_passages
from orchestrion.engines.recall.embeddings import Matrix, to_blob
from orchestrion.engines.recall.ingest import Document
from orchestrion.exceptions import PayloadTooLargeError, UnknownChoiceError, ValidationError
from orchestrion.store.memory import MEMORY_SOURCES, MemoryItem, NewChunk, NewMemoryItem

MAX_TAGS = 32
MAX_TAG_CHARS = 64
MAX_TITLE_CHARS = 200


def normalise_tags(tags: Sequence[str], *, field: str = "tags") -> tuple[str, ...]:
    """Tags stripped, lower-cased, deduplicated and sorted; ValidationError on empty or long ones."""
    cleaned = sorted({" ".join(tag.split()).lower() for tag in tags})
    if len(cleaned) > MAX_TAGS:
        raise ValidationError(f"at most {MAX_TAGS} tags", field=field)
    for tag in cleaned:
        if not tag or len(tag) > MAX_TAG_CHARS:
            raise ValidationError(f"a tag must have 1 to {MAX_TAG_CHARS} characters", field=field)
    return tuple(cleaned)


def check_document(
    document: Document, *, max_bytes: int, field: str = "", truncate: bool = False
) -> Document:
    """The document with its title and tags normalised, or an error naming the field at fault.

    Raises:
        ValidationError: Empty text, bad tags, or an unknown source.
        PayloadTooLargeError: Text over `max_bytes` in UTF-8 (unless `truncate` cuts it there).
    """
    if document.source not in MEMORY_SOURCES:
        raise UnknownChoiceError(field=f"{field}source", value=document.source, choices=MEMORY_SOURCES)
    text = document.text
    if not text.strip():
        raise ValidationError("the text is empty", field=f"{field}text")
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        if not truncate:
            raise PayloadTooLargeError(
                f"{field}text is {size} bytes; a memory item may have at most {max_bytes}",
                details={"field": f"{field}text", "limit": max_bytes, "size": size},
            )
        text = text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")
    return Document(
        title=" ".join(document.title.split())[:MAX_TITLE_CHARS] or _default_title(text),
        text=text,
        tags=normalise_tags(document.tags, field=f"{field}tags"),
        shared=document.shared,
        source=document.source,
        task_id=document.task_id,
    )


def passages_of(documents: Sequence[Document]) -> list[list[str]]:
    """The passages each document is split into."""
    return [[p.text for p in split_passages(d.text)] for d in documents]


def new_items(
    owner_id: str,
    documents: Sequence[Document],
    *,
    vectors: Matrix | None,
    model: str | None,
) -> list[NewMemoryItem]:
    """Items for checked `documents`, with their passages' vectors (rows in passage order) if any."""
    now = utcnow()
    prepared: list[NewMemoryItem] = []
    offset = 0
    embedded = vectors is not None and model is not None
    for document in documents:
        parts = split_passages(document.text)
        chunks = [
            NewChunk(
                position=i,
                start=p.start,
                text=p.text,
                vector=to_blob(vectors[offset + i]) if vectors is not None and embedded else None,
            )
            for i, p in enumerate(parts)
        ]
        offset += len(parts)
        data = document.text.encode("utf-8")
        item = MemoryItem(
            id=str(uuid.uuid4()),
            owner_id=owner_id,
            shared=document.shared,
            source=document.source,
            task_id=document.task_id,
            title=document.title,
            tags=tuple(document.tags),
            size_bytes=len(data),
            content_hash=hashlib.sha256(data).hexdigest(),
            chunk_count=len(chunks),
            embedding_model=model if embedded else None,
            created_at=now,
        )
        dim = int(vectors.shape[1]) if vectors is not None and embedded else 0
        prepared.append(NewMemoryItem(item=item, chunks=chunks, dim=dim))
    return prepared


def _default_title(text: str) -> str:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return " ".join(first.split())[:80] or "untitled"
