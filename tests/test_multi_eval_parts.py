"""The evaluation helpers of multi-embedder fusion: embedding cache, pseudo-queries, latency."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from rag.base import Encoder
from rag.eval.cache import CachedEncoder, EmbeddingCache, cache_key, encoder_fingerprint
from rag.eval.latency import measure, percentiles_ms
from rag.retrieval.calibration import pseudo_queries


class CountingEncoder(Encoder):
    """Deterministic vectors from text lengths; counts how many texts it really embedded."""

    def __init__(self, name: str = "count", dim: int = 3) -> None:
        self.name = name
        self.dim = dim
        self.embedded = 0

    def _embed(
        self, texts: Sequence[str], role: str, *, batch_size: int, show_progress: bool
    ) -> np.ndarray:
        self.embedded += len(texts)
        out = np.array([[len(t), 1.0, 2.0 if role == "query" else 0.0] for t in texts], np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_cached_encoder_reuses_vectors_and_keys_on_texts_and_model(tmp_path) -> None:
    inner = CountingEncoder()
    enc = CachedEncoder(inner, EmbeddingCache(tmp_path), label="toy/whole")
    first = enc.embed_units(["a", "bb"], ids=["d1", "d2"])
    again = CachedEncoder(inner, EmbeddingCache(tmp_path)).embed_documents(["a", "bb"])
    assert inner.embedded == 2  # the second call read the cache
    np.testing.assert_array_equal(first, again)
    (meta,) = tmp_path.glob("*.json")
    info = json.loads(meta.read_text())
    assert info["ids"] == ["d1", "d2"] and info["count"] == 2 and info["label"] == "toy/whole"
    enc.embed_documents(["a", "bbb"])  # other texts: a new entry
    CachedEncoder(CountingEncoder(dim=4), EmbeddingCache(tmp_path)).embed_documents(["a", "bb"])
    assert len(list(tmp_path.glob("*.npy"))) == 3
    # queries are never cached: latency is measured on the real encoder
    enc.embed_queries(["a"])
    enc.embed_queries(["a"])
    assert inner.embedded == 4 + 2


def test_cache_key_separates_text_boundaries_and_roles() -> None:
    fp = encoder_fingerprint(CountingEncoder())
    assert cache_key(fp, "document", ["ab", "c"]) != cache_key(fp, "document", ["a", "bc"])
    assert cache_key(fp, "document", ["a"]) != cache_key(fp, "query", ["a"])


def test_damaged_cache_entry_is_a_miss(tmp_path) -> None:
    inner = CountingEncoder()
    enc = CachedEncoder(inner, EmbeddingCache(tmp_path))
    enc.embed_documents(["x", "yy"])
    (npy,) = tmp_path.glob("*.npy")
    npy.write_bytes(b"not an array")
    vectors = enc.embed_documents(["x", "yy"])
    assert inner.embedded == 4 and vectors.shape == (2, 3)


def test_pseudo_queries_are_sentences_of_the_corpus_and_deterministic() -> None:
    texts = [
        f"Document {i} opens here. It studies topic number {i} in some depth today. Short."
        for i in range(50)
    ]
    a = pseudo_queries(texts, n=20, seed=1, min_words=4, max_words=6)
    assert a == pseudo_queries(texts, n=20, seed=1, min_words=4, max_words=6)
    assert len(a) == 20 and len(set(a)) == 20
    assert all(4 <= len(q.split()) <= 6 for q in a)
    assert all(any(q in t for t in texts) for q in a)
    assert a != pseudo_queries(texts, n=20, seed=2, min_words=4, max_words=6)
    with pytest.raises(ValueError):
        pseudo_queries(texts, n=0)


def test_latency_percentiles() -> None:
    stats = percentiles_ms([0.001, 0.002, 0.003, 0.004, 0.100])
    assert stats["p50_ms"] == pytest.approx(3.0)
    assert stats["p95_ms"] == pytest.approx(4.0 + 0.8 * 96.0)
    calls: list[int] = []
    result = measure(calls.append, [1, 2, 3, 4], warmup=2)
    assert calls == [1, 2, 1, 2, 3, 4] and result["n"] == 4
