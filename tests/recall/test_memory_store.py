"""Keyword memory on real SQLite FTS5 and real PostgreSQL full text: ranking, tags, ownership, delete."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Connection, text

from orchestrion.engines.recall import MemoryService
from orchestrion.engines.recall.query import query_terms
from orchestrion.exceptions import (
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    UnknownChoiceError,
    ValidationError,
)
from orchestrion.store import memory as memory_store
from orchestrion.store.database import Database
from orchestrion.store.memory import ItemFilter
from orchestrion.store.memory_search import KeywordQuery, common_terms, keyword_search
from tests.recall.conftest import Users, add_corpus


async def test_the_relevant_document_ranks_first(memory: MemoryService, users: Users) -> None:
    ids = await add_corpus(memory, users.alice)

    for query, expected in [
        ("when does the certificate expire", "tls"),
        ("pg_dump backups retention", "backup"),
        ("failed password logins", "incident"),
        ("missing customer ids in the sales export", "csv"),
        ("Content-Security-Policy header", "headers"),
    ]:
        hits = await memory.search(owner_id=users.alice, query=query, k=3)
        assert hits, query
        assert hits[0].item_id == ids[expected], (query, [h.title for h in hits])
        assert hits[0].matched_by == ("keyword",) and hits[0].ranks == {"keyword": 1}
        assert hits[0].scores["keyword"] > 0


async def test_items_with_every_term_rank_above_partial_matches(memory: MemoryService, users: Users) -> None:
    ids = await add_corpus(memory, users.alice)

    hits = await memory.search(owner_id=users.alice, query="SSH bastion password", k=10)

    # Only the incident mentions all three words; onboarding mentions two (SSH, bastion).
    assert [h.item_id for h in hits[:2]] == [ids["incident"], ids["onboarding"]]
    assert "password" in hits[0].snippet.lower()


async def test_tag_filter_keeps_items_having_every_tag(memory: MemoryService, users: Users) -> None:
    ids = await add_corpus(memory, users.alice)

    ssh = await memory.search(owner_id=users.alice, query="SSH bastion", k=10, tags=["ssh"])
    both = await memory.search(owner_id=users.alice, query="SSH bastion", k=10, tags=["SSH", "incident"])
    none = await memory.search(owner_id=users.alice, query="SSH bastion", k=10, tags=["ssh", "people"])

    assert [h.item_id for h in ssh] == [ids["incident"]]
    assert [h.item_id for h in both] == [ids["incident"]]
    assert none == []
    assert ssh[0].tags == ("incident", "ssh")


async def test_users_find_their_own_and_shared_items_never_anothers_private_ones(
    memory: MemoryService, users: Users
) -> None:
    private = await memory.add(
        owner_id=users.alice, title="Alice's note", text="The zephyr cluster password rotates monthly."
    )
    shared = await memory.add(
        owner_id=users.alice,
        title="Team note",
        text="The zephyr cluster runs in the Paris region.",
        shared=True,
    )
    bobs = await memory.add(owner_id=users.bob, title="Bob's note", text="Bob keeps zephyr keys in a vault.")

    async def found(owner: str, **kwargs: Any) -> set[str]:
        return {h.item_id for h in await memory.search(owner_id=owner, query="zephyr", k=10, **kwargs)}

    assert await found(users.alice) == {private.id, shared.id}
    assert await found(users.bob) == {shared.id, bobs.id}
    assert await found(users.admin) == {shared.id}  # without scope=all an admin sees what users see
    assert await found(users.admin, scope="all", admin=True) == {private.id, shared.id, bobs.id}
    with pytest.raises(PermissionDeniedError):
        await found(users.bob, scope="all")
    with pytest.raises(UnknownChoiceError) as unknown:
        await found(users.bob, scope="everything")
    assert unknown.value.field == "scope" and unknown.value.choices == ["mine", "all"]

    assert (await memory.get(owner_id=users.bob, item_id=shared.id)).text == shared_text()
    with pytest.raises(NotFoundError):
        await memory.get(owner_id=users.bob, item_id=private.id)
    with pytest.raises(NotFoundError):
        await memory.delete(owner_id=users.bob, item_id=private.id)
    with pytest.raises(PermissionDeniedError):
        await memory.delete(owner_id=users.bob, item_id=shared.id)
    listed, _ = await memory.list_items(owner_id=users.bob)
    assert [i.id for i in listed] == [bobs.id]
    everything, _ = await memory.list_items(owner_id=users.admin, scope="all", admin=True)
    assert {i.id for i in everything} == {private.id, shared.id, bobs.id}


def shared_text() -> str:
    return "The zephyr cluster runs in the Paris region."


async def test_delete_removes_the_item_from_every_index(
    memory: MemoryService, users: Users, database: Database
) -> None:
    await add_corpus(memory, users.alice)
    doomed = await memory.add(
        owner_id=users.alice,
        title="Quokka migration plan",
        text="Move the quokka service to the new cluster. " * 80,  # several chunks
        tags=["plan", "quokka"],
    )
    assert doomed.chunk_count > 1
    chunks = doomed.chunk_count
    before = await index_counts(database, doomed.id)
    assert before == {"items": 1, "chunks": chunks, "tags": 2, "keyword": chunks}

    await memory.delete(owner_id=users.alice, item_id=doomed.id)

    assert await index_counts(database, doomed.id) == {"items": 0, "chunks": 0, "tags": 0, "keyword": 0}
    assert await memory.search(owner_id=users.alice, query="quokka", k=10) == []
    with pytest.raises(NotFoundError):
        await memory.get(owner_id=users.alice, item_id=doomed.id)
    with pytest.raises(NotFoundError):
        await memory.delete(owner_id=users.alice, item_id=doomed.id)
    if database.is_sqlite:  # the external-content FTS5 index still agrees with its table
        await database.write(
            lambda tx: tx.conn.execute(text("INSERT INTO memory_fts(memory_fts) VALUES ('integrity-check')"))
        )
    stats = await memory.stats()
    assert stats.items == 6 and stats.vectors == 0


async def index_counts(database: Database, item_id: str) -> dict[str, int]:
    """Rows of an item in each table, and keyword-index matches of its unique word, by direct queries."""

    def count(conn: Connection) -> dict[str, int]:
        params = {"id": item_id}
        scalar = lambda sql: int(conn.execute(text(sql), params).scalar_one())  # noqa: E731
        if conn.dialect.name == "sqlite":
            keyword = scalar("SELECT count(*) FROM memory_fts WHERE memory_fts MATCH 'quokka'")
        else:
            keyword = scalar(
                "SELECT count(*) FROM memory_chunks WHERE tsv @@ to_tsquery('english', 'quokka')"
            )
        return {
            "items": scalar("SELECT count(*) FROM memory_items WHERE id = :id"),
            "chunks": scalar("SELECT count(*) FROM memory_chunks WHERE item_id = :id"),
            "tags": scalar("SELECT count(*) FROM memory_tags WHERE item_id = :id"),
            "keyword": keyword,
        }

    return await database.read(count)


async def test_a_long_document_is_chunked_and_the_hit_names_its_passage(
    memory: MemoryService, users: Users, database: Database
) -> None:
    paragraphs = [f"Paragraph {n} talks about routine maintenance of the service. " * 6 for n in range(12)]
    paragraphs[9] = "The failover drill showed the replica lagging behind by forty seconds. " * 3
    document = "\n\n".join(paragraphs)

    item = await memory.add(owner_id=users.alice, title="Operations journal", text=document)
    hits = await memory.search(owner_id=users.alice, query="replica lagging", k=5)

    assert item.chunk_count >= 3
    assert [h.item_id for h in hits] == [item.id]
    chunks = await database.read(lambda conn: memory_store.read_chunks(conn, [hits[0].chunk_id]))
    chunk = chunks[hits[0].chunk_id]
    assert chunk.position == hits[0].chunk_index > 0
    assert "replica lagging" in chunk.body and document[chunk.start :].startswith(chunk.body)
    assert "replica lagging" in hits[0].snippet and len(hits[0].snippet) <= 250
    assert (await memory.get(owner_id=users.alice, item_id=item.id)).text == document


async def test_bad_input_is_refused_naming_the_field(memory: MemoryService, users: Users) -> None:
    small = MemoryService(db=memory._db, max_item_bytes=1024)
    with pytest.raises(PayloadTooLargeError) as too_big:
        await small.add(owner_id=users.alice, title="big", text="é" * 600)
    assert too_big.value.details == {"field": "text", "limit": 1024, "size": 1200}
    for query in ("", "   ", "?!"):
        with pytest.raises(ValidationError) as empty:
            await memory.search(owner_id=users.alice, query=query)
        assert empty.value.field == "query"
    with pytest.raises(ValidationError) as k:
        await memory.search(owner_id=users.alice, query="x", k=0)
    assert k.value.field == "k"
    with pytest.raises(ValidationError) as blank:
        await memory.add(owner_id=users.alice, title="t", text=" \n ")
    assert blank.value.field == "text"
    with pytest.raises(ValidationError) as tag:
        await memory.add(owner_id=users.alice, title="t", text="x", tags=["x" * 65])
    assert tag.value.field == "tags"


async def test_titles_default_to_the_first_line_and_tags_are_normalised(
    memory: MemoryService, users: Users
) -> None:
    text = "\n  First line here\nsecond"
    item = await memory.add(owner_id=users.alice, title="  ", text=text, tags=[" A ", "a", "B"])
    assert item.title == "First line here" and item.tags == ("a", "b")
    assert item.size_bytes == len(text) and len(item.content_hash) == 64


@pytest.mark.parametrize("shared", [False, True])
async def test_relevant_returns_the_owners_memories_about_a_text(
    memory: MemoryService, users: Users, shared: bool
) -> None:
    ids = await add_corpus(memory, users.bob, shared=shared)

    hits = await memory.relevant(owner_id=users.alice, text="mail.example.org TLS audit", k=2)

    assert [h.item_id for h in hits][:1] == ([ids["tls"]] if shared else [])
    assert await memory.relevant(owner_id=users.alice, text="", k=2) == []
    assert await memory.relevant(owner_id="", text="TLS", k=2) == []


async def test_query_syntax_of_either_backend_is_never_interpreted(
    memory: MemoryService, users: Users
) -> None:
    await add_corpus(memory, users.alice)
    nasty = ['"', "'", "NEAR(a b)", "a:b", "*", "-x", "(x", "AND", "OR NOT", "x509 ^ |", "ǆ ß", "日本語"]
    nasty += ["title:tls", "tls & !backup", "a" * 500, "\x00tls", "tls <-> backup", "{heading}: tls"]
    for query in nasty:
        if not query_terms(query):
            with pytest.raises(ValidationError):
                await memory.search(owner_id=users.alice, query=query, k=5)
            continue
        hits = await memory.search(owner_id=users.alice, query=query, k=5)
        assert all(h.owner_id == users.alice for h in hits), query
    assert (await memory.search(owner_id=users.alice, query='"TLS" OR "x509"', k=5))[0].title.startswith(
        "TLS"
    )


async def test_common_words_are_told_apart_and_required_terms_narrow_a_query(
    memory: MemoryService, users: Users, database: Database
) -> None:
    ids = await add_corpus(memory, users.alice)
    where = ItemFilter(viewer=users.alice)

    def probe(conn: Connection) -> tuple[set[str], set[str], set[str]]:
        common = common_terms(conn, ["ssh", "bastion", "certificate", "zebra"], fraction=0.0, floor=1)
        both = KeywordQuery(clauses=[["ssh"], ["certificate"]])
        narrowed = KeywordQuery(clauses=[["ssh"], ["certificate"]], required=["certificate"])
        found = {m.item_id for m in keyword_search(conn, both, where=where, limit=10)}
        kept = {m.item_id for m in keyword_search(conn, narrowed, where=where, limit=10)}
        return common, found, kept

    common, found, kept = await database.read(probe)

    assert common == {"ssh", "bastion"}  # in two items each; "certificate" is in one
    assert found == {ids["incident"], ids["onboarding"], ids["tls"]}
    assert kept == {ids["tls"]}
