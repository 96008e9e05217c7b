"""/api/v1/memory: add documents to memory, search it, list, read and delete items (docs/recall.md).

Everyone may search and read their own and shared items; adding and deleting need the operator
or admin role. Admins may search and list every item with `scope=all`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Query, Response

from orchestrion.api.deps import CallerDep, OperatorDep, RuntimeDep
from orchestrion.api.memory_schemas import (
    MemoryCreate,
    MemoryHitPublic,
    MemoryItemDetail,
    MemoryItemPublic,
    MemoryItemsPublic,
    MemorySearchPublic,
)
from orchestrion.engines.recall import Document, MemoryService
from orchestrion.exceptions import ConfigurationError, PayloadTooLargeError, ValidationError
from orchestrion.runtime import Runtime

router = APIRouter(prefix="/memory", tags=["memory"])

TagsQuery = Annotated[list[str], Query(description="Items must have every tag (`a,b` or repeated).")]
ScopeQuery = Annotated[str, Query(description="`mine`: own and shared items; `all`: every item (admins).")]


def memory_of(runtime: Runtime) -> MemoryService:
    """The runtime's memory (a runtime built without one cannot serve these routes)."""
    if runtime.memory is None:
        raise ConfigurationError("this server has no memory service")
    return runtime.memory


def _split_tags(values: list[str]) -> list[str]:
    """`tags=a,b` and `tags=a&tags=b` alike."""
    return [tag.strip() for value in values for tag in value.split(",") if tag.strip()]


def _file_text(name: str, content: str, encoding: str, *, field: str) -> str:
    """The text of an uploaded file; binaries (not UTF-8, or holding NUL bytes) are refused."""
    if encoding != "base64":
        return content
    try:
        data = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError(f"{field}: the content of {name!r} is not valid base64", field=field) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise ValidationError(
            f"{field}: {name!r} is a binary file; memory items are text (UTF-8) documents",
            field=field,
            details={"name": name},
        )
    return text


def _check_size(text: str, *, field: str, limit: int) -> None:
    size = len(text.encode("utf-8"))
    if size > limit:
        raise PayloadTooLargeError(
            f"{field} is {size} bytes; a memory item may have at most {limit} "
            "(ORCHESTRION_MEMORY_MAX_ITEM_BYTES)",
            details={"field": field, "limit": limit, "size": size},
        )


@router.post("", status_code=201, response_model=MemoryItemsPublic)
async def create_memory(body: MemoryCreate, caller: OperatorDep, runtime: RuntimeDep) -> MemoryItemsPublic:
    """Remember `text` and/or each of `files` as items owned by the caller (all or none)."""
    memory = memory_of(runtime)
    limit = memory.max_item_bytes
    documents: list[Document] = []
    if body.text is not None:
        _check_size(body.text, field="text", limit=limit)
        if not body.text.strip():
            raise ValidationError("text is empty", field="text")
        documents.append(Document(title=body.title or "", text=body.text, tags=body.tags, shared=body.shared))
    for index, upload in enumerate(body.files):
        field = f"files[{index}].content"
        text = _file_text(upload.name, upload.content, upload.encoding, field=field)
        _check_size(text, field=field, limit=limit)
        if not text.strip():
            raise ValidationError(f"{field}: {upload.name!r} is empty", field=field)
        documents.append(Document(title=upload.name, text=text, tags=body.tags, shared=body.shared))
    if not documents:
        raise ValidationError("give `text` or `files` to remember", field="text")
    items = await memory.add_documents(owner_id=caller.user_id, documents=documents)
    return MemoryItemsPublic(data=[MemoryItemPublic.of(item) for item in items])


@router.get("/search", response_model=MemorySearchPublic)
async def search_memory(
    caller: CallerDep,
    runtime: RuntimeDep,
    q: Annotated[str, Query(max_length=1000, description="What to look for.")],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    tags: Annotated[list[str], Query(description="Items must have every tag (`a,b` or repeated).")] = [],  # noqa: B006
    scope: Annotated[
        str, Query(description="`mine`: own and shared items; `all`: every item (admins).")
    ] = "mine",
) -> MemorySearchPublic:
    """The `k` items most relevant to `q`: keyword and vector rankings fused by reciprocal rank."""
    if not q.strip():
        raise ValidationError("q: the query is empty", field="q")
    memory = memory_of(runtime)
    try:
        hits = await memory.search(
            owner_id=caller.user_id,
            query=q,
            k=k,
            tags=_split_tags(tags),
            scope=scope,
            admin=caller.role == "admin",
        )
    except ValidationError as exc:
        if exc.field == "query":
            raise ValidationError(f"q: {exc.message}", field="q") from exc
        raise
    return MemorySearchPublic(
        query=q,
        k=k,
        scope=scope,
        backends=list(memory.backends),
        vector_note=memory.vector_note,
        data=[MemoryHitPublic.of(hit) for hit in hits],
    )


@router.get("", response_model=MemoryItemsPublic)
async def read_memory_items(
    caller: CallerDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    tags: TagsQuery = [],  # noqa: B006 - FastAPI copies defaults per request
    scope: ScopeQuery = "mine",
) -> MemoryItemsPublic:
    """The caller's items (every item with `scope=all`, admins only), newest first, cursor-paginated."""
    items, next_cursor = await memory_of(runtime).list_items(
        owner_id=caller.user_id,
        scope=scope,
        admin=caller.role == "admin",
        tags=_split_tags(tags),
        limit=limit,
        cursor=cursor,
    )
    return MemoryItemsPublic(data=[MemoryItemPublic.of(item) for item in items], next_cursor=next_cursor)


@router.get("/{item_id}", response_model=MemoryItemDetail)
async def read_memory_item(item_id: str, caller: CallerDep, runtime: RuntimeDep) -> MemoryItemDetail:
    """One item with its text (the caller's, a shared one, or any for admins)."""
    item = await memory_of(runtime).get(
        owner_id=caller.user_id, item_id=item_id, admin=caller.role == "admin"
    )
    return MemoryItemDetail(**MemoryItemPublic.of(item).model_dump(), text=item.text or "")


@router.delete("/{item_id}", status_code=204)
async def delete_memory_item(item_id: str, caller: OperatorDep, runtime: RuntimeDep) -> Response:
    """Delete an item from every index (its owner, or an admin)."""
    await memory_of(runtime).delete(owner_id=caller.user_id, item_id=item_id, admin=caller.role == "admin")
    return Response(status_code=204)
