"""Recall benchmark: memory search latency, index size and recall@10, keyword against hybrid.

    .venv/bin/python bench/recall.py                      # the BENCHMARKS.md figures
    .venv/bin/python bench/recall.py --sizes 10000 --no-postgres   # a quick look

For each corpus size (`bench/recall_corpus.py`: topic-structured operations notes, fixed seed, two
owners) a fresh database is filled through `MemoryService.add_documents` in batches of 500, then
every labelled query is asked as alice, `--rounds` times, through `MemoryService.search` (k=10):
the latency is that call's wall time (thread hops, keyword query, reading the hits' items and
chunks, snippets; for hybrid also embedding the query and the vector scan). "fts" is the keyword
query alone inside one read transaction (what `search` runs first).

SQLite always; PostgreSQL too when its server binaries are installed (a throwaway cluster in a
temporary directory, as the tests start one), unless `--no-postgres`. Hybrid (keyword + vectors,
reciprocal rank fusion) runs on the `--hybrid-size` corpus when the `embeddings` extra is
installed: embedding is the slow part of building (about 50 passages a second on 2 cores).

Results go to stdout and `bench/results/recall-<date>.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import glob
import json
import os
import platform
import pwd
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from recall_corpus import (  # noqa: E402
    Doc,
    Query,
    build_corpus,
    build_queries,
    check_paraphrases,
    chunks,
    recall_at,
)

from orchestrion.engines.recall import Document, Embedder, MemoryService, build_embedder  # noqa: E402
from orchestrion.engines.recall.query import query_terms  # noqa: E402
from orchestrion.engines.recall.service import _keyword_matches  # noqa: E402
from orchestrion.store import users as user_store  # noqa: E402
from orchestrion.store.database import Database, WriteTx  # noqa: E402
from orchestrion.store.memory import ItemFilter  # noqa: E402
from orchestrion.store.migrate import aupgrade_database  # noqa: E402

BATCH = 500


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


async def fill(
    url: str, docs: list[Doc], embedder: Embedder | None
) -> tuple[Database, dict[str, int], str, float]:
    """A migrated database holding `docs`; returns it, item id -> doc key, alice's id, build seconds."""
    await aupgrade_database(url)
    db = Database(url)

    def users(tx: WriteTx) -> dict[str, str]:
        return {name: user_store.create_user(tx, name=name, role="operator").id for name in ("alice", "bob")}

    owners = await db.write(users)
    service = MemoryService(db=db, embedder=embedder)
    keys: dict[str, int] = {}
    started = time.perf_counter()
    for batch in chunks(docs, BATCH):
        for owner in ("alice", "bob"):
            mine = [d for d in batch if d.owner == owner]
            if not mine:
                continue
            documents = [Document(title=d.title, text=d.text, tags=d.tags, shared=d.shared) for d in mine]
            items = await service.add_documents(owner_id=owners[owner], documents=documents)
            keys.update({item.id: doc.key for item, doc in zip(items, mine, strict=True)})
    seconds = time.perf_counter() - started
    if not db.is_sqlite:  # what autovacuum does after a bulk load: the planner needs statistics
        from sqlalchemy import text

        await db.write(lambda tx: tx.conn.execute(text("ANALYZE")))
    return db, keys, owners["alice"], seconds


async def ask(
    service: MemoryService, queries: list[Query], keys: dict[str, int], alice: str, rounds: int
) -> dict[str, Any]:
    """Latency of `search` over every query, `rounds` times, and recall@10 per query kind."""
    for query in queries[:20]:  # warm up: caches, the vector matrix, the model
        await service.search(owner_id=alice, query=query.text, k=10)
    latencies: list[float] = []
    recalls: dict[str, list[float]] = {}
    for round_ in range(rounds):
        for query in queries:
            started = time.perf_counter()
            hits = await service.search(owner_id=alice, query=query.text, k=10)
            latencies.append(time.perf_counter() - started)
            if round_ == 0:
                ranked = [keys[h.item_id] for h in hits]
                recalls.setdefault(query.kind, []).append(recall_at(ranked, query.relevant))
    every = [r for values in recalls.values() for r in values]
    return {
        "latency": summary_ms(latencies),
        "recall_at_10": {kind: round(statistics.fmean(v), 3) for kind, v in sorted(recalls.items())}
        | {"all": round(statistics.fmean(every), 3)},
        "queries": {kind: len(v) for kind, v in sorted(recalls.items())},
    }


async def fts_only(db: Database, queries: list[Query], alice: str, rounds: int) -> dict[str, float]:
    """The keyword query alone (all terms, then any term while fewer than k items), in one read."""
    where = ItemFilter(viewer=alice)
    latencies: list[float] = []
    for _ in range(rounds):
        for query in queries:
            terms = query_terms(query.text)
            started = time.perf_counter()
            await db.read(lambda conn, terms=terms: _keyword_matches(conn, terms, where, 30, 10))
            latencies.append(time.perf_counter() - started)
    return summary_ms(latencies)


def sqlite_sizes(path: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    by_name = {name: int(size) for name, size in rows}
    fts = sum(size for name, size in by_name.items() if name.startswith("memory_fts"))
    vectors = sum(size for name, size in by_name.items() if "memory_vectors" in name)
    memory = sum(size for name, size in by_name.items() if "memory" in name)
    return {
        "file_bytes": path.stat().st_size,
        "memory_tables_bytes": memory,
        "fts_shadow_bytes": fts,
        "chunks_table_bytes": by_name.get("memory_chunks", 0),
        "vectors_bytes": vectors,
    }


async def postgres_sizes(db: Database) -> dict[str, int]:
    from sqlalchemy import text

    def read(conn: Any) -> dict[str, int]:
        def size(sql: str) -> int:
            return int(conn.execute(text(sql)).scalar_one())

        tables = ("memory_items", "memory_chunks", "memory_tags", "memory_vectors")
        return {
            "memory_tables_bytes": sum(size(f"SELECT pg_total_relation_size('{t}')") for t in tables),
            "tsv_gin_index_bytes": size("SELECT pg_relation_size('ix_memory_chunks_tsv')"),
            "chunks_table_bytes": size("SELECT pg_total_relation_size('memory_chunks')"),
            "vectors_bytes": size("SELECT pg_total_relation_size('memory_vectors')"),
        }

    return await db.read(read)


async def run_size(
    backend: str, url: str, docs: list[Doc], queries: list[Query], *, rounds: int, embedder: Embedder | None
) -> dict[str, Any]:
    db, keys, alice, seconds = await fill(url, docs, embedder)
    stats = await MemoryService(db=db).stats()
    result: dict[str, Any] = {
        "backend": backend,
        "items": stats.items,
        "chunks": stats.chunks,
        "vectors": stats.vectors,
        "text_bytes": stats.text_bytes,
        "build_seconds": round(seconds, 1),
        "build_items_per_second": round(len(docs) / seconds, 1),
        "embedded": embedder is not None,
    }
    print(f"[{backend} {len(docs)}] built in {seconds:.1f}s", flush=True)
    result["keyword"] = await ask(MemoryService(db=db), queries, keys, alice, rounds)
    result["fts"] = await fts_only(db, queries, alice, rounds)
    print(f"[{backend} {len(docs)}] keyword {result['keyword']}", flush=True)
    if embedder is not None:
        hybrid = MemoryService(db=db, embedder=embedder)
        started = time.perf_counter()
        await hybrid.search(owner_id=alice, query="cold vector cache", k=10)
        result["hybrid_cold_first_search_ms"] = round((time.perf_counter() - started) * 1000, 1)
        result["hybrid"] = await ask(hybrid, queries, keys, alice, rounds)
        print(f"[{backend} {len(docs)}] hybrid {result['hybrid']}", flush=True)
    if backend == "sqlite":
        await db.dispose()
        result["size"] = sqlite_sizes(Path(url.split(":///", 1)[1]))
    else:
        result["size"] = await postgres_sizes(db)
        await db.dispose()
    print(f"[{backend} {len(docs)}] size {result['size']}", flush=True)
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str | None]:
    """A throwaway PostgreSQL on 127.0.0.1 (as the tests start one); None without the binaries."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if not candidates:
        yield None
        return
    bindir = Path(candidates[0]).parent
    root = Path(tempfile.mkdtemp(prefix="orchestrion-bench-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, sock):
            os.chown(path, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    initdb = [
        *prefix,
        str(bindir / "initdb"),
        "-D",
        str(data),
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
    ]
    subprocess.run(initdb, check=True, capture_output=True)
    options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c shared_buffers=256MB"
    pg_ctl = [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log")]
    subprocess.run([*pg_ctl, "-o", options, "-w", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


async def create_database(server: str, name: str) -> str:
    import asyncpg

    host_port = server.rsplit("@", 1)[1]
    host, port = host_port.split(":")
    conn = await asyncpg.connect(host=host, port=int(port), user="postgres", database="postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{server}/{name}"


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    embedder, note = build_embedder("auto") if args.hybrid_size else (None, "not asked for")
    runs: list[dict[str, Any]] = []
    work = Path(tempfile.mkdtemp(prefix="orchestrion-bench-recall-"))
    try:
        with postgres_cluster() if args.postgres else contextlib.nullcontext(None) as server:
            for size in args.sizes:
                docs = build_corpus(size)
                check_paraphrases(docs)
                queries = build_queries(docs)
                with_vectors = embedder if size == args.hybrid_size else None
                url = f"sqlite+aiosqlite:///{work / f'recall-{size}.db'}"
                runs.append(
                    await run_size("sqlite", url, docs, queries, rounds=args.rounds, embedder=with_vectors)
                )
                if server is not None:
                    pg_url = await create_database(server, f"recall_{size}")
                    runs.append(
                        await run_size("postgresql", pg_url, docs, queries, rounds=args.rounds, embedder=None)
                    )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if embedder is not None:
            await embedder.aclose()
    return {
        "benchmark": "recall",
        "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
        },
        "embedder": embedder.name if embedder is not None else None,
        "embedder_note": note,
        "rounds": args.rounds,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--hybrid-size", type=int, default=10_000, help="Corpus size with vectors (0: none).")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-postgres", dest="postgres", action="store_false")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    out = args.out or HERE / "results" / f"recall-{result['date']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
