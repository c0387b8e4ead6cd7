"""LangChain's standard VectorStore suite over our memory and Chroma stores, the adapter's own
behaviour (filters, MMR, metadata round trip) and the Embeddings adapter over our encoders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("langchain_core")
from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import DeterministicFakeEmbedding  # noqa: E402
from langchain_tests.integration_tests import VectorStoreIntegrationTests  # noqa: E402

from rag.adapters.langchain import (  # noqa: E402
    as_langchain_embeddings,
    as_langchain_vectorstore,
)
from rag.adapters.langchain_embeddings import RagEmbeddings  # noqa: E402
from rag.adapters.langchain_vectorstore import RagVectorStore  # noqa: E402
from rag.stores import MemoryStore  # noqa: E402
from rag.types.filters import Where  # noqa: E402
from tests.fakes import HashEncoder, register_hash_encoder  # noqa: E402


class TestRagVectorStoreMemory(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self) -> Iterator[RagVectorStore]:
        yield RagVectorStore(self.get_embeddings(), MemoryStore())


class TestRagVectorStoreChroma(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self, tmp_path: Path) -> Iterator[RagVectorStore]:
        pytest.importorskip("chromadb")
        from rag.stores import ChromaStore

        store = ChromaStore(tmp_path / "chroma", "lc-standard")
        try:
            yield RagVectorStore(self.get_embeddings(), store)
        finally:
            store.close()


# -- the adapter's own behaviour ----------------------------------------------------------------

TEXTS = [
    "volcanic ash grounds planes",
    "the theme is configured in settings",
    "volcanic eruptions in iceland",
    "dark theme and light theme",
]
METAS = [
    {"source": "volcano.md", "page": 0, "tags": ["geo"]},
    {"source": "docs.md", "page": 2},
    {"source": "volcano.md", "page": 1},
    {"source": "docs.md", "nested": {"a": 1}},
]


@pytest.fixture()
def hash_store() -> RagVectorStore:
    return RagVectorStore.from_texts(
        TEXTS, RagEmbeddings(HashEncoder()), METAS, ids=["a", "b", "c", "d"]
    )


def test_metadata_round_trips_and_chunks_carry_source_and_page(
    hash_store: RagVectorStore,
) -> None:
    docs = hash_store.get_by_ids(["a", "d", "missing"])
    assert docs == [
        Document(id="a", page_content=TEXTS[0], metadata=METAS[0]),
        Document(id="d", page_content=TEXTS[3], metadata=METAS[3]),
    ]
    chunk = hash_store.store.get(["b"])[0]
    assert (chunk.doc_id, chunk.source, chunk.page) == ("docs.md", "docs.md", 3)
    docs[0].metadata["tags"].append("mutated")  # a returned copy, not the stored metadata
    assert hash_store.get_by_ids(["a"])[0].metadata["tags"] == ["geo"]


def test_metadata_round_trips_through_a_persisted_chroma_store(tmp_path: Path) -> None:
    pytest.importorskip("chromadb")
    from rag.stores import ChromaStore

    with ChromaStore(tmp_path / "db", "notes") as store:
        vs = RagVectorStore.from_texts(TEXTS, RagEmbeddings(HashEncoder()), METAS, store=store)
        ids = [d.id for d in vs.similarity_search("volcanic ash", k=4)]
        assert len(ids) == 4
    with ChromaStore(tmp_path / "db", "notes") as store:
        again = RagVectorStore(RagEmbeddings(HashEncoder()), store)
        docs = {d.page_content: d.metadata for d in again.get_by_ids(ids)}
        assert docs == dict(zip(TEXTS, METAS, strict=True))


def test_scores_are_cosine_similarities_best_first(hash_store: RagVectorStore) -> None:
    hits = hash_store.similarity_search_with_score("volcanic ash grounds planes", k=4)
    assert hits[0][0].id == "a" and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    relevance = hash_store.similarity_search_with_relevance_scores("volcanic ash", k=2)
    assert all(0.0 <= r <= 1.0 for _, r in relevance)


def test_unnormalised_embeddings_are_normalised() -> None:
    vs = RagVectorStore(DeterministicFakeEmbedding(size=8))
    vs.add_texts(["foo", "bar"], ids=["1", "2"])
    (doc, score), _ = vs.similarity_search_with_score("bar", k=2)
    assert doc.id == "2" and score == pytest.approx(1.0, abs=1e-5)


def test_dict_filter_gets_k_matches_beyond_the_first_candidates() -> None:
    texts = [f"volcanic ash report {i}" for i in range(40)] + ["theme settings"]
    metas = [{"kind": "news"} for _ in range(40)] + [{"kind": "docs"}]
    vs = RagVectorStore.from_texts(texts, RagEmbeddings(HashEncoder()), metas, fetch_factor=1)
    docs = vs.similarity_search("volcanic ash", k=1, filter={"kind": "docs"})
    assert [d.page_content for d in docs] == ["theme settings"]
    assert vs.similarity_search("volcanic", k=3, filter={"kind": "none"}) == []
    assert vs.similarity_search("volcanic", k=2, filter={"missing": None}) == []


def test_callable_filter_and_where(hash_store: RagVectorStore) -> None:
    docs = hash_store.similarity_search(
        "volcanic theme", k=4, filter=lambda d: d.metadata.get("page") == 1
    )
    assert [d.id for d in docs] == ["c"]
    docs = hash_store.similarity_search(
        "volcanic theme", k=4, where=Where.from_dict({"source": "docs.md"})
    )
    assert {d.id for d in docs} == {"b", "d"}
    docs = hash_store.similarity_search("volcanic", k=4, where={"page": 2})
    assert [d.id for d in docs] == ["c"]  # the 0-based LangChain page 1
    with pytest.raises(TypeError):
        hash_store.similarity_search("volcanic", filter=["source"])  # type: ignore[arg-type]


def test_search_by_vector_and_k_bounds(hash_store: RagVectorStore) -> None:
    vector = hash_store.embeddings.embed_query("dark theme and light theme")
    assert hash_store.similarity_search_by_vector(vector, k=1)[0].id == "d"
    assert len(hash_store.similarity_search("theme", k=50)) == 4
    assert hash_store.similarity_search("theme", k=0) == []


def test_mmr_prefers_diverse_results() -> None:
    texts = ["volcanic ash planes", "volcanic ash planes", "volcanic ash planes", "ash theme"]
    vs = RagVectorStore.from_texts(texts, RagEmbeddings(HashEncoder()), ids=["1", "2", "3", "4"])
    plain = [d.id for d in vs.similarity_search("volcanic ash planes", k=2)]
    diverse = vs.max_marginal_relevance_search("volcanic ash planes", k=2, fetch_k=4)
    assert plain == ["1", "2"]
    assert [d.id for d in diverse] == ["1", "4"]
    only = vs.max_marginal_relevance_search("ash", k=2, filter={"missing": 1})
    assert only == []


async def test_async_mmr_and_search(hash_store: RagVectorStore) -> None:
    docs = await hash_store.amax_marginal_relevance_search("volcanic ash", k=2, fetch_k=4)
    assert docs[0].id == "a"
    hits = await hash_store.asimilarity_search("theme settings", k=1, filter={"page": 2})
    assert [d.id for d in hits] == ["b"]


def test_delete_everything_and_by_ids(hash_store: RagVectorStore) -> None:
    assert hash_store.delete(["a", "nope"]) is True
    assert hash_store.store.count() == 3
    hash_store.delete()
    assert hash_store.store.count() == 0
    assert hash_store.similarity_search("volcanic") == []


def test_add_texts_checks_lengths_and_lossy_metadata(hash_store: RagVectorStore) -> None:
    with pytest.raises(ValueError, match="metadatas"):
        hash_store.add_texts(["x", "y"], [{}])
    with pytest.raises(ValueError, match="ids"):
        hash_store.add_texts(["x"], ids=["1", "2"])
    with pytest.raises(ValueError, match="round-trip"):
        hash_store.add_texts(["x"], [{"pair": (1, 2)}])
    assert hash_store.add_texts([]) == []
    ids = hash_store.add_texts(["x", "y"], ids=[None, "given"])  # type: ignore[list-item]
    assert ids[1] == "given" and len(ids[0]) == 36


def test_a_lexical_store_is_refused() -> None:
    from rag.stores import BM25Store

    with pytest.raises(ValueError, match="dense"):
        RagVectorStore(RagEmbeddings(HashEncoder()), BM25Store())


def test_the_factories_build_the_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    register_hash_encoder(monkeypatch)
    emb = as_langchain_embeddings("hash", batch_size=8)
    assert isinstance(emb, RagEmbeddings) and emb.name == "hash" and emb.batch_size == 8
    vs = as_langchain_vectorstore(emb)
    assert isinstance(vs, RagVectorStore) and isinstance(vs.store, MemoryStore)
    assert vs.embeddings is emb


# -- the Embeddings adapter ---------------------------------------------------------------------


def test_embeddings_over_the_hash_encoder() -> None:
    emb = RagEmbeddings(HashEncoder())
    docs = emb.embed_documents(["volcanic ash", "theme settings"])
    assert len(docs) == 2 and len(docs[0]) == HashEncoder.dim
    assert all(type(x) is float for x in docs[0])
    query = emb.embed_query("volcanic ash")
    assert np.allclose(query, docs[0]) and np.linalg.norm(query) == pytest.approx(1.0)
    assert emb.embed_documents([]) == []


async def test_embeddings_async_defaults() -> None:
    emb = RagEmbeddings(HashEncoder())
    assert await emb.aembed_query("ash") == emb.embed_query("ash")
    assert await emb.aembed_documents(["a", "b"]) == emb.embed_documents(["a", "b"])


def test_a_lexical_encoder_is_refused() -> None:
    pytest.importorskip("bm25s")
    with pytest.raises(ValueError, match="dense"):
        RagEmbeddings("bm25")
    with pytest.raises(ValueError, match="batch_size"):
        RagEmbeddings(HashEncoder(), batch_size=0)


@pytest.mark.slow
def test_embeddings_over_minilm_rank_a_paraphrase_first() -> None:
    pytest.importorskip("sentence_transformers")
    from rag.encoders.registry import get_spec

    if not get_spec("minilm").installed:
        pytest.skip("minilm is not installed")
    emb = RagEmbeddings("minilm")
    vs = RagVectorStore.from_texts(
        [
            "The central bank raised interest rates.",
            "Someone performs music with a guitar in front of an audience.",
        ],
        emb,
    )
    query = emb.embed_query("A man is playing a guitar on stage.")
    assert len(query) == 384
    assert (
        "guitar" in vs.similarity_search("A man is playing a guitar on stage.", k=1)[0].page_content
    )
