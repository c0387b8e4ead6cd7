"""The LlamaIndex adapter follows LlamaIndex's conventions, through a real index (hash + BM25):
nodes carry offsets and ``ref_doc_id``, the LLM and embedding views hold no internal fields and
no ``None``, and the node score is the relevance, so ``SimilarityPostprocessor`` cuts sensibly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.schema import MetadataMode  # noqa: E402

from rag.adapters.llamaindex import as_llamaindex_retriever  # noqa: E402
from rag.index import Index  # noqa: E402
from tests.adapter_corpus import index_fixture  # noqa: E402

INTERNAL = ("chunk_id", "doc_id", "context", "fused_score", "score_", "rank_", "relevance")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    yield from index_fixture(tmp_path_factory)


def view_keys(view: str) -> list[str]:
    return [line.split(": ", 1)[0] for line in view.splitlines()]


def test_nodes_carry_offsets_and_ref_doc_id(index: Index) -> None:
    nodes = as_llamaindex_retriever(index.retriever(), k=6).retrieve("volcanic ash aircraft")
    hits = index.retriever().retrieve("volcanic ash aircraft", k=6)
    assert [n.node.node_id for n in nodes] == [h.chunk.id for h in hits]
    for scored, hit in zip(nodes, hits, strict=True):
        node = scored.node
        assert (node.start_char_idx, node.end_char_idx) == (hit.chunk.start, hit.chunk.end)
        assert node.ref_doc_id == hit.chunk.doc_id
        assert None not in node.metadata.values()
        assert all(isinstance(v, str | int | float | bool) for v in node.metadata.values())
    top = nodes[0].node
    text = Path(top.metadata["source"]).read_text("utf-8")
    assert text[top.start_char_idx : top.end_char_idx] == top.get_content()
    assert top.metadata["section"] == "Volcanoes > Ash"


def test_llm_and_embed_views_hold_no_internal_fields_and_no_none(index: Index) -> None:
    li = as_llamaindex_retriever(index.retriever(), k=6)
    for scored in li.retrieve("moon pulls the oceans"):
        node = scored.node
        llm = node.get_metadata_str(MetadataMode.LLM)
        embed = node.get_metadata_str(MetadataMode.EMBED)
        for view in (llm, embed):
            assert "None" not in view
            assert not any(key.startswith(INTERNAL) for key in view_keys(view)), view
        assert f"source: {node.metadata['source']}" in llm
        assert f"section: {node.metadata['section']}" in llm
        assert set(view_keys(embed)) <= {"title", "section"}
        assert "source:" not in embed  # a path says nothing about what the text means
        assert node.get_content(MetadataMode.LLM).endswith(node.get_content())
        if node.metadata["source"].endswith(".pdf"):
            assert f"page_label: {node.metadata['page_label']}" in llm
            assert "page: " not in llm  # 0-based: easy to cite wrongly
        else:
            assert "page" not in node.metadata


def test_pdf_nodes_have_pages(index: Index) -> None:
    top = as_llamaindex_retriever(index.retriever(), k=1).retrieve("glaciers carve valleys")[0]
    assert top.node.metadata["source"].endswith("coast.pdf")
    assert (top.node.metadata["page"], top.node.metadata["page_label"]) == (2, "3")


def test_similarity_postprocessor_cuts_on_relevance(index: Index) -> None:
    from llama_index.core.postprocessor import SimilarityPostprocessor

    nodes = as_llamaindex_retriever(index.retriever(), k=6).retrieve("green tea oxidation")
    assert all(0.0 <= n.score <= 1.0 for n in nodes)  # relevance, not a z-score sum
    assert all(n.score == pytest.approx(n.node.metadata["relevance"]) for n in nodes)
    kept = SimilarityPostprocessor(similarity_cutoff=0.5).postprocess_nodes(nodes)
    kept_ids = {n.node.node_id for n in kept}
    dropped = [n for n in nodes if n.node.node_id not in kept_ids]
    assert kept and dropped
    assert kept[0].node.metadata["source"].endswith("tea.txt")
    assert all(n.score >= 0.5 for n in kept)
    assert all(n.score < 0.5 for n in dropped)


def test_query_engine_source_nodes_have_offsets(index: Index) -> None:
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    engine = RetrieverQueryEngine.from_args(
        as_llamaindex_retriever(index.retriever(), k=2), llm=MockLLM(max_tokens=8)
    )
    response = engine.query("why do bees dance?")
    top = response.source_nodes[0].node
    assert top.metadata["source"].endswith("bees.md")
    assert top.start_char_idx == 0 and top.end_char_idx == len(top.get_content())
    assert top.ref_doc_id == top.metadata["source"]


def test_id_view_keeps_only_the_chunk_id(index: Index) -> None:
    """The view LlamaIndex's own fusion gets (rag.eval.peers): same hash for the same chunk."""
    li = as_llamaindex_retriever(index.retriever(), k=2, metadata="id")
    node = li.retrieve("honey bees")[0].node
    assert node.metadata == {"id": node.node_id}
    assert node.start_char_idx is not None and node.ref_doc_id is not None
