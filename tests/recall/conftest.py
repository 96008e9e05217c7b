"""Recall fixtures: a migrated database (SQLite and PostgreSQL) with users, a corpus, the embedder."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest

from orchestrion.engines.recall import Document, MemoryService, build_embedder
from orchestrion.engines.recall.embeddings import SentenceTransformerEmbedder
from orchestrion.store import users as user_store
from orchestrion.store.database import Database, WriteTx

# A small corpus with known answers: each document is about one thing, in its own words.
CORPUS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "tls": (
        "TLS certificate of mail.example.org",
        "The TLS certificate served by mail.example.org expires on 2027-01-04 and is signed with a "
        "2048-bit RSA key. Renewal is automated with certbot on the mail relay.",
        ("tls", "mail"),
    ),
    "backup": (
        "Nightly database backups",
        "PostgreSQL backups run nightly at 02:00 with pg_dump; archives are kept for thirty days in "
        "the cold storage bucket and restores are rehearsed every quarter.",
        ("database", "operations"),
    ),
    "incident": (
        "Brute force on the SSH bastion",
        "On 2026-10-12 the SSH bastion saw 4,000 failed password logins from 203.0.113.7 within ten "
        "minutes; the address was blocked and password logins were disabled.",
        ("incident", "ssh"),
    ),
    "csv": (
        "Sales export data quality",
        "The monthly sales CSV export has 3% missing customer ids and duplicated invoice rows when "
        "the export job is retried.",
        ("data", "quality"),
    ),
    "headers": (
        "Security headers of the shop",
        "The shop front end lacks a Content-Security-Policy header and sets cookies without the "
        "SameSite attribute; HSTS is present with a one-year max-age.",
        ("web", "headers"),
    ),
    "onboarding": (
        "Onboarding checklist",
        "New engineers get a laptop, an SSH key registered on the bastion, access to the wiki and a "
        "buddy for their first two weeks.",
        ("people",),
    ),
}


@dataclass
class Users:
    alice: str
    bob: str
    admin: str


@pytest.fixture
async def users(database: Database) -> Users:
    """Two users and an admin in the migrated database."""

    def create(tx: WriteTx) -> Users:
        return Users(
            alice=user_store.create_user(tx, name="alice", role="operator").id,
            bob=user_store.create_user(tx, name="bob", role="operator").id,
            admin=user_store.create_user(tx, name="root", role="admin").id,
        )

    return await database.write(create)


@pytest.fixture
async def memory(database: Database) -> AsyncIterator[MemoryService]:
    """A keyword-only memory service on the migrated database."""
    service = MemoryService(db=database, embedder=None, vector_note="off in this test")
    yield service
    await service.aclose()


async def add_corpus(memory: MemoryService, owner_id: str, *, shared: bool = False) -> dict[str, str]:
    """Remember the corpus as `owner_id`; returns item ids by corpus key."""
    documents = [
        Document(title=title, text=text, tags=tags, shared=shared) for title, text, tags in CORPUS.values()
    ]
    items = await memory.add_documents(owner_id=owner_id, documents=documents)
    return {key: item.id for key, item in zip(CORPUS, items, strict=True)}


@pytest.fixture(scope="session")
def embedder() -> Iterator[SentenceTransformerEmbedder]:
    """The real all-MiniLM-L6-v2 embedder (extra `embeddings`), loaded once for the session."""
    built, reason = build_embedder("auto")
    if built is None:
        if os.environ.get("ORCHESTRION_REQUIRE_EMBEDDINGS") == "1":
            pytest.fail(f"no embedder but ORCHESTRION_REQUIRE_EMBEDDINGS=1: {reason}")
        pytest.skip(f"vector search not testable here: {reason}")
    assert isinstance(built, SentenceTransformerEmbedder)
    try:
        yield built
    finally:
        built.close()
