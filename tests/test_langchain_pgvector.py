"""LangChain's standard retriever suite through the usual adapter, over an index whose dense
encoder lives in PostgreSQL + pgvector, fused with BM25 (tests/pg_fixtures.py's server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("bm25s")
from langchain_tests.integration_tests import RetrieversIntegrationTests  # noqa: E402

from rag.adapters.langchain import as_langchain_retriever, langchain_retriever_class  # noqa: E402
from rag.index import EncoderEntry, Index, IndexConfig  # noqa: E402
from rag.stores import PgVectorStore  # noqa: E402
from tests.fakes import register_hash_encoder  # noqa: E402
from tests.pg_fixtures import pg_dsn  # noqa: E402, F401 - the session's PostgreSQL
from tests.test_langchain_adapter import TEXTS  # noqa: E402

_BUILT: dict[str, Any] = {}


@pytest.fixture(scope="module")
def pg_retriever(
    pg_dsn: str,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    from connectors.directory import load_directory

    with pytest.MonkeyPatch.context() as mp:
        register_hash_encoder(mp)
        mp.setenv("RAG_PGVECTOR_DSN", pg_dsn)
        root = Path(tmp_path_factory.mktemp("lc-pg"))
        docs = root / "docs"
        docs.mkdir()
        for name, text in TEXTS.items():
            (docs / name).write_text(text, "utf-8")
        config = IndexConfig(
            encoders=[EncoderEntry("hash"), EncoderEntry("bm25", kind="lexical")],
            store="pgvector",
            chunker_options={"max_tokens": 32},
        )
        index = Index(root / "idx", config)
        index.ingest(load_directory(docs))
        assert isinstance(index.store("hash").store, PgVectorStore)  # under the text-less view
        _BUILT["retriever"] = index.retriever()
        yield _BUILT["retriever"]
        _BUILT.clear()


class TestRagRetrieverPgvector(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _built(self, pg_retriever: Any) -> None:
        """The suite's properties take no fixtures: build the index before each test."""

    @property
    def retriever_constructor(self) -> type:
        return langchain_retriever_class()

    @property
    def retriever_constructor_params(self) -> dict:
        return {"retriever": _BUILT["retriever"]}

    @property
    def retriever_query_example(self) -> str:
        return "why does volcanic ash ground planes?"


def test_fused_hits_come_from_pgvector_and_bm25(pg_retriever: Any) -> None:
    docs = as_langchain_retriever(pg_retriever, k=2).invoke("volcanic ash jet engines")
    assert len(docs) == 2 and docs[0].metadata["source"].endswith("volcano.md")
