"""The LangChain adapter passes langchain-tests' standard retriever suite, offline."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core")
from langchain_tests.integration_tests import RetrieversIntegrationTests  # noqa: E402

from rag.adapters.langchain import as_langchain_retriever, langchain_retriever_class  # noqa: E402
from rag.index import EncoderEntry, Index, IndexConfig  # noqa: E402

TEXTS = {
    "volcano.md": "# Volcanoes\n\nMagma rises through the crust and erupts as lava.\n\n"
    "## Ash\n\nVolcanic ash grounds aircraft because it melts inside jet engines.\n",
    "bees.md": "# Bees\n\nHoney bees dance to tell their hive where flowers are.\n",
    "tea.txt": "Green tea is steamed or pan-fired soon after picking to stop oxidation.\n",
    "rust.md": "# Rust\n\nIron rusts when oxygen and water react with it.\n",
}


_ROOTS: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def _index_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The shared index's folder: under pytest's temporary folders, not left in $TMPDIR."""
    _ROOTS.insert(0, tmp_path_factory.mktemp("rag-lc"))
    yield
    shared_retriever.cache_clear()


@lru_cache(maxsize=1)
def shared_retriever() -> Any:
    from connectors.directory import load_directory

    root = _ROOTS[0]  # pytest's temporary folder for this module
    docs = root / "docs"
    docs.mkdir()
    for name, text in TEXTS.items():
        (docs / name).write_text(text, "utf-8")
    index = Index(
        root / "idx",
        IndexConfig(
            encoders=[EncoderEntry("minilm")], store="memory", chunker_options={"max_tokens": 32}
        ),
    )
    index.ingest(load_directory(docs))
    return index.retriever()


class TestRagRetrieverStandard(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type:
        return langchain_retriever_class()

    @property
    def retriever_constructor_params(self) -> dict:
        return {"retriever": shared_retriever()}

    @property
    def retriever_query_example(self) -> str:
        return "why does volcanic ash ground planes?"


def test_metadata_carries_source_page_section_offsets_and_score() -> None:
    lc = as_langchain_retriever(shared_retriever(), k=2)
    docs = lc.invoke("why does volcanic ash ground planes?")
    assert len(docs) == 2
    top = docs[0]
    assert top.metadata["source"].endswith("volcano.md")
    assert top.metadata["section"] == "Volcanoes > Ash"
    assert "page" not in top.metadata  # no pages in markdown, and no None values
    assert top.metadata["score"] >= docs[1].metadata["score"]
    text = Path(top.metadata["source"]).read_text("utf-8")
    assert text[top.metadata["start_index"] : top.metadata["end_index"]] == top.page_content
