"""An index's fused retriever (MiniLM + BM25 + WordLlama) behind the LangChain adapter passes
langchain-tests' standard retriever suite, offline, and its documents carry every encoder's
score and rank."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import pytest

pytest.importorskip("langchain_core")
from langchain_tests.integration_tests import RetrieversIntegrationTests  # noqa: E402

from rag.adapters.langchain import as_langchain_retriever, langchain_retriever_class  # noqa: E402
from rag.index import EncoderEntry, Index, IndexConfig  # noqa: E402
from rag.retrieval.multi import FusionRetriever  # noqa: E402

TEXTS = {
    "volcano.md": "# Volcanoes\n\nMagma rises through the crust and erupts as lava.\n\n"
    "## Ash\n\nVolcanic ash grounds aircraft because it melts inside jet engines.\n",
    "bees.md": "# Bees\n\nHoney bees dance to tell their hive where flowers are.\n",
    "tea.txt": "Green tea is steamed or pan-fired soon after picking to stop oxidation.\n",
    "rust.md": "# Rust\n\nIron rusts when oxygen and water react with it.\n",
}
ENCODERS = ("minilm", "bm25", "wordllama")

pytestmark = pytest.mark.slow  # loads MiniLM and WordLlama, ingests, runs the standard suite


_ROOTS: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def _index_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The shared index's folder: under pytest's temporary folders, not left in $TMPDIR."""
    _ROOTS.insert(0, tmp_path_factory.mktemp("rag-fusion-lc"))
    yield
    shared_index.cache_clear()
    shared_retriever.cache_clear()


@lru_cache(maxsize=1)
def shared_index() -> Index:
    from connectors.directory import load_directory

    root = _ROOTS[0]  # pytest's temporary folder for this module
    docs = root / "docs"
    docs.mkdir()
    for name, text in TEXTS.items():
        (docs / name).write_text(text, "utf-8")
    entries = [EncoderEntry("minilm"), EncoderEntry("bm25", kind="lexical")]
    entries.append(EncoderEntry("wordllama"))
    index = Index(
        root / "idx",
        IndexConfig(encoders=entries, store="memory", chunker_options={"max_tokens": 32}),
    )
    index.ingest(load_directory(docs))
    return index


@lru_cache(maxsize=1)
def shared_retriever() -> FusionRetriever:
    return shared_index().fused_retriever()


class TestFusionRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type:
        return langchain_retriever_class()

    @property
    def retriever_constructor_params(self) -> dict:
        return {"retriever": shared_retriever()}

    @property
    def retriever_query_example(self) -> str:
        return "why does volcanic ash ground planes?"


def test_fused_documents_carry_each_encoders_score_and_rank() -> None:
    lc = as_langchain_retriever(shared_retriever(), k=3)
    docs = lc.invoke("why does volcanic ash ground planes?")
    assert len(docs) == 3
    top = docs[0]
    assert top.metadata["source"].endswith("volcano.md")
    assert top.metadata["section"] == "Volcanoes > Ash"
    assert top.metadata["retriever"] == "fusion:default"
    # components flattened (vector stores take scalars only); the ash chunk is found by all
    for name in ENCODERS:
        assert top.metadata[f"rank_{name}"] >= 1
        assert isinstance(top.metadata[f"score_{name}"], float)
    assert top.metadata["rank_bm25"] == 1
    assert [d.metadata["rank"] for d in docs] == [1, 2, 3]
    fused = [d.metadata["fused_score"] for d in docs]
    assert fused[0] >= fused[1] >= fused[2]
    # the adapter's score is the relevance: [0, 1], one scale for every query
    assert all(d.metadata["score"] == d.metadata["relevance"] for d in docs)
    assert all(0.0 <= d.metadata["score"] <= 1.0 for d in docs)


def test_fused_retriever_over_a_subset_and_with_calibration() -> None:
    index = shared_index()
    two = index.fused_retriever("rrf", encoders=["bm25", "wordllama"])
    hits = two.retrieve("honey bees", k=2)
    assert set(hits[0].components) <= {"bm25", "wordllama"}
    assert hits[0].chunk.source.endswith("bees.md")
    calibrated = index.fused_retriever("combsum-zscore@calibration", calibration_queries=8)
    assert set(calibrated.calibration.stats) == set(ENCODERS)
    assert calibrated.calibration.num_queries <= 8
    top = calibrated.retrieve("iron and oxygen", k=1)[0]
    assert top.chunk.source.endswith("rust.md")
