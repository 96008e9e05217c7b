"""The vector half of hybrid search with the real all-MiniLM-L6-v2 model (extra `embeddings`).

Skipped, with the reason, where the extra is not installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest
from sqlalchemy import Connection, text

from orchestrion.engines.recall import MemoryService
from orchestrion.engines.recall.embeddings import SentenceTransformerEmbedder
from orchestrion.store.database import Database
from tests.conftest import LiveServer
from tests.recall.conftest import Users, add_corpus


@pytest.fixture
async def hybrid(database: Database, embedder: SentenceTransformerEmbedder) -> AsyncIterator[MemoryService]:
    """A memory service with the real embedder (shared by the session: the model loads once)."""
    yield MemoryService(db=database, embedder=embedder)


async def test_the_embedder_gives_normalised_vectors_of_similar_texts_nearby(
    embedder: SentenceTransformerEmbedder,
) -> None:
    vectors = await embedder.embed(
        ["The certificate expires soon", "The TLS cert runs out next week", "Bake the bread for an hour"]
    )
    matrix = np.asarray(vectors)
    assert matrix.shape == (3, 384)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-4)
    assert matrix[0] @ matrix[1] > matrix[0] @ matrix[2] + 0.2


async def test_a_paraphrase_is_found_by_meaning_when_no_word_matches(
    hybrid: MemoryService, users: Users
) -> None:
    ids = await add_corpus(hybrid, users.alice)

    hits = await hybrid.search(owner_id=users.alice, query="when will our SSL cert lapse", k=3)
    keyword_only = await MemoryService(db=hybrid._db).search(
        owner_id=users.alice, query="when will our SSL cert lapse", k=3
    )

    assert keyword_only == []
    assert hits[0].item_id == ids["tls"] and hits[0].matched_by == ("vector",)
    assert hits[0].ranks == {"vector": 1} and 0.3 < hits[0].scores["vector"] <= 1.0
    assert hybrid.backends == ("keyword", "vector") and hybrid.vector_note is None


async def test_hybrid_hits_carry_both_ranks_and_fused_scores(hybrid: MemoryService, users: Users) -> None:
    ids = await add_corpus(hybrid, users.alice)

    hits = await hybrid.search(owner_id=users.alice, query="nightly database backups", k=3)

    top = hits[0]
    assert top.item_id == ids["backup"] and top.matched_by == ("keyword", "vector")
    assert top.ranks == {"keyword": 1, "vector": 1} and top.score == round(2 / 61, 6)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


async def test_vectors_respect_ownership_tags_and_deletes(
    hybrid: MemoryService, users: Users, database: Database
) -> None:
    bobs = await hybrid.add(
        owner_id=users.bob, title="Bob's secret", text="The TLS certificate private key lives in the vault."
    )
    ids = await add_corpus(hybrid, users.alice)
    query = "where is the certificate private key kept"

    alice = await hybrid.search(owner_id=users.alice, query=query, k=10)
    assert bobs.id not in {h.item_id for h in alice}
    admin = await hybrid.search(owner_id=users.admin, query=query, k=10, scope="all", admin=True)
    assert bobs.id in {h.item_id for h in admin}
    tagged = await hybrid.search(owner_id=users.alice, query="SSL cert lifetime", k=10, tags=["mail"])
    assert [h.item_id for h in tagged] == [ids["tls"]]
    assert await vector_rows(database, ids["tls"]) == 1

    await hybrid.delete(owner_id=users.alice, item_id=ids["tls"])

    assert await vector_rows(database, ids["tls"]) == 0
    after = await hybrid.search(owner_id=users.alice, query="SSL cert lifetime", k=10)
    assert ids["tls"] not in {h.item_id for h in after}
    stats = await hybrid.stats()
    assert stats.vectors == stats.chunks == 6  # five corpus items and Bob's


async def vector_rows(database: Database, item_id: str) -> int:
    def count(conn: Connection) -> int:
        sql = text("SELECT count(*) FROM memory_vectors WHERE item_id = :id")
        return int(conn.execute(sql, {"id": item_id}).scalar_one())

    return await database.read(count)


async def test_another_process_writes_are_seen_by_the_vector_cache(
    hybrid: MemoryService, users: Users, database: Database, embedder: SentenceTransformerEmbedder
) -> None:
    other = MemoryService(db=database, embedder=embedder)  # a second server on the same database
    assert await hybrid.search(owner_id=users.alice, query="sourdough starter", k=3) == []

    item = await other.add(owner_id=users.alice, title="Baking", text="Feed the sourdough starter daily.")
    found = await hybrid.search(owner_id=users.alice, query="how to keep leaven alive", k=3)
    assert found[0].item_id == item.id

    await other.delete(owner_id=users.alice, item_id=item.id)
    assert await hybrid.search(owner_id=users.alice, query="how to keep leaven alive", k=3) == []


async def test_the_api_reports_both_backends(
    server_factory: Callable[..., LiveServer], embedder: SentenceTransformerEmbedder
) -> None:
    server = server_factory(embeddings="auto")
    async with server.client() as client:
        note = {"text": "The TLS certificate of the mail relay expires soon."}
        await client.post("/api/v1/memory", json=note)
        body = (await client.get("/api/v1/memory/search", params={"q": "SSL cert running out"})).json()
        keyword = server_factory(embeddings="off")
        async with keyword.client() as other:
            off = (await other.get("/api/v1/memory/search", params={"q": "anything"})).json()

    assert body["backends"] == ["keyword", "vector"] and body["vector_note"] is None
    assert body["data"][0]["matched_by"] == ["vector"]
    assert off["backends"] == ["keyword"] and "ORCHESTRION_EMBEDDINGS=off" in off["vector_note"]
