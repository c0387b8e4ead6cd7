"""BM25Encoder (texts to terms, via the registry) and BM25Index (ranking, stemming, edge cases,
JSON + .npy persistence)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.encoders.bm25 import BM25Encoder, BM25Index, tokenize
from rag.encoders.registry import encoder_kind, load_encoder

DOCS = [
    "Vitamin D deficiency is linked to bone fractures in older adults.",
    "The runner runs every morning; running improves heart health.",
    "Gene expression in liver cells changes after fasting.",
    "Bone density scans detect osteoporosis early.",
    "",
]


def test_the_encoder_gives_stemmed_terms_without_stopwords() -> None:
    encoder = BM25Encoder()
    assert (encoder.name, encoder.kind) == ("bm25", "lexical")
    assert encoder.embed_documents(["The runner runs; running!", "", "the of and"]) == [
        ["runner", "run", "run"],
        [],
        [],
    ]
    assert encoder.embed_query("Vitamin D deficiency") == ["vitamin", "defici"]
    assert encoder.embed_queries(["bones"]) == encoder.embed_documents(["bones"]) == [["bone"]]
    assert BM25Encoder(stemmer=None).embed_query("running runs") == ["running", "runs"]
    with pytest.raises(TypeError):
        encoder.embed_documents("a bare string")  # type: ignore[arg-type]


def test_encoder_and_index_tokenise_alike() -> None:
    assert BM25Encoder().embed_documents(DOCS) == BM25Index().tokenize(DOCS) == tokenize(DOCS)


def test_the_registry_loads_the_encoder() -> None:
    encoder = load_encoder("bm25")
    assert isinstance(encoder, BM25Encoder) and encoder_kind("bm25") == "lexical"


@pytest.fixture
def index() -> BM25Index:
    return BM25Index().index(DOCS)


def test_document_with_the_query_terms_ranks_first(index: BM25Index) -> None:
    indices, scores = index.search(["vitamin deficiency fractures", "liver gene expression"], k=3)
    assert indices.shape == (2, 3) and scores.shape == (2, 3)
    assert indices[0, 0] == 0 and indices[1, 0] == 2
    assert scores.dtype == np.float32
    assert all(np.all(np.diff(row[row > 0]) <= 0) for row in scores)  # sorted, best first


def test_stemming_matches_word_forms(index: BM25Index) -> None:
    indices, scores = index.search(["run", "runs", "running"], k=1)
    assert indices[:, 0].tolist() == [1, 1, 1]
    assert scores[0, 0] > 0
    assert index.tokenize(["running runs"]) == [["run", "run"]]
    assert index.tokenize(["the of and"]) == [[]]  # stopwords are dropped


def test_k_larger_than_corpus_and_unmatched_slots(index: BM25Index) -> None:
    indices, scores = index.search(["bone"], k=50)
    assert indices.shape == (1, len(DOCS))
    assert sorted(indices[0, :2].tolist()) == [0, 3]  # the two documents that mention bone
    assert indices[0, 2:].tolist() == [-1, -1, -1]
    assert scores[0, 2:].tolist() == [0.0, 0.0, 0.0]


def test_empty_and_unknown_queries_return_no_hits(index: BM25Index) -> None:
    indices, scores = index.search(["", "zebra quantum", "the and of"], k=3)
    assert (indices == -1).all() and (scores == 0).all()
    empty_batch = index.search([], k=3)
    assert empty_batch[0].shape == (0, 3)
    with pytest.raises(TypeError):
        index.search("bone", k=3)  # a bare string is not a batch of queries


def test_empty_corpus() -> None:
    empty = BM25Index().index([])
    assert len(empty) == 0
    indices, scores = empty.search(["bone"], k=5)
    assert indices.shape == (1, 0) and scores.shape == (1, 0)


def test_scores_agree_with_bm25s_reference(index: BM25Index) -> None:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    reference = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    reference.index(bm25s.tokenize(DOCS, stopwords="en", stemmer=stemmer, show_progress=False))
    for query in ["bone fractures vitamin", "running heart", "liver cells cells"]:
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, return_ids=False)[0]
        expected = reference.get_scores(tokens)
        np.testing.assert_allclose(index.scores(query), expected, rtol=1e-5, atol=1e-6)


def test_k1_and_b_change_the_scores() -> None:
    docs = ["bone bone bone bone", "bone fracture healing in adults over sixty years"]
    default = BM25Index().index(docs).scores("bone")
    saturated = BM25Index(k1=0.1, b=0.0).index(docs).scores("bone")
    assert default[0] / default[1] > saturated[0] / saturated[1]
    with pytest.raises(ValueError):
        BM25Index(b=1.5)


def test_save_load_round_trip_without_pickle(index: BM25Index, tmp_path: Path) -> None:
    folder = tmp_path / "bm25"
    index.save(folder)
    (folder / "chunk_ids.json").write_text("[]")  # callers may keep their own files beside it
    files = sorted(p.name for p in folder.iterdir())
    assert all(name.endswith((".json", ".npy")) for name in files), files
    for npy in folder.glob("*.npy"):
        np.load(npy, allow_pickle=False)  # raises if any array needed pickle
    loaded = BM25Index.load(folder)
    queries = ["bone fractures", "running", "gene fasting liver", "zebra"]
    for got, want in zip(loaded.search(queries, k=4), index.search(queries, k=4), strict=True):
        np.testing.assert_array_equal(got, want)
    assert (loaded.k1, loaded.b, len(loaded)) == (index.k1, index.b, len(index))


def test_load_rejects_a_missing_or_foreign_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="bm25.json"):
        BM25Index.load(tmp_path)
    (tmp_path / "bm25.json").write_text('{"format": "other", "version": 7}')
    with pytest.raises(ValueError, match="not a rag.bm25 v1 index"):
        BM25Index.load(tmp_path)
