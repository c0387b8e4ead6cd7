"""Measured, not asserted: add time and query latency for 20k random 384-d vectors.

Run with ``.venv/bin/pytest tests/test_stores_benchmark.py -m benchmark -s``; the figures are
printed and attached to the test report (``record_property``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from rag.base import Store
from rag.stores import ChromaStore, MemoryStore
from rag.types import Chunk

N, DIM, QUERIES, K = 20_000, 384, 100, 10


@pytest.mark.benchmark
@pytest.mark.parametrize("kind", ["memory", "memory-persisted", "chroma"])
def test_add_and_query_speed(
    kind: str, tmp_path: Path, record_property, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(N, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.normal(size=(QUERIES, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    chunks = [
        Chunk(id=f"c{i}", doc_id=f"d{i // 10}", text=f"chunk {i}", start=0, end=8) for i in range(N)
    ]
    store: Store
    if kind == "memory":
        store = MemoryStore()
    elif kind == "memory-persisted":
        store = MemoryStore.open(tmp_path / "m")
    else:
        store = ChromaStore(tmp_path / "c", "bench")

    start = time.perf_counter()
    for lo in range(0, N, 1000):  # an ingest adds in batches
        store.add(chunks[lo : lo + 1000], vectors[lo : lo + 1000])
    add_s = time.perf_counter() - start

    latencies = []
    found = []
    for q in queries:
        t = time.perf_counter()
        found.append(store.search(q, k=K))
        latencies.append(time.perf_counter() - t)
    t = time.perf_counter()
    store.search_many(queries, k=K)
    batch_s = time.perf_counter() - t

    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :K]
    recall = np.mean(
        [
            len({c.id for c, _ in hits} & {f"c{i}" for i in row}) / K
            for hits, row in zip(found, exact, strict=True)
        ]
    )
    figures = {
        "store": kind,
        "add_s": round(add_s, 2),
        "query_p50_ms": round(1000 * float(np.median(latencies)), 2),
        "query_p95_ms": round(1000 * float(np.percentile(latencies, 95)), 2),
        "search_many_100_ms": round(1000 * batch_s, 1),
        "recall_at_10": round(float(recall), 3),
    }
    for key, value in figures.items():
        record_property(key, value)
    with capsys.disabled():
        print(f"\n{figures}")
    assert store.count() == N
    if isinstance(store, ChromaStore):
        store.close()
