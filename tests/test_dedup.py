"""De-duplication (copies of a passage fold into one hit) and MMR diversity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fakes import register_hash_encoder

from rag.index import EncoderEntry, Index, IndexConfig
from rag.retrieval.diversity import (
    collapse,
    diversify,
    mmr,
    near_duplicates,
    normalise,
    resemblance,
    shingles,
)
from rag.types import Chunk, Document, Hit, Span, sha256_hex

PASSAGE = (
    "The apt-get update command refreshes the package lists from every configured archive, "
    "while apt-get upgrade installs the newest versions of the packages already installed "
    "and never removes a package or installs a new one."
)
COPIES = {
    "manual/ch02.html": PASSAGE.replace(" ", "\n  ").replace("apt-get", "<code>apt-get</code>"),
    "manual/reference.pdf": PASSAGE.replace("the package lists", "thepackagelists")
    .replace("configured", "config-\nured")
    .replace(", ", ","),
    "manual/reference.txt": PASSAGE.upper(),
}
QUERY = "apt-get update refreshes the package lists"


def others(n: int = 20) -> dict[str, str]:
    """Distinct notes that share a few of the query's words (each a different passage)."""
    topics = ["mirrors", "keys", "pinning", "backports", "proxies", "caches", "sources", "hooks"]
    return {
        f"notes/n{i:02d}.md": f"Note {i}: apt and the package {topics[i % 8]} number {i} "
        f"need {i * 13} steps on host{i}, see section {i}.{i % 3} of guide {i * 7}."
        for i in range(n)
    }


def hit(i: int, text: str, score: float, source: str | None = None) -> Hit:
    src = source or f"doc{i}.txt"
    c = Chunk(id=f"c{i}", doc_id=src, text=text, start=0, end=len(text), source=src)
    return Hit(chunk=c, score=score, rank=i + 1, source="test")


# -- the similarity --------------------------------------------------------------------------------


def test_copies_resemble_each_other_and_other_passages_do_not() -> None:
    assert normalise("Con-\nfig URED, x_y!") == "configuredxy"
    sets = [shingles(t) for t in COPIES.values()]
    assert all(resemblance(a, b) >= 0.85 for a in sets for b in sets)  # markup costs a little
    notes = [shingles(t) for t in others().values()]
    assert max(resemblance(a, b) for a in sets for b in notes) < 0.3
    assert max(resemblance(a, b) for a in notes for b in notes if a is not b) < 0.8
    half = PASSAGE[: len(PASSAGE) // 2]
    assert near_duplicates(half, PASSAGE)  # a copy cut at another boundary is still a copy
    assert not near_duplicates("", PASSAGE) and near_duplicates("", "  ")


def test_collapse_keeps_the_best_copy_and_lists_the_others() -> None:
    hits = [
        hit(0, COPIES["manual/reference.pdf"], 0.9, "a.pdf"),
        hit(1, "something else entirely, about keyboards and layouts", 0.8),
        hit(2, COPIES["manual/ch02.html"], 0.7, "a.html"),
        hit(3, "yet another passage about printers and paper trays", 0.6),
        hit(4, COPIES["manual/reference.txt"], 0.5, "a.txt"),
    ]
    out = collapse(hits, k=2)
    assert [h.chunk.id for h in out] == ["c0", "c1"] and [h.rank for h in out] == [1, 2]
    assert [c.source for c in out[0].duplicates] == ["a.html", "a.txt"]  # found past the cut
    assert out[1].duplicates == ()
    assert [h.chunk.id for h in collapse(hits)] == ["c0", "c1", "c3"]
    assert [h.chunk.id for h in diversify(hits, 3, dedup=False)] == ["c0", "c1", "c2"]


def test_mmr_changes_the_order_on_a_crafted_case() -> None:
    # two near-copies on top, a different passage a little below: MMR lifts the latter
    hits = [
        hit(0, "the shell prompt shows the user name and the host name", 1.0),
        hit(1, "the shell prompt shows the user name and the host name today", 0.95),
        hit(2, "virtual consoles are switched with alt and a function key", 0.9),
        hit(3, "nothing much", 0.0),
    ]
    assert [h.chunk.id for h in mmr(hits, 3, 1.0)] == ["c0", "c1", "c2"]  # relevance only
    diverse = mmr(hits, 3, 0.5)
    assert [h.chunk.id for h in diverse] == ["c0", "c2", "c1"] and diverse[1].rank == 2
    vectors = {"c0": np.array([1.0, 0]), "c1": np.array([1.0, 0]), "c2": np.array([0.6, 0.8])}
    vectors["c3"] = np.array([0.0, 1.0])
    assert [h.chunk.id for h in mmr(hits, 2, 0.5, vectors=vectors)] == ["c0", "c2"]
    assert [h.chunk.id for h in diversify(hits, 2, mmr_lambda=0.5)] == ["c0", "c2"]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mmr(hits, 2, 1.5)


# -- through an index: fused and single-encoder retrievers, and the CLI ------------------------------


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Index:
    register_hash_encoder(monkeypatch)
    entries = [EncoderEntry("hash"), EncoderEntry("bm25", kind="lexical")]
    built = Index(tmp_path / "idx", IndexConfig(encoders=entries, store="memory"))
    texts = {**COPIES, **others()}
    built.ingest(
        Document(src, text, src, sha256_hex(text), spans=[Span(0, len(text))])
        for src, text in texts.items()
    )
    return built


def test_index_search_collapses_the_three_copies(index: Index) -> None:
    plain = index.search(QUERY, 3, dedup=False)
    assert {h.chunk.source for h in plain} == set(COPIES)  # dedup=False: the three copies
    hits = index.search(QUERY, 3)
    assert len(hits) == 3 and [h.rank for h in hits] == [1, 2, 3]  # still k distinct hits
    top = hits[0]
    assert top.chunk.source in COPIES
    assert {c.source for c in top.duplicates} == set(COPIES) - {top.chunk.source}
    assert all(h.chunk.source.startswith("notes/") and not h.duplicates for h in hits[1:])
    assert top.components  # still a fused hit, with each encoder's score


@pytest.mark.parametrize("encoder", ["hash", "bm25"])
def test_encoder_retrievers_dedup_by_default(index: Index, encoder: str) -> None:
    hits = index.retriever(encoder).retrieve(QUERY, 4)
    assert len(hits) == 4 and len(hits[0].duplicates) == 2
    assert len({h.chunk.source for h in hits}) == 4
    plain = index.retriever(encoder, dedup=False).retrieve(QUERY, 4)
    assert sum(h.chunk.source in COPIES for h in plain) == 3


def test_mmr_through_the_index(index: Index) -> None:
    hits = index.search(QUERY, 4, dedup=False, mmr=0.3)
    assert len(hits) == 4 and hits[0].chunk.source in COPIES
    assert sum(h.chunk.source in COPIES for h in hits) < 3  # the copies no longer fill the top


def test_cli_shows_where_the_copies_are(index: Index, capsys: pytest.CaptureFixture[str]) -> None:
    from rag.cli import main

    args = ["search", QUERY, "--index", str(index.root), "-k", "3"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert text.count("also in: ") == 1 and text.count("manual/") == 3
    assert main([*args, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and len(rows[0]["duplicates"]) == 2
    assert set(rows[0]["duplicates"][0]) == {"source", "page", "section"}
    assert main([*args, "--json", "--no-dedup"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["source"] for r in rows} == set(COPIES) and all(not r["duplicates"] for r in rows)
    assert main([*args, "--json", "--mmr", "0.3"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    with pytest.raises(SystemExit):
        main([*args, "--mmr", "2"])
    assert "MMR lambda" in capsys.readouterr().err


def test_a_short_chunk_a_long_one_contains_is_not_its_copy() -> None:
    from rag.retrieval.diversity import near_duplicates

    long = (
        "Confident RAG generates one answer from the hits of each embedder and keeps the "
        "answer the language model is most confident in, measured from its token probabilities."
    )
    assert not near_duplicates("# Confident RAG", "# Confident RAG\n\n" + long)
    assert near_duplicates(long, long.replace(" ", "  ").upper())
