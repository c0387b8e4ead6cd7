"""BM25Store: scores equal to bm25s, incremental changes equal to a fresh build, crash safety.

The store contract (upsert, delete, get, reopen, no pickle) is in test_stores_contract.py; this
file checks what is particular to a lexical store whose statistics change with every write.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.stores import BM25Store, get_store
from rag.stores import _bm25_segments as seg
from rag.stores import bm25 as bm25_module
from rag.stores._codec import chunk_to_json
from rag.types import Chunk

pytest.importorskip("bm25s")
pytest.importorskip("Stemmer")

from rag.encoders.bm25 import BM25Encoder, BM25Index  # noqa: E402 - after the skips

DOCS = [
    "Vitamin D deficiency is linked to bone fractures in older adults.",
    "The runner runs every morning; running improves heart health.",
    "Gene expression in liver cells changes after fasting.",
    "Bone density scans detect osteoporosis early; bone loss bone health.",
    "",
    "Fasting lowers insulin and changes liver gene expression in mice.",
    "Heart rate variability in runners and cyclists after training.",
    "Osteoporosis drugs and fracture risk in vitamin D trials.",
]
QUERIES = [
    "bone fractures vitamin",
    "running heart",
    "liver cells cells",
    "gene expression fasting mice",
    "zebra",
    "",
]
ENCODER = BM25Encoder()


def chunks_for(texts: list[str], prefix: str = "c", doc_every: int = 3) -> list[Chunk]:
    return [
        Chunk(
            id=f"{prefix}{i}", doc_id=f"{prefix}-doc{i // doc_every}", text=t, start=0, end=len(t)
        )
        for i, t in enumerate(texts)
    ]


def filled(texts: list[str], **params: object) -> BM25Store:
    store = BM25Store(**params)  # type: ignore[arg-type]
    store.add(chunks_for(texts), ENCODER.embed_documents(texts))
    return store


def scores_by_id(store: BM25Store, query: str) -> dict[str, float]:
    return {c.id: s for c, s in store.search(ENCODER.embed_query(query), k=1000)}


@pytest.mark.parametrize("method", ["lucene", "robertson", "atire"])
def test_scores_and_order_equal_bm25s(method: str) -> None:
    import bm25s
    import Stemmer

    reference = bm25s.BM25(k1=1.5, b=0.75, method=method)
    stemmer = Stemmer.Stemmer("english")
    reference.index(bm25s.tokenize(DOCS, stopwords="en", stemmer=stemmer, show_progress=False))
    store = filled(DOCS, method=method)
    chunks = chunks_for(DOCS)
    for query in QUERIES:
        terms = ENCODER.embed_query(query)
        known = [t for t in terms if t in reference.vocab_dict]
        expected = reference.get_scores(known) if known else np.zeros(len(DOCS), np.float32)
        np.testing.assert_allclose(store.scores(terms), expected, rtol=1e-6, atol=1e-6)
        order = [i for i in np.lexsort((np.arange(len(DOCS)), -expected)) if expected[i] > 0]
        found = store.search(terms, k=5)
        assert [c.id for c, _ in found] == [chunks[i].id for i in order[:5]]
        np.testing.assert_allclose([s for _, s in found], expected[order[:5]], rtol=1e-6)


@pytest.mark.parametrize("method", ["lucene", "robertson", "atire"])
def test_scores_are_bit_identical_to_bm25index(method: str) -> None:
    index = BM25Index(method=method).index(DOCS)
    store = filled(DOCS, method=method)
    for query in QUERIES:
        np.testing.assert_array_equal(store.scores(ENCODER.embed_query(query)), index.scores(query))


def test_encoder_tokenises_like_bm25index() -> None:
    assert ENCODER.kind == "lexical" and ENCODER.name == "bm25"
    assert ENCODER.embed_documents(DOCS) == BM25Index().tokenize(DOCS)
    assert ENCODER.embed_query("Running runs of the runner") == ["run", "run", "runner"]


def incremental(store: BM25Store) -> list[str]:
    """Add A, add B, delete part of A, re-add some of it changed; returns the final live texts."""
    a_texts, b_texts = DOCS[:5], DOCS[5:]
    a, b = chunks_for(a_texts, "a"), chunks_for(b_texts, "b")
    store.add(a, ENCODER.embed_documents(a_texts))
    store.add(b, ENCODER.embed_documents(b_texts))
    store.delete(["a1", "a3"])
    store.delete_documents(["b-doc0"])  # b0, b1, b2
    again = [replace(a[3], text="bone marrow and bone fractures"), a[1]]
    store.add(again, ENCODER.embed_documents([c.text for c in again]))
    return ["a0", "a2", "a4", "a3", "a1"]


def fresh_equivalent() -> BM25Store:
    texts = [DOCS[0], DOCS[2], DOCS[4], "bone marrow and bone fractures", DOCS[1]]
    ids = ["a0", "a2", "a4", "a3", "a1"]
    store = BM25Store()
    chunks = [
        Chunk(id=i, doc_id="x", text=t, start=0, end=len(t))
        for i, t in zip(ids, texts, strict=True)
    ]
    store.add(chunks, ENCODER.embed_documents(texts))
    return store


@pytest.mark.parametrize("persisted", [False, True])
def test_incremental_changes_score_like_a_fresh_store(persisted: bool, tmp_path: Path) -> None:
    store = BM25Store.open(tmp_path / "s") if persisted else BM25Store()
    live = incremental(store)
    if persisted:
        store = BM25Store.open(tmp_path / "s", create=False)
    assert store.count() == len(live) and store.existing_ids(live + ["b0", "b3"]) == set(live)
    fresh = fresh_equivalent()
    for query in [*QUERIES, "bone marrow", "runner heart morning"]:
        assert scores_by_id(store, query) == scores_by_id(fresh, query)  # exactly equal
    store.compact()
    assert len(store._segments) == 1
    for query in QUERIES:
        assert scores_by_id(store, query) == scores_by_id(fresh, query)


WORDS = "bone heart liver gene vitamin fracture runner fasting insulin mice cells density"


def test_random_changes_match_a_fresh_store_after_every_step(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    store = BM25Store.open(tmp_path / "s")
    texts: dict[str, str] = {}
    words = WORDS.split()
    queries = [ENCODER.embed_query(" ".join(rng.choice(words, 3))) for _ in range(6)]
    covered = False  # several segments, some with tombstones
    for step in range(40):
        op = rng.choice(["add", "add", "add", "upsert", "delete", "delete", "delete_documents"])
        if op == "add" or not texts:
            ids = [f"s{step}-{i}" for i in range(int(rng.integers(1, 40)))]
        elif op == "upsert":
            ids = list(rng.choice(sorted(texts), size=min(5, len(texts)), replace=False))
        if op in ("add", "upsert") or not texts:
            batch = [" ".join(rng.choice(words, int(rng.integers(0, 12)))) for _ in ids]
            chunks = [
                Chunk(id=i, doc_id=i.split("-")[0], text=t, start=0, end=len(t))
                for i, t in zip(ids, batch, strict=True)
            ]
            store.add(chunks, ENCODER.embed_documents(batch))
            texts.update(zip(ids, batch, strict=True))
        elif op == "delete":
            gone = list(rng.choice(sorted(texts), size=min(7, len(texts)), replace=False))
            store.delete(gone)
            for i in gone:
                del texts[i]
        else:
            doc = sorted(texts)[0].split("-")[0]
            store.delete_documents([doc])
            texts = {i: t for i, t in texts.items() if i.split("-")[0] != doc}
        # the same live chunks, in the store's order, added at once to a new store
        order = [s.docs.chunk(r) for s in store._segments for r in np.flatnonzero(s.live).tolist()]
        assert sorted(c.id for c in order) == sorted(texts)
        fresh = BM25Store()
        fresh.add(order, ENCODER.embed_documents([texts[c.id] for c in order]))
        for terms in queries:
            got = [(c.id, v) for c, v in store.search(terms, k=15)]
            assert got == [(c.id, v) for c, v in fresh.search(terms, k=15)]
        segments = store._segments
        covered |= len(segments) > 2 and any(len(s.dead) for s in segments)
    assert covered
    reopened = BM25Store.open(tmp_path / "s", create=False)
    for terms in queries:
        assert reopened.search(terms, k=15) == store.search(terms, k=15)


def test_ties_go_by_insertion_and_a_re_added_chunk_moves_last() -> None:
    store = BM25Store()
    same = chunks_for(["bone health"] * 4)
    store.add(same, ENCODER.embed_documents([c.text for c in same]))
    query = ENCODER.embed_query("bone")
    assert [c.id for c, _ in store.search(query, k=4)] == ["c0", "c1", "c2", "c3"]
    store.add([same[1]], ENCODER.embed_documents(["bone health"]))
    assert [c.id for c, _ in store.search(query, k=4)] == ["c0", "c2", "c3", "c1"]
    assert [c.id for c, _ in store.search(query, k=2)] == ["c0", "c2"]


def test_only_chunks_sharing_a_term_are_returned() -> None:
    store = filled(DOCS)
    assert store.search(ENCODER.embed_query("zebra"), k=5) == []
    assert store.search([], k=5) == []
    assert {c.id for c, _ in store.search(ENCODER.embed_query("bone"), k=50)} == {"c0", "c3"}


def test_a_small_add_leaves_the_big_segment_alone(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    store = BM25Store.open(folder)
    texts = [f"{DOCS[i % 8]} copy {i}" for i in range(400)]
    store.add(chunks_for(texts), ENCODER.embed_documents(texts))
    base = json.loads((folder / "meta.json").read_text())["segments"][0]["name"]
    written = {p: p.stat().st_mtime_ns for p in (folder / base).iterdir()}
    for n in range(30):  # thirty small files
        small = chunks_for([f"new text number {n}", "bone again"], prefix=f"n{n}-")
        store.add(small, ENCODER.embed_documents([c.text for c in small]))
    store.delete_documents(["c-doc5"])
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["segments"][0]["name"] == base and meta["segments"][0]["dead"] == 3
    kept = {p: p.stat().st_mtime_ns for p in (folder / base).iterdir()}
    assert {p: t for p, t in kept.items() if not p.name.startswith("dead-")} == written
    sizes = [s["docs"] - s["dead"] for s in meta["segments"]]
    assert all(2 * later < earlier for earlier, later in zip(sizes, sizes[1:], strict=False))
    assert len(sizes) <= 7 and meta["count"] == 400 - 3 + 60


def test_mostly_deleted_segments_are_rewritten_and_empty_ones_dropped() -> None:
    store = filled(DOCS * 4)
    first = store._segments[0].number
    store.delete([f"c{i}" for i in range(17)])  # more than half of the 32 rows
    assert len(store._segments) == 1 and store._segments[0].number != first
    assert store._segments[0].n_docs == 15 and len(store._segments[0].dead) == 0
    store.delete([f"c{i}" for i in range(32)])
    assert store.count() == 0 and store._segments == []
    assert store.search(ENCODER.embed_query("bone"), k=3) == []


def test_a_failed_write_changes_neither_memory_nor_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "s"
    store = BM25Store.open(folder)
    store.add(chunks_for(DOCS), ENCODER.embed_documents(DOCS))
    before = scores_by_id(store, "bone fractures")

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(bm25_module, "write_json_atomic", boom)
    with pytest.raises(OSError, match="disk full"):
        store.add(chunks_for(["bone bone bone"], "x"), ENCODER.embed_documents(["bone bone bone"]))
    with pytest.raises(OSError, match="disk full"):
        store.delete(["c0"])
    assert store.count() == len(DOCS) and scores_by_id(store, "bone fractures") == before
    monkeypatch.undo()
    again = BM25Store.open(folder, create=False)
    assert again.count() == len(DOCS) and scores_by_id(again, "bone fractures") == before
    again.add(chunks_for(["late bone"], "late"), ENCODER.embed_documents(["late bone"]))
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("seg-")) == sorted(
        s["name"] for s in json.loads((folder / "meta.json").read_text())["segments"]
    )  # the leftovers of the failed writes are gone


def test_parameters_are_recorded_and_checked(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    store = get_store("bm25", path=folder, k1=1.2, b=0.5, method="atire")
    store.add(chunks_for(DOCS), ENCODER.embed_documents(DOCS))
    meta = json.loads((folder / "meta.json").read_text())
    assert (meta["k1"], meta["b"], meta["method"]) == (1.2, 0.5, "atire")
    again = get_store("bm25", path=folder)
    assert isinstance(again, BM25Store) and (again.k1, again.b, again.method) == (1.2, 0.5, "atire")
    assert again.scores(["bone"]).tolist() == store.scores(["bone"]).tolist()
    with pytest.raises(ValueError, match="k1=1.2"):
        BM25Store.open(folder, k1=1.5)
    with pytest.raises(ValueError, match="method"):
        BM25Store(method="bm25+")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k1 >= 0"):
        BM25Store(b=2.0)


def test_inputs_that_are_not_term_lists_are_refused() -> None:
    store = filled(DOCS)
    with pytest.raises(TypeError, match="list of terms"):
        store.search("bone", k=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="list of terms"):
        store.add(chunks_for(["x"], "v"), np.ones((1, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="2 term lists for 1 chunks"):
        store.add(chunks_for(["x"], "v"), [["x"], ["y"]])
    assert store.count() == len(DOCS)


def test_save_binds_an_in_memory_store(tmp_path: Path) -> None:
    store = filled(DOCS)
    store.delete(["c0"])
    store.save(tmp_path / "s")
    store.add(chunks_for(["late bone"], "late"), ENCODER.embed_documents(["late bone"]))
    again = BM25Store.open(tmp_path / "s", create=False)
    assert again.count() == len(DOCS) and scores_by_id(again, "bone") == scores_by_id(store, "bone")
    with pytest.raises(FileExistsError):
        store.save(tmp_path / "s")


def test_merge_keeps_counts_without_re_tokenising() -> None:
    texts = ["bone bone heart fracture", "heart liver", "liver liver liver bone"]
    terms = ENCODER.embed_documents(texts)
    chunks = chunks_for(texts)
    one = seg.build(1, chunks[:2], terms[:2]).with_dead([0])
    two = seg.build(2, chunks[2:], terms[2:])
    merged = seg.merge(3, [one, two])
    fresh = seg.build(4, chunks[1:], terms[1:])
    assert merged.terms == fresh.terms and merged.docs.ids == ["c1", "c2"]
    for attr in ("indptr", "rows", "tf", "doc_len"):
        np.testing.assert_array_equal(getattr(merged, attr), getattr(fresh, attr))


def test_open_reads_no_chunk_text_and_merges_copy_the_stored_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "s"
    store = BM25Store.open(folder)
    for n in range(6):
        texts = [f"{t} batch {n}" for t in DOCS]
        store.add(chunks_for(texts, prefix=f"b{n}-"), ENCODER.embed_documents(texts))
    again = BM25Store.open(folder, create=False)
    assert all(s.docs.chunks is None and s.docs.lines is None for s in again._segments)
    assert again.existing_ids(["b0-0", "b5-7"]) == {"b0-0", "b5-7"}  # ids are at hand
    encoded = []
    monkeypatch.setattr(seg, "chunk_to_json", lambda c: encoded.append(c.id) or chunk_to_json(c))
    big = chunks_for([f"{t} more" for t in DOCS * 8], prefix="m")  # merges every segment
    again.add(big, ENCODER.embed_documents([c.text for c in big]))
    assert len(again._segments) == 1 and sorted(encoded) == sorted(c.id for c in big)
    fresh = BM25Store.open(folder, create=False)
    assert fresh.get(["b0-0", "m3"]) == [chunks_for([f"{DOCS[0]} batch 0"], "b0-")[0], big[3]]
    query = ENCODER.embed_query("bone batch more")
    assert fresh.search(query, k=20) == again.search(query, k=20)
