"""Query latency over a large index, the query's embedding excluded (issue 11):

    python benchmarks/query_path.py [--chunks 100000] [--queries 200] [--chroma]

Chunks are 64-token pieces of the shared corpora's texts (repeated with a suffix when they run
out); dense vectors are random unit vectors of MiniLM's 384 dimensions (search cost does not
depend on what the vectors mean; HNSW recall on random vectors is a pessimistic reading), and
each query's vector is fixed before timing. Lexical queries are SciFact's test queries. Prints
p50/p95 per path, and recall@10 of Chroma's HNSW against exact search, in one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rag.base import Encoder, Retriever
from rag.encoders.bm25 import BM25Encoder
from rag.retrieval.multi import FusionRetriever
from rag.retrieval.store_retriever import StoreRetriever
from rag.stores import BM25Store, ChromaStore, MemoryStore
from rag.types import Chunk

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DIM = 384


def corpus_texts() -> list[str]:
    texts = []
    for name in ("scifact", "climate_fever", "hotpotqa_dev100"):
        for line in (DATA / name / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            texts.append(f"{row.get('title', '')} {row['text']}".strip())
    return texts


def make_chunks(n: int) -> list[Chunk]:
    words = " ".join(corpus_texts()).split()
    out = []
    for i in range(n):
        start = (i * 48) % max(1, len(words) - 48)
        text = " ".join(words[start : start + 48]) + f" #{i // 50_000}"
        out.append(Chunk(id=f"c{i}", doc_id=f"d{i // 8}", text=text, start=0, end=len(text)))
    return out


class FixedVectors(Encoder):
    """Query vectors fixed in advance, by query text (the embedding is not what is timed)."""

    name = "dense"
    dim = DIM

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        self.table = table

    def _embed(self, texts: Sequence[str], role: str, *, batch_size: int, show_progress: bool):
        return np.stack([self.table[t] for t in texts])


def timed(fn: Callable[[str], object], queries: Sequence[str]) -> list[float]:
    for q in queries[:5]:
        fn(q)
    out = []
    for q in queries:
        began = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - began) * 1000)
    return out


def row(name: str, ms: list[float], extra: str = "") -> None:
    p95 = sorted(ms)[int(0.95 * (len(ms) - 1))]
    print(f"{name:<44} {statistics.median(ms):9.2f} {p95:9.2f}  {extra}", flush=True)


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--chroma", action="store_true", help="also embedded Chroma HNSW")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    chunks = make_chunks(args.chunks)
    vectors = unit(rng, len(chunks))
    lines = (DATA / "scifact" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    queries = [json.loads(x)["text"] for x in lines][: args.queries]
    table = dict(zip(queries, unit(rng, len(queries)), strict=True))
    dense = FixedVectors(table)

    t0 = time.perf_counter()
    memory = MemoryStore(dim=DIM)
    memory.add(chunks, vectors)
    t1 = time.perf_counter()
    bm25 = BM25Store()
    bm25.add(chunks, BM25Encoder().embed_documents([c.text for c in chunks]))
    t2 = time.perf_counter()
    print(f"{len(chunks)} chunks; build: memory {t1 - t0:.1f} s, bm25 {t2 - t1:.1f} s")
    print(f"{'path (ms, query embedding excluded)':<44} {'p50':>9} {'p95':>9}")

    q_vectors = {q: table[q] for q in queries}
    row(
        "numpy exact top-10 (MemoryStore)",
        timed(lambda q: memory.search(q_vectors[q], 10), queries),
    )
    terms = {q: BM25Encoder().embed_queries([q])[0] for q in queries}
    row("BM25Store top-10", timed(lambda q: bm25.search(terms[q], 10), queries))
    members: list[Retriever] = [
        StoreRetriever(dense, memory, name="minilm"),
        StoreRetriever(BM25Encoder(), bm25, name="bm25"),
    ]
    fused = FusionRetriever(members, "default")
    row("fused dense + BM25 (default, 100 each)", timed(lambda q: fused.retrieve(q, 10), queries))
    runs = {q: {n: r[0] for n, r in fused.retrieve_runs([q], 100).items()} for q in queries}
    row("  of which the fusion step", timed(lambda q: fused.fuse_runs(runs[q], 10), queries))
    rrf = FusionRetriever(members, "rrf")
    row("fused dense + BM25 (rrf)", timed(lambda q: rrf.retrieve(q, 10), queries))
    if args.chroma:
        with tempfile.TemporaryDirectory() as tmp:
            t3 = time.perf_counter()
            chroma = ChromaStore(Path(tmp) / "chroma", "bench")
            chroma.add(chunks, vectors)
            print(f"chroma build {time.perf_counter() - t3:.1f} s")
            ms = timed(lambda q: chroma.search(q_vectors[q], 10), queries)
            hits = [
                len(
                    {c.id for c, _ in chroma.search(q_vectors[q], 10)}
                    & {c.id for c, _ in memory.search(q_vectors[q], 10)}
                )
                / 10
                for q in queries
            ]
            row("Chroma HNSW top-10 (embedded)", ms, f"recall@10 {statistics.mean(hits):.3f}")


if __name__ == "__main__":
    main()
