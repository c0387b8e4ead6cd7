"""The LangChain retriever's ``search_type`` follows ``VectorStoreRetriever``'s: similarity,
MMR (``lambda_mult``, ``fetch_k``) and a score threshold, on a real fused index."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("langchain_core")

from connectors.directory import load_directory  # noqa: E402
from rag.adapters.langchain import as_langchain_retriever  # noqa: E402
from rag.index import EncoderEntry, Index, IndexConfig  # noqa: E402
from tests.fakes import register_hash_encoder  # noqa: E402

# Three near-copies of one passage and two other passages that answer the query less well.
TEXTS = {
    f"copy{n}.md": f"# Ash {n}\n\nVolcanic ash grounds aircraft: it melts inside jet engines{'.' * n}\n"
    for n in range(1, 4)
} | {
    "lava.md": "# Lava\n\nVolcanic eruptions send lava down the slopes and ash into the sky.\n",
    "bees.md": "# Bees\n\nHoney bees dance to tell the hive where the flowers are.\n",
}
QUERY = "why does volcanic ash ground aircraft jet engines"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    root = tmp_path_factory.mktemp("lc-search-types")
    (root / "docs").mkdir()
    for name, text in TEXTS.items():
        (root / "docs" / name).write_text(text, "utf-8")
    with pytest.MonkeyPatch.context() as mp:
        register_hash_encoder(mp)
        config = IndexConfig(encoders=[EncoderEntry("hash"), EncoderEntry("bm25", "lexical")])
        built = Index(root / "idx", IndexConfig(encoders=config.encoders, store="memory"))
        built.ingest(load_directory(root / "docs"))
        yield built


def sources(docs: list) -> list[str]:  # noqa: ANN001
    return [Path(d.metadata["source"]).name for d in docs]


def test_mmr_trades_copies_for_other_passages(index: Index) -> None:
    base = index.retriever(dedup=False)
    plain = as_langchain_retriever(base, k=3).invoke(QUERY)
    assert all(name.startswith("copy") for name in sources(plain))  # the copies fill the top
    diverse = as_langchain_retriever(
        base, k=3, search_type="mmr", search_kwargs={"lambda_mult": 0.3, "fetch_k": 10}
    ).invoke(QUERY)
    assert sources(diverse)[0] == sources(plain)[0]  # the best hit stays first
    assert any(not name.startswith("copy") for name in sources(diverse))
    assert base.mmr is None  # the wrapped retriever is left as it was
    # lambda_mult 1 keeps the relevance order
    same = as_langchain_retriever(
        base, k=3, search_type="mmr", search_kwargs={"lambda_mult": 1.0}
    ).invoke(QUERY)
    assert sources(same) == sources(plain)


def test_score_threshold_type_needs_and_applies_a_threshold(index: Index) -> None:
    base = index.retriever(dedup=False)
    plain = as_langchain_retriever(base, k=5).invoke(QUERY)
    scores = sorted(d.metadata["score"] for d in plain)
    cut = (scores[1] + scores[-1]) / 2  # between the scores: some pass, some do not
    typed = as_langchain_retriever(
        base, k=5, search_type="similarity_score_threshold", search_kwargs={"score_threshold": cut}
    )
    kept = [d for d in plain if d.metadata["score"] >= cut]
    assert 0 < len(kept) < len(plain) and sources(typed.invoke(QUERY)) == sources(kept)
    missing = as_langchain_retriever(base, k=5, search_type="similarity_score_threshold")
    with pytest.raises(ValueError, match="score_threshold"):
        missing.invoke(QUERY)


def test_unknown_search_type_and_mmr_options_without_mmr_are_refused(index: Index) -> None:
    base = index.retriever(dedup=False)
    with pytest.raises(ValueError, match="search_type"):
        as_langchain_retriever(base, search_type="similarity_search")
    with pytest.raises(ValueError, match="mmr"):
        as_langchain_retriever(base, search_kwargs={"lambda_mult": 0.5}).invoke(QUERY)
