"""Keyword search over memory chunks: SQLite FTS5 with BM25, PostgreSQL full text with `ts_rank_cd`.

A query is a `KeywordQuery`: a disjunction of conjunctions of plain terms (letters and digits only,
see `engines/recall/query.py`), ``[["a", "b"]]`` for chunks with both words, ``[["a"], ["b"]]`` for
chunks with either, optionally narrowed to chunks that also hold one of its `required` terms.

On SQLite the FTS5 table is ranked on its own, with a LIMIT, and only the best candidates are then
checked against the item filter (owner, tags, sources): ranking first keeps a search over 100,000
items in a few milliseconds. When too few candidates pass the filter, it ranks again with a larger
window, and finally with the filter joined in. PostgreSQL plans the join itself over the GIN index.
Ranking costs time per matching chunk, so callers narrow broad queries with `common_terms`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    bindparam,
    column,
    func,
    literal_column,
    select,
    table,
    text,
)

from orchestrion.store.memory import CHUNKS, ITEMS, ItemFilter

# BM25 column weights (heading, body): a word in an item's title counts four times one in its text.
_BM25 = "bm25(memory_fts, 4.0, 1.0)"
# Candidate windows tried before the filter is joined into the ranking query.
_WINDOWS = (4, 32)

_FTS = table("memory_fts", column("rowid", Integer))
_FTS_RANKED = text(
    f"SELECT rowid AS chunk_id, {_BM25} AS score FROM memory_fts WHERE memory_fts MATCH :q "
    "ORDER BY score LIMIT :n"
)
_LAST_CHUNK = select(func.coalesce(func.max(CHUNKS.c.id), 0))


@dataclass(frozen=True, kw_only=True)
class KeywordQuery:
    """Chunks matching any of `clauses` (each a list of terms that must all occur) and, when
    `required` is not empty, at least one of the `required` terms as well."""

    clauses: Sequence[Sequence[str]]
    required: Sequence[str] = ()


@dataclass(frozen=True, kw_only=True)
class ChunkMatch:
    """A chunk that matched, with its backend score (higher is better)."""

    chunk_id: int
    item_id: str
    score: float


def _conjunctions(clauses: Sequence[Sequence[str]], word: str, join: str, quote: bool) -> str:
    parts = [join.join(f'"{t}"' if quote else t for t in clause if t.isalnum()) for clause in clauses]
    parts = [part for part in parts if part]
    return parts[0] if len(parts) == 1 else f" {word} ".join(f"({part})" for part in parts)


def fts5_expression(query: KeywordQuery) -> str:
    """An FTS5 MATCH expression: quoted terms, ANDed within a clause, clauses ORed."""
    expression = _conjunctions(query.clauses, "OR", " ", quote=True)
    required = _conjunctions([[t] for t in query.required], "OR", " ", quote=True)
    return f"({expression}) AND ({required})" if expression and required else expression


def tsquery_text(query: KeywordQuery) -> str:
    """A `to_tsquery` input: terms joined by ``&`` within a clause, clauses by ``|``."""
    expression = _conjunctions(query.clauses, "|", " & ", quote=False)
    required = _conjunctions([[t] for t in query.required], "|", " & ", quote=False)
    return f"({expression}) & ({required})" if expression and required else expression


def keyword_search(
    conn: Connection, query: KeywordQuery, *, where: ItemFilter, limit: int
) -> list[ChunkMatch]:
    """The best `limit` chunks matching `query` among the items `where` allows, best first."""
    if not query.clauses or limit <= 0:
        return []
    if conn.dialect.name == "sqlite":
        return _search_sqlite(conn, fts5_expression(query), where, limit)
    return _search_postgres(conn, tsquery_text(query), where, limit)


def common_terms(conn: Connection, terms: Sequence[str], *, fraction: float, floor: int) -> set[str]:
    """The terms found in more than `max(floor, fraction x chunks)` chunks (of every owner).

    One statement: each count stops at that bound, so asking costs little even for the most
    common word.
    """
    last = int(conn.execute(_LAST_CHUNK).scalar_one())  # an upper bound of the chunk count
    bound = max(floor, int(fraction * last))
    words = [t for t in terms if t.isalnum()]
    if last <= bound or not words:
        return set()
    if conn.dialect.name == "sqlite":
        probe = "(SELECT count(*) FROM (SELECT 1 FROM memory_fts WHERE memory_fts MATCH :t{i} LIMIT :n))"
        params: dict[str, Any] = {f"t{i}": f'"{t}"' for i, t in enumerate(words)}
    else:
        probe = (
            "(SELECT count(*) FROM (SELECT 1 FROM memory_chunks "
            "WHERE tsv @@ to_tsquery('english', :t{i}) LIMIT :n) AS s{i})"
        )
        params = {f"t{i}": t for i, t in enumerate(words)}
    statement = text("SELECT " + ", ".join(probe.format(i=i) for i in range(len(words))))
    if conn.dialect.name == "sqlite":
        counts = conn.execute(statement, {**params, "n": bound + 1}).one()
    else:
        # With the LIMIT, PostgreSQL expects to meet the bound early in a sequential scan and reads
        # the whole table for a rare word; the GIN index answers both kinds quickly.
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        counts = conn.execute(statement, {**params, "n": bound + 1}).one()
        conn.execute(text("SET LOCAL enable_seqscan = on"))
    return {t for t, count in zip(words, counts, strict=True) if int(count) > bound}


def _search_sqlite(conn: Connection, expression: str, where: ItemFilter, limit: int) -> list[ChunkMatch]:
    if not expression:
        return []
    clauses = where.clauses()
    for factor in _WINDOWS:
        window = max(limit * factor, 64)
        ranked = conn.execute(_FTS_RANKED, {"q": expression, "n": window}).all()
        if not ranked:
            return []
        scores = {row.chunk_id: -float(row.score) for row in ranked}
        allowed = conn.execute(
            select(CHUNKS.c.id, CHUNKS.c.item_id)
            .join(ITEMS, ITEMS.c.id == CHUNKS.c.item_id)
            .where(CHUNKS.c.id.in_(bindparam("ids", expanding=True)), *clauses),
            {"ids": list(scores)},
        ).all()
        owners = {row.id: row.item_id for row in allowed}
        matches = [
            ChunkMatch(chunk_id=row.chunk_id, item_id=owners[row.chunk_id], score=scores[row.chunk_id])
            for row in ranked
            if row.chunk_id in owners
        ]
        if len(matches) >= limit or len(ranked) < window:
            return matches[:limit]
    # The filter lets few of the best chunks through: rank only what it allows.
    statement = (
        select(CHUNKS.c.id.label("chunk_id"), CHUNKS.c.item_id, literal_column(_BM25).label("score"))
        .select_from(
            _FTS.join(CHUNKS, CHUNKS.c.id == _FTS.c.rowid).join(ITEMS, ITEMS.c.id == CHUNKS.c.item_id)
        )
        .where(text("memory_fts MATCH :q"), *clauses)
        .order_by(literal_column("score"))
        .limit(limit)
    )
    rows = conn.execute(statement, {"q": expression}).all()
    return [ChunkMatch(chunk_id=r.chunk_id, item_id=r.item_id, score=-float(r.score)) for r in rows]


def _search_postgres(conn: Connection, query: str, where: ItemFilter, limit: int) -> list[ChunkMatch]:
    if not query:
        return []
    tsquery = func.to_tsquery(literal_column("'english'"), bindparam("q"))
    tsv: ColumnElement[Any] = literal_column("memory_chunks.tsv")
    score = func.ts_rank_cd(tsv, tsquery).label("score")
    statement = (
        select(CHUNKS.c.id.label("chunk_id"), CHUNKS.c.item_id, score)
        .join(ITEMS, ITEMS.c.id == CHUNKS.c.item_id)
        .where(tsv.op("@@")(tsquery), *where.clauses())
        .order_by(score.desc(), CHUNKS.c.id)
        .limit(limit)
    )
    rows = conn.execute(statement, {"q": query}).all()
    return [ChunkMatch(chunk_id=r.chunk_id, item_id=r.item_id, score=float(r.score)) for r in rows]
