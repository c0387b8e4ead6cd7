"""The inputs and brute-force references of the store contract (test_stores_contract.py).

Chunk and query texts are a few words each; a codec per store kind turns them into what that
store takes (hash vectors for dense stores, ``BM25Encoder`` terms for lexical ones) and scores
them by brute force. The tests here check the references themselves: the BM25 brute force
against bm25s, the hash vectors for being stable unit vectors.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
import pytest

from rag.base import Store
from rag.types import Chunk

DIM = 16
WORDS = (  # noqa: SIM905 - one word list, easier to read as text
    "apple river stone cloud maple violet copper ember falcon glacier harbor island jungle "
    "lantern meadow nectar orchid pepper quartz saddle timber walnut yarrow zephyr anchor "
    "basket candle dragon engine forest garden hammer ivory jacket kettle ladder mirror "
    "needle ocean pillow rocket silver tunnel velvet window"
).split()


def text_of(key: str, lo: int = 3, hi: int = 10) -> str:
    """A few words chosen by a hash of ``key`` (stable across runs)."""
    rng = np.random.default_rng(int(hashlib.sha256(key.encode()).hexdigest()[:12], 16))
    return " ".join(rng.choice(WORDS, size=int(rng.integers(lo, hi))))


def make_chunks(n: int, prefix: str = "c") -> list[Chunk]:
    return [
        Chunk(
            id=f"{prefix}{i}",
            doc_id=f"doc{i % 7}",
            text=text_of(f"{prefix}{i}"),
            start=10 * i,
            end=10 * i + 9,
            source=f"/data/doc{i % 7}.md",
            section=("Intro", f"Part {i % 3}"),
            page=i if i % 2 else None,
            metadata={"i": i},
        )
        for i in range(n)
    ]


def query_texts(n: int, seed: int) -> list[str]:
    return [text_of(f"query {seed}-{j}", 2, 5) for j in range(n)]


class DenseCodec:
    """Hash vectors: a pseudo-random unit vector per text (no ties), cosine by numpy."""

    kind = "dense"
    mismatch = "vectors"

    @staticmethod
    def vector(text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
        v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
        return v / np.linalg.norm(v)

    def docs(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.vector(t) for t in texts]) if texts else np.zeros((0, DIM))

    def query(self, text: str) -> np.ndarray:
        return self.vector(text)

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.docs(texts)

    def brute(self, query: str, texts: Sequence[str]) -> np.ndarray:
        return self.docs(texts) @ self.query(query)


class LexicalCodec:
    """BM25Encoder terms; Lucene BM25 (k1=1.5, b=0.75) by brute force, one term at a time."""

    kind = "lexical"
    mismatch = "term lists"

    def __init__(self) -> None:
        from rag.encoders.bm25 import BM25Encoder

        self.encoder = BM25Encoder()

    def docs(self, texts: Sequence[str]) -> list[list[str]]:
        return self.encoder.embed_documents(list(texts))

    def query(self, text: str) -> list[str]:
        return self.encoder.embed_query(text)

    def queries(self, texts: Sequence[str]) -> list[list[str]]:
        return self.encoder.embed_queries(list(texts))

    def brute(self, query: str, texts: Sequence[str]) -> np.ndarray:
        docs, terms = self.docs(texts), self.query(query)
        n, k1, b = len(docs), 1.5, 0.75
        avgdl = sum(map(len, docs)) / max(n, 1)
        scores = np.zeros(n)
        for term in terms:
            df = sum(term in d for d in docs)
            if df == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            for i, d in enumerate(docs):
                tf = d.count(term)
                scores[i] += idf * tf / (tf + k1 * (1 - b + b * len(d) / avgdl))
        return scores


Codec = DenseCodec | LexicalCodec


def expected_ranking(
    codec: Codec, query: str, live: Sequence[Chunk], k: int
) -> tuple[list[str], np.ndarray]:
    """The brute-force top ``k`` over ``live`` (in insertion order): ids and scores. Lexical
    stores return only chunks sharing a term with the query; ties go by insertion order."""
    scores = codec.brute(query, [c.text for c in live])
    order = np.lexsort((np.arange(len(live)), -scores))
    if codec.kind == "lexical":
        order = order[scores[order] > 0]
    top = order[:k]
    return [live[i].id for i in top], scores[top]


def check_search(store: Store, codec: Codec, query: str, live: Sequence[Chunk], k: int) -> None:
    ids, scores = expected_ranking(codec, query, live, k)
    found = store.search(codec.query(query), k=k)
    assert [c.id for c, _ in found] == ids
    np.testing.assert_allclose([s for _, s in found], scores, rtol=1e-5, atol=1e-5)


# Every field exercised: unicode (accents, CJK, emoji, RTL, U+2028, NUL, quotes, backslash),
# empty strings, section tuples (empty, one empty heading), page None / 0 / int, nested metadata.
ODD_CHUNKS = [
    Chunk(
        id="odd-1",
        doc_id="docs/ünïcödé.md",
        text='Grüße, 世界! 🚀\nline two\t"quoted" \\ back\u2028after LS\x00nul',
        start=3,
        end=57,
        source="/home/ü/docs/ünïcödé.md",
        title="Tïtle — with dash",
        section=("Kapitel 1", "Ünter §2", "🚀 rocket"),
        page=None,
        context="before. " * 5 + "Grüße",
        context_start=0,
        context_end=400,
        metadata={
            "lang": "de",
            "n": 3,
            "big": 2**53 + 1,
            "f": 0.1,
            "ok": True,
            "none": None,
            "list": [1, "two", {"x": []}],
            "nested": {"é": "ü", "deep": {"k": [1.5, False]}},
        },
    ),
    Chunk(id="odd-2", doc_id="d2", text="", start=5, end=5, title="", section=(), page=7),
    Chunk(
        id="odd-3",
        doc_id="d3",
        text="RTL עברית العربية",
        start=0,
        end=17,
        section=("",),
        page=0,
        metadata={"tags": []},
    ),
]


def assert_same_chunk(got: Chunk, want: Chunk) -> None:
    assert got == want  # dataclass equality skips metadata (compare=False)
    assert got.metadata == want.metadata
    assert type(got.section) is tuple and type(got.page) is type(want.page)


# -- the references, checked -------------------------------------------------------------------


def test_lexical_brute_force_matches_bm25s() -> None:
    bm25s = pytest.importorskip("bm25s")
    pytest.importorskip("Stemmer")
    codec = LexicalCodec()
    texts = [c.text for c in make_chunks(50)]
    reference = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    reference.index(codec.docs(texts), show_progress=False)
    for query in query_texts(5, seed=1):
        expected = reference.get_scores(codec.query(query))
        np.testing.assert_allclose(codec.brute(query, texts), expected, rtol=1e-6, atol=1e-6)
        assert expected.max() > 0


def test_dense_hash_vectors_are_stable_unit_vectors() -> None:
    codec = DenseCodec()
    vectors = codec.docs(["apple river", "apple river", "stone"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    assert vectors[0].tobytes() == vectors[1].tobytes() != vectors[2].tobytes()
    assert make_chunks(3)[2].text == make_chunks(3)[2].text and make_chunks(2)[0].text
