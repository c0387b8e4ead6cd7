"""The cross-encoder reranking stage: over any retriever, with a real (tiny, random) CrossEncoder
model folder made offline, and with a word-overlap reranker whose preferences are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.base import Retriever
from rag.retrieval.rerank import CrossEncoderReranker, RerankingRetriever, rerank
from rag.types import Chunk, Hit
from tests.fakes import tiny_cross_encoder

TEXTS = [
    "the barometer fell all night",
    "fusion adds reciprocal ranks",
    "chunks keep their context window",
    "the storm came after the barometer fell",
    "install the package with the set-up script",
]


def chunk(i: int) -> Chunk:
    return Chunk(id=f"c{i}", doc_id=f"d{i}", text=TEXTS[i], start=0, end=len(TEXTS[i]))


class ListRetriever(Retriever):
    """Returns the chunks in a fixed order (and records the keyword options it was given)."""

    name = "first"

    def __init__(self) -> None:
        self.options: dict = {}

    def retrieve(self, query: str, k: int = 10, **options) -> list[Hit]:  # noqa: ANN003
        self.options = options
        return [
            Hit(chunk=chunk(i), score=1.0 - i / 10, rank=i + 1, source=self.name)
            for i in range(min(k, len(TEXTS)))
        ]


class OverlapReranker:
    """Scores a text by the number of query words it holds."""

    name = "overlap"

    def score(self, query: str, texts: list[str]) -> np.ndarray:
        words = set(query.split())
        return np.array([len(words & set(t.split())) for t in texts], dtype=np.float32)


def test_reranking_promotes_what_the_reranker_prefers() -> None:
    base = ListRetriever()
    retriever = RerankingRetriever(base, OverlapReranker(), candidates=5)
    hits = retriever.retrieve("storm after the barometer fell", k=2, where={"type": "md"})
    assert [h.chunk.id for h in hits] == ["c3", "c0"]  # first-stage ranks 4 and 1
    assert [h.rank for h in hits] == [1, 2]
    assert hits[0].components["first"].rank == 4 and hits[0].components["overlap"].rank == 1
    assert hits[0].score == 5.0
    assert base.options == {"where": {"type": "md"}}  # options reach the first stage


def test_rerank_is_stable_on_ties() -> None:
    hits = ListRetriever().retrieve("q", 3)
    assert [h.chunk.id for h in rerank(hits, [0.0, 0.0, 0.0], 3, "r")] == ["c0", "c1", "c2"]


def test_a_real_cross_encoder_folder_reranks_by_its_own_scores(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import CrossEncoder

    folder = tiny_cross_encoder(tmp_path / "tiny-ce", TEXTS)
    reranker = CrossEncoderReranker(folder)
    retriever = RerankingRetriever(ListRetriever(), reranker, candidates=5)
    query = "storm after the barometer fell"
    hits = retriever.retrieve(query, k=5)
    direct = CrossEncoder(str(folder), device="cpu").predict([(query, t) for t in TEXTS])
    expected = [f"c{i}" for i in np.argsort(-np.asarray(direct), kind="stable")]
    assert [h.chunk.id for h in hits] == expected
    assert np.allclose([h.score for h in hits], np.sort(np.asarray(direct))[::-1], atol=1e-5)
    assert retriever.name == "first+rerank:tiny-ce"


def test_a_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no cross-encoder model folder"):
        CrossEncoderReranker(tmp_path / "nope")


def test_rag_search_reranks_with_a_model_folder(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    pytest.importorskip("sentence_transformers")
    import json

    import rag
    from rag.cli import main

    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(TEXTS):
        (docs / f"{i}.txt").write_text(text + "\n", encoding="utf-8")
    rag.Index.create(tmp_path / "idx", encoders=["bm25"], store="memory").ingest(
        rag.load_directory(docs)
    )
    model = tiny_cross_encoder(tmp_path / "ce", TEXTS)
    argv = ["search", "the barometer fell", "--index", str(tmp_path / "idx"), "--json"]
    assert main([*argv, "--rerank", str(model), "-k", "2"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and all("rerank:ce" in r["components"] for r in rows)
    assert main([*argv, "--rerank", str(tmp_path / "nope")]) == 2
    assert "no cross-encoder model folder" in capsys.readouterr().err


def test_a_reranked_retriever_keeps_its_order_through_both_adapters() -> None:
    pytest.importorskip("langchain_core")
    pytest.importorskip("llama_index.core")
    from rag.adapters.langchain import as_langchain_retriever
    from rag.adapters.llamaindex import as_llamaindex_retriever

    retriever = RerankingRetriever(ListRetriever(), OverlapReranker(), candidates=5)
    query = "storm after the barometer fell"
    docs = as_langchain_retriever(retriever, k=2).invoke(query)
    assert [d.page_content for d in docs] == [TEXTS[3], TEXTS[0]]
    assert docs[0].metadata["rank_overlap"] == 1 and docs[0].metadata["rank_first"] == 4
    nodes = as_llamaindex_retriever(retriever, k=2).retrieve(query)
    assert [n.node.get_content() for n in nodes] == [TEXTS[3], TEXTS[0]]
    assert nodes[0].node.metadata["score_overlap"] == 5.0
