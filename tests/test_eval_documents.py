"""Documents ranked by their best chunk (``rag.retrieval.documents``) over the product's
retriever and stores: hand-computed max-pooling, the depth that keeps the top k exact."""

from __future__ import annotations

import numpy as np
import pytest

from rag.base import Retriever
from rag.retrieval.documents import DocumentRanker, best_per_document
from rag.types import Chunk, Hit
from tests.fakes import HashEncoder


def chunk(cid: str, doc: str, text: str = "") -> Chunk:
    text = text or cid
    return Chunk(id=cid, doc_id=doc, text=text, start=0, end=len(text))


def hits(*items: tuple[str, str, float]) -> list[Hit]:
    return [Hit(chunk(c, d), s, r, "x") for r, (c, d, s) in enumerate(items, start=1)]


def test_a_document_scores_its_best_chunk() -> None:
    found = hits(("c5", "b", 0.95), ("c2", "a", 0.9), ("c4", "c", 0.7), ("c3", "b", 0.5))
    assert best_per_document(found) == {"b": 0.95, "a": 0.9, "c": 0.7}
    assert list(best_per_document(found, k=2)) == ["b", "a"]
    # unsorted input is sorted; equal scores keep the order of the documents' best hits
    unsorted = hits(("c1", "a", 0.1), ("c2", "b", 0.9), ("c3", "a", 0.9), ("c4", "c", 0.9))
    assert list(best_per_document(unsorted).items()) == [("b", 0.9), ("a", 0.9), ("c", 0.9)]
    assert best_per_document([]) == {}


class Fixed(Retriever):
    """Returns its hits (best first) and records the depth it was asked for."""

    name = "fixed"

    def __init__(self, found: list[Hit]) -> None:
        self.found = found
        self.depths: list[int] = []

    def retrieve(self, query: str, k: int = 10) -> list[Hit]:
        self.depths.append(k)
        return self.found[:k]


def test_depth_covers_every_chunk_of_the_top_documents() -> None:
    found = hits(*[(f"c{i}", f"d{i // 3}", 1.0 - i / 100) for i in range(12)])  # 3 per doc
    inner = Fixed(found)
    ranker = DocumentRanker(inner, chunks_per_document=3, max_depth=10)
    assert ranker.name == "fixed" and ranker.depth(2) == 6 and ranker.depth(5) == 10
    # depth 2 holds one document, depth 4 two, but d1's best ties the last hit: then the cap
    assert list(ranker.rank("q", k=2)) == ["d0", "d1"] and inner.depths == [2, 4, 6]
    spread = Fixed(hits(("a1", "a", 0.9), ("b1", "b", 0.8), ("a2", "a", 0.1), ("c1", "c", 0.0)))
    ranker = DocumentRanker(spread, chunks_per_document=3)
    assert ranker.rank("q", k=2) == {"a": 0.9, "b": 0.8} and spread.depths == [2, 4]
    few = Fixed(hits(("a1", "a", 0.9)))  # fewer hits than asked: the retriever has no more
    assert DocumentRanker(few, chunks_per_document=3).rank("q", k=2) == {"a": 0.9}
    assert few.depths == [2]
    assert ranker.rank_many([], k=3) == [] and DocumentRanker(inner).rank("q", 0) == {}
    with pytest.raises(ValueError):
        DocumentRanker(inner, chunks_per_document=0)


def test_over_a_memory_store_by_hand() -> None:
    from rag.stores.memory import MemoryStore

    encoder = HashEncoder()
    chunks = [
        chunk("x1", "x", "alpha beta"),
        chunk("x2", "x", "gamma delta"),
        chunk("y1", "y", "alpha gamma delta epsilon"),
    ]
    store = MemoryStore()
    store.add(chunks, encoder.embed_documents([c.text for c in chunks]))
    ranker = DocumentRanker.over(encoder, store, chunks_per_document=2, name="hash")
    assert ranker.max_depth == 3 and ranker.retriever.name == "hash"
    run = ranker.rank("gamma delta", k=10)
    # x's second chunk is the query (1.0); y shares 2 of its 4 words: 2 / (sqrt(2) * 2)
    assert list(run) == ["x", "y"]
    assert run == pytest.approx({"x": 1.0, "y": 2 / (np.sqrt(2) * 2)}, abs=1e-6)


def test_over_a_bm25_store_only_matching_documents() -> None:
    pytest.importorskip("bm25s")
    from rag.encoders.bm25 import BM25Encoder
    from rag.stores.bm25 import BM25Store

    encoder = BM25Encoder()
    chunks = [chunk("a1", "a", "volcano lava"), chunk("b1", "b", "honey bees")]
    store = BM25Store()
    store.add(chunks, encoder.embed_documents([c.text for c in chunks]))
    run = DocumentRanker.over(encoder, store).rank("lava flows", k=10)
    assert list(run) == ["a"] and run["a"] > 0  # b shares no term: not retrieved


def test_deepening_equals_one_search_at_the_full_depth() -> None:
    from rag.retrieval.store_retriever import StoreRetriever
    from rag.stores.memory import MemoryStore

    rng = np.random.default_rng(0)
    docs = [f"d{i}" for i in rng.integers(0, 40, size=300)]  # up to ~15 chunks per document
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    vectors[50:60] = vectors[40]  # exact ties across documents
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [chunk(f"c{i}", d) for i, d in enumerate(docs)]
    store = MemoryStore()
    store.add(chunks, vectors)

    class Vectors:  # queries are given as vectors
        name = "v"

        def embed_queries(self, queries):
            return np.stack([vectors[int(q)] + 0.01 * float(q) for q in queries])

    retriever = StoreRetriever(Vectors(), store)
    per_doc = max(docs.count(d) for d in set(docs))
    ranker = DocumentRanker(retriever, chunks_per_document=per_doc, max_depth=300)
    queries = [str(i) for i in range(0, 300, 7)]
    for k in (1, 5, 20):
        full = [best_per_document(h, k) for h in retriever.retrieve_many(queries, ranker.depth(k))]
        deepened = ranker.rank_many(queries, k)
        assert [list(r.items()) for r in deepened] == [list(r.items()) for r in full]
