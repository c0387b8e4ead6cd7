"""The LangChain adapter follows LangChain's conventions, through a real index (hash + BM25):
flat scalar metadata (``start_index``, 0-based ``page`` with ``page_label``, ``score``...) that
vector stores accept, ``search_kwargs``, pickling, and ``ainvoke``."""

from __future__ import annotations

import asyncio
import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core")

from rag.adapters.langchain import as_langchain_retriever, langchain_retriever_class  # noqa: E402
from rag.index import Index  # noqa: E402
from rag.types import Chunk, Hit, SourceScore  # noqa: E402
from tests.adapter_corpus import index_fixture  # noqa: E402

SCALARS = (str, int, float, bool)


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    yield from index_fixture(tmp_path_factory)


class FakeRetriever:
    """Picklable, and records what it was asked (module level so pickle can find it)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def retrieve(self, query: str, k: int = 10, **options: Any) -> list[Hit]:
        self.calls.append({"query": query, "k": k, **options})
        hits = []
        for rank, relevance in enumerate([0.9, 0.6, 0.2, 0.1][:k], start=1):
            chunk = Chunk(
                id=f"c{rank}", doc_id="doc", text=f"text {rank}", start=rank, end=rank + 6
            )
            components = {"enc": SourceScore(score=relevance * 2, rank=rank)}
            hits.append(Hit(chunk, 10.0 - rank, rank, "fake", components, relevance=relevance))
        return hits


def assert_flat(metadata: dict[str, Any]) -> None:
    for key, value in metadata.items():
        assert isinstance(value, SCALARS), (key, value)  # no None, no dict, no list


def assert_same_metadata(ids: list[str], metadatas: list[dict], docs: list) -> None:
    """What a store gives back is what went in (floats up to the store's rounding)."""
    by_id = dict(zip(ids, metadatas, strict=True))
    assert set(by_id) == {d.id for d in docs}
    for doc in docs:
        back = by_id[doc.id]
        assert set(back) == set(doc.metadata)
        for key, value in doc.metadata.items():
            if isinstance(value, float):
                assert back[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
            else:
                assert back[key] == value and type(back[key]) is type(value), key


def test_metadata_follows_langchain_conventions(index: Index) -> None:
    docs = as_langchain_retriever(index.retriever(), k=6).invoke("volcanic ash aircraft")
    assert len(docs) == 6
    for doc in docs:
        assert_flat(doc.metadata)
    top = docs[0].metadata
    assert top["source"].endswith("volcano.md")
    assert top["section"] == "Volcanoes > Ash"
    assert "page" not in top and "page_label" not in top  # markdown has no pages
    text = Path(top["source"]).read_text("utf-8")
    assert text[top["start_index"] : top["end_index"]] == docs[0].page_content
    hit = index.retriever().retrieve("volcanic ash aircraft", k=1)[0]
    assert top["chunk_id"] == hit.chunk.id == docs[0].id
    assert top["doc_id"] == hit.chunk.doc_id
    assert top["score"] == pytest.approx(hit.relevance)  # relevance where fitted
    assert top["fused_score"] == pytest.approx(hit.score)
    # per-encoder components flattened
    for name in ("hash", "bm25"):
        assert top[f"rank_{name}"] == hit.components[name].rank
        assert top[f"score_{name}"] == pytest.approx(hit.components[name].score)
    assert "components" not in top


def test_pdf_pages_are_zero_based_with_a_printed_label(index: Index) -> None:
    lc = as_langchain_retriever(index.retriever(), k=1)
    glacier = lc.invoke("glaciers carve valleys")[0].metadata
    assert glacier["source"].endswith("coast.pdf")
    assert glacier["section"] == "Ice"
    assert glacier["page"] == 2  # the third page, as LangChain's PDF loaders count
    assert glacier["page_label"] == "3"
    hit = index.retriever().retrieve("glaciers carve valleys", k=1)[0]
    assert hit.chunk.page == 3  # the project counts from 1
    assert glacier["start_index"] == hit.chunk.start


def test_fused_documents_survive_a_vector_store_round_trip(index: Index) -> None:
    docs = as_langchain_retriever(index.fused_retriever(), k=6).invoke("moon pulls the oceans")
    assert any("score_bm25" in d.metadata for d in docs)
    try:
        from langchain_chroma import Chroma
    except ImportError:
        Chroma = None  # noqa: N806
    if Chroma is not None:
        from langchain_core.embeddings import DeterministicFakeEmbedding

        store = Chroma.from_documents(
            docs,
            DeterministicFakeEmbedding(size=8),
            ids=[d.id for d in docs],
            collection_name=f"lc-round-trip-{uuid.uuid4().hex[:8]}",
        )
        back = store.get(ids=[d.id for d in docs], include=["metadatas"])
        assert_same_metadata(back["ids"], back["metadatas"], docs)
        return
    import chromadb

    try:
        from langchain_community.vectorstores.utils import filter_complex_metadata
    except ImportError:  # not installed here: the same rule, its default allowed types
        for doc in docs:
            assert_flat(doc.metadata)
    else:
        kept = filter_complex_metadata(docs)
        assert [d.metadata for d in kept] == [d.metadata for d in docs]  # nothing had to go
    client = chromadb.EphemeralClient(chromadb.Settings(anonymized_telemetry=False))
    name = f"lc-round-trip-{uuid.uuid4().hex[:8]}"  # the in-memory system is process-wide
    collection = client.create_collection(name, embedding_function=None)
    collection.add(  # chromadb validates every metadata value here
        ids=[d.id for d in docs],
        documents=[d.page_content for d in docs],
        metadatas=[d.metadata for d in docs],
        embeddings=[[float(i), 1.0] for i in range(len(docs))],
    )
    back = collection.get(ids=[d.id for d in docs], include=["metadatas"])
    assert_same_metadata(back["ids"], back["metadatas"], docs)
    with pytest.raises((ValueError, TypeError)):  # what nested metadata used to meet
        collection.add(ids=["x"], metadatas=[{"components": {"bm25": 1.0}}], embeddings=[[0, 1]])
    client.delete_collection(name)


def test_search_kwargs_k_filter_and_min_score(index: Index) -> None:
    retriever = index.retriever()
    assert len(as_langchain_retriever(retriever, search_kwargs={"k": 2}).invoke("tides")) == 2
    pdf_only = as_langchain_retriever(retriever, k=6, search_kwargs={"filter": {"type": "pdf"}})
    docs = pdf_only.invoke("tides and bees")
    assert docs and all(d.metadata["source"].endswith(".pdf") for d in docs)
    md = pdf_only.invoke("tides and bees", where={"source": "*.md"})  # a call's filter wins
    assert md and all(d.metadata["source"].endswith(".md") for d in md)
    third = pdf_only.invoke("glaciers", where={"page": "3"})
    assert [d.metadata["page_label"] for d in third] == ["3"]
    cut = as_langchain_retriever(retriever, k=6, search_kwargs={"min_score": 0.5})
    kept = cut.invoke("green tea oxidation")
    assert kept and kept[0].metadata["source"].endswith("tea.txt")
    assert all(d.metadata["score"] >= 0.5 for d in kept)
    assert len(kept) < len(as_langchain_retriever(retriever, k=6).invoke("green tea oxidation"))


def test_search_kwargs_reach_the_wrapped_retriever() -> None:
    fake = FakeRetriever()
    lc = as_langchain_retriever(fake, search_kwargs={"k": 3, "filter": {"type": "pdf"}})
    assert [d.id for d in lc.invoke("q")] == ["c1", "c2", "c3"]
    assert fake.calls[-1] == {"query": "q", "k": 3, "where": {"type": "pdf"}}
    lc.invoke("q", k=2, where={"section": "Intro"})
    assert fake.calls[-1] == {"query": "q", "k": 2, "where": {"section": "Intro"}}
    plain = as_langchain_retriever(fake, k=4).invoke("q", min_score=0.5)
    assert [d.metadata["score"] for d in plain] == [0.9, 0.6]
    assert "where" not in fake.calls[-1]  # no filter: plain ``retrieve(query, k)``
    with pytest.raises(ValueError, match="unknown search option"):
        as_langchain_retriever(fake, search_kwargs={"fetchk": 20})
    with pytest.raises(ValueError, match="unknown search option"):
        lc.invoke("q", top_n=3)


def test_retriever_pickles_with_its_settings() -> None:
    lc = as_langchain_retriever(FakeRetriever(), k=2, search_kwargs={"min_score": 0.1})
    copy = pickle.loads(pickle.dumps(lc))
    assert type(copy) is langchain_retriever_class()
    assert type(copy).__module__ == "rag.adapters.langchain_retriever"
    assert copy.k == 2 and copy.search_kwargs == {"min_score": 0.1}
    docs = copy.invoke("q")
    assert [d.metadata["rank_enc"] for d in docs] == [1, 2]
    assert_flat(docs[0].metadata)


def test_ainvoke_and_abatch_match_invoke(index: Index) -> None:
    lc = as_langchain_retriever(index.retriever(), k=3, search_kwargs={"filter": {"type": "pdf"}})

    async def both() -> tuple[list, list]:
        one = await lc.ainvoke("moon and tides")
        many = await lc.abatch(["moon and tides", "glaciers"])
        return one, many

    one, many = asyncio.run(both())
    assert [d.id for d in one] == [d.id for d in lc.invoke("moon and tides")]
    assert [d.id for d in many[0]] == [d.id for d in one]
    assert all(d.metadata["source"].endswith(".pdf") for docs in many for d in docs)


def test_readme_usage(index: Index) -> None:
    retriever = as_langchain_retriever(index.retriever(), k=4)
    docs = retriever.invoke("why do bees dance?")
    assert len(docs) == 4
    assert docs[0].metadata["source"].endswith("bees.md")
