"""pgvector against embedded Chroma and the exact store, same chunks and vectors (issue 12):

    python benchmarks/pgvector_vs_chroma.py [--chunks 100000] [--queries 200] [--batch 256]
        [--data random clustered] [--ef 40 200]

The chunks are query_path.py's (64-token pieces of the shared corpora, ids ``c0..``); the dense
vectors are 384-d unit vectors, either uniformly random (HNSW's worst case, as in query_path.py)
or clustered: ``normalise(centroid[j] + spread * noise)`` with 1,000 random unit centroids and
noise of unit expected norm (``--spread 0.3``: about 0.96 cosine to the centroid), queries drawn
the same way. Query vectors are fixed before timing (no embedding is timed). Each store gets the
chunks in ``--batch``-sized ``add`` calls, as ``rag.index.ingest`` writes them (256 a batch).

PostgreSQL is a private cluster started with ``pgserver`` (pgvector, HNSW with pgvector's
defaults m=16, ef_construction=64, the index created before the rows, so it grows on insert as
in a live ingest); Chroma is embedded on disk (the store's ef_construction=200, ef_search=200).
Prints, per vector set: ingestion time and size on disk per store, then top-10 query p50/p95 in
ms and recall@10 against the exact store (pgvector at each ``--ef`` ``hnsw.ef_search``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from query_path import DIM, make_chunks, timed  # noqa: E402

from rag.base import Store  # noqa: E402
from rag.stores import ChromaStore, MemoryStore, PgVectorStore  # noqa: E402
from rag.types import Chunk  # noqa: E402

CENTROIDS = 1_000
K = 10


def normalise(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def random_unit(rng: np.random.Generator, n: int) -> np.ndarray:
    return normalise(rng.standard_normal((n, DIM)))


def clustered(rng: np.random.Generator, centroids: np.ndarray, n: int, spread: float) -> np.ndarray:
    picks = rng.integers(0, len(centroids), n)
    noise = rng.standard_normal((n, DIM)) / np.sqrt(DIM)  # expected norm 1
    return normalise(centroids[picks] + spread * noise)


def vector_sets(kind: str, n: int, queries: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    if kind == "random":
        return random_unit(rng, n), random_unit(rng, queries)
    centroids = random_unit(rng, CENTROIDS)
    return clustered(rng, centroids, n, spread), clustered(rng, centroids, queries, spread)


def ingest(store: Store, chunks: Sequence[Chunk], vectors: np.ndarray, batch: int) -> float:
    began = time.perf_counter()
    for lo in range(0, len(chunks), batch):
        store.add(chunks[lo : lo + batch], vectors[lo : lo + batch])
    return time.perf_counter() - began


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def pg_bytes(store: PgVectorStore) -> tuple[int, int]:
    """The table with its indexes and TOAST, and the HNSW index alone."""
    got = store._conn.execute(
        "SELECT pg_total_relation_size(%s::regclass), pg_relation_size(%s::regclass)",
        (store.table, f"{store.table}_hnsw"),
    ).fetchone()
    return int(got[0]), int(got[1])


def recall(
    search: Callable[[np.ndarray], list[tuple[Chunk, float]]],
    queries: np.ndarray,
    truth: list[set[str]],
) -> float:
    hits = [len({c.id for c, _ in search(q)} & t) / K for q, t in zip(queries, truth, strict=True)]
    return statistics.mean(hits)


def query_row(
    name: str,
    search: Callable[[np.ndarray], list[tuple[Chunk, float]]],
    queries: np.ndarray,
    truth: list[set[str]],
) -> None:
    by_index = {str(i): q for i, q in enumerate(queries)}
    ms = timed(lambda i: search(by_index[i]), list(by_index))
    p95 = sorted(ms)[int(0.95 * (len(ms) - 1))]
    r = recall(search, queries, truth)
    print(f"{name:<44} {statistics.median(ms):9.2f} {p95:9.2f} {r:10.3f}", flush=True)


def start_postgres(folder: Path) -> Any:
    import pgserver

    with warnings.catch_warnings():  # platformdirs: XDG_RUNTIME_DIR unset
        warnings.simplefilter("ignore")
        server = pgserver.get_server(folder, cleanup_mode="stop")
    server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
    return server


def versions(dsn: str) -> str:
    from importlib.metadata import version

    store = PgVectorStore(dsn, "versions_probe")
    pg = store._conn.execute("SHOW server_version").fetchone()[0]
    vec = store._conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    vec_version = vec.fetchone()[0]
    store.close()
    return (
        f"pgserver {version('pgserver')}, PostgreSQL {pg}, pgvector {vec_version}, "
        f"psycopg {version('psycopg')}, chromadb {version('chromadb')}, cpus {os.cpu_count()}"
    )


def run_set(kind: str, args: argparse.Namespace, chunks: list[Chunk], dsn: str, tmp: Path) -> None:
    vectors, queries = vector_sets(kind, len(chunks), args.queries, args.spread)
    label = kind if kind == "random" else f"clustered ({CENTROIDS} centroids, spread {args.spread})"
    print(f"\n== {len(chunks)} chunks, {label} vectors, batch {args.batch} ==", flush=True)
    print(f"{'ingestion':<44} {'seconds':>9} {'chunks/s':>9} {'disk MB':>10}", flush=True)

    memory = MemoryStore(dim=DIM)
    took = ingest(memory, chunks, vectors, args.batch)
    print(
        f"{'exact (MemoryStore, in memory)':<44} {took:9.1f} {len(chunks) / took:9.0f}", flush=True
    )
    truth = [{c.id for c, _ in hits} for hits in memory.search_many(queries, K)]

    pg = PgVectorStore(dsn, f"bench_{kind}", dim=DIM)
    took = ingest(pg, chunks, vectors, args.batch)
    total, hnsw = pg_bytes(pg)
    assert pg.count() == len(chunks)
    print(
        f"{'pgvector HNSW (m=16, ef_construction=64)':<44} {took:9.1f} {len(chunks) / took:9.0f}"
        f" {total / 1e6:10.1f}  (HNSW index {hnsw / 1e6:.1f} MB)",
        flush=True,
    )

    chroma_dir = tmp / f"chroma_{kind}"
    chroma = ChromaStore(chroma_dir, "bench")
    took = ingest(chroma, chunks, vectors, args.batch)
    assert chroma.count() == len(chunks)
    print(
        f"{'Chroma HNSW (embedded, ef_construction=200)':<44} {took:9.1f} "
        f"{len(chunks) / took:9.0f} {folder_bytes(chroma_dir) / 1e6:10.1f}",
        flush=True,
    )

    print(f"{'top-10 query (ms, embedding excluded)':<44} {'p50':>9} {'p95':>9} {'recall@10':>10}")
    query_row("exact (MemoryStore)", lambda q: memory.search(q, K), queries, truth)
    for ef in args.ef:
        pg.ef_search = ef
        query_row(f"pgvector HNSW, hnsw.ef_search={ef}", lambda q: pg.search(q, K), queries, truth)
    query_row(
        "Chroma HNSW (embedded, ef_search=200)", lambda q: chroma.search(q, K), queries, truth
    )

    pg.drop()
    pg.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=256, help="chunks per add call")
    parser.add_argument("--data", nargs="+", choices=["random", "clustered"], default=["random"])
    parser.add_argument("--spread", type=float, default=0.3, help="clustered noise scale")
    parser.add_argument("--ef", type=int, nargs="+", default=[40, 200], help="hnsw.ef_search")
    args = parser.parse_args()

    chunks = make_chunks(args.chunks)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        started = time.perf_counter()
        server = start_postgres(tmp / "pg")
        try:
            dsn = server.get_uri()
            print(f"PostgreSQL up in {time.perf_counter() - started:.1f} s; {versions(dsn)}")
            for kind in args.data:
                run_set(kind, args, chunks, dsn, tmp)
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
