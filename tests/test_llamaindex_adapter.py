"""Our retrievers work inside LlamaIndex: as a BaseRetriever and in a query engine (offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("llama_index.core")

from rag.adapters.llamaindex import as_llamaindex_retriever  # noqa: E402
from tests.test_langchain_adapter import _index_root, shared_retriever  # noqa: E402, F401


def test_nodes_carry_text_score_and_citation_metadata() -> None:
    li = as_llamaindex_retriever(shared_retriever(), k=2)
    nodes = li.retrieve("why does volcanic ash ground planes?")
    assert len(nodes) == 2
    top = nodes[0]
    assert top.node.metadata["source"].endswith("volcano.md")
    assert top.node.metadata["section"] == "Volcanoes > Ash"
    assert top.score == pytest.approx(top.node.metadata["score"])
    assert nodes[0].score >= nodes[1].score
    text = Path(top.node.metadata["source"]).read_text("utf-8")
    node = top.node
    assert text[node.start_char_idx : node.end_char_idx] == node.get_content()


def test_runs_inside_a_llamaindex_query_engine() -> None:
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    engine = RetrieverQueryEngine.from_args(
        as_llamaindex_retriever(shared_retriever(), k=3), llm=MockLLM(max_tokens=8)
    )
    response = engine.query("how do bees tell the hive where flowers are?")
    sources = [n.node.metadata["source"] for n in response.source_nodes]
    assert len(sources) == 3
    assert sources[0].endswith("bees.md")
