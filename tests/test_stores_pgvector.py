"""The pgvector store beyond the shared contract: its HNSW index, idempotent upserts, a document
replaced in one transaction, filters pushed into SQL, and an Index over pgvector + BM25.

Runs against a private PostgreSQL with pgvector started by ``pgserver`` (tests/pg_fixtures.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rag
from rag.stores import PgVectorStore, get_store
from rag.stores.pgvector import esc, table_name, unesc
from rag.types import Chunk
from rag.types.filters import Where
from tests.fakes import register_hash_encoder
from tests.pg_fixtures import fresh_table, pg_dsn  # noqa: F401 - the session's PostgreSQL
from tests.serve_helpers import write_docs
from tests.test_stores_codecs import DenseCodec, make_chunks


@pytest.fixture
def store(pg_dsn: str) -> Iterator[PgVectorStore]:  # noqa: F811 - the imported fixture
    s = PgVectorStore(pg_dsn, fresh_table())
    yield s
    s.drop()
    s.close()


def add(store: PgVectorStore, chunks: list[Chunk]) -> None:
    store.add(chunks, DenseCodec().docs([c.text for c in chunks]))


def sql(store: PgVectorStore, query: str, *params: Any) -> list[tuple[Any, ...]]:
    return store._conn.execute(query, params).fetchall()


def test_hnsw_cosine_index_exists(store: PgVectorStore) -> None:
    add(store, make_chunks(3))
    found = sql(store, "SELECT indexdef FROM pg_indexes WHERE tablename = %s", store.table)
    hnsw = [d for (d,) in found if "USING hnsw" in d]
    assert len(hnsw) == 1 and "vector_cosine_ops" in hnsw[0], found
    assert store.dim == DenseCodec().docs(["x"]).shape[1]


def test_upsert_is_idempotent(store: PgVectorStore, pg_dsn: str) -> None:  # noqa: F811
    chunks = make_chunks(25)
    add(store, chunks)
    add(store, chunks)
    add(store, chunks[:10])
    assert store.count() == 25
    (rows,) = sql(store, f'SELECT count(*), count(DISTINCT id) FROM "{store.table}"')
    assert rows == (25, 25)
    again = PgVectorStore(pg_dsn, store.name)  # another client sees the same rows and dim
    assert again.count() == 25 and again.dim == store.dim and not again.refresh()
    again.close()
    early = PgVectorStore(pg_dsn, fresh_table())  # opened before another client made the table
    later = PgVectorStore(pg_dsn, early.name)
    add(later, chunks[:3])
    assert early.count() == 3 and not early.refresh()  # it looks again for a missing table
    later.drop()
    for s in (early, later):
        s.close()


def test_replace_documents_is_one_transaction(
    store: PgVectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = make_chunks(21)  # doc0 .. doc6, three chunks each
    add(store, chunks)
    old = {c.id for c in chunks if c.doc_id == "doc2"}
    new = [replace(c, id=f"new-{c.id}", text=f"new {c.text}") for c in chunks if c.doc_id == "doc2"]

    def killed(rows: list[tuple[Any, ...]]) -> None:
        raise RuntimeError("killed mid-replace")  # after the delete, before the insert

    monkeypatch.setattr(store, "_upsert", killed)
    with pytest.raises(RuntimeError, match="killed"):
        store.replace_documents(["doc2"], new, DenseCodec().docs([c.text for c in new]))
    assert store.count() == 21 and store.existing_ids(list(old)) == old  # rolled back
    monkeypatch.undo()

    store.replace_documents(["doc2"], new, DenseCodec().docs([c.text for c in new]))
    assert store.count() == 21 and store.existing_ids(list(old)) == set()
    assert {c.id for c in store.get([c.id for c in new])} == {c.id for c in new}


def test_filters_are_pushed_into_sql(store: PgVectorStore) -> None:
    codec = DenseCodec()
    chunks = make_chunks(700)  # sources /data/doc0.md .. doc6.md; odd i has page i
    rare = [replace(c, source="/other/rare.pdf") for c in make_chunks(12, "r")]
    add(store, [*chunks, *rare])
    query = codec.query("apple river stone")
    for where, want in [
        (Where.parse(["type=pdf"]), rare),
        (Where.parse(["source=rare.pdf"]), rare),
        (Where.parse(["source=/data/doc3.md", "page=100-400"]), None),
        (Where.parse(["page=-9"]), None),
    ]:
        live = [c for c in [*chunks, *rare] if where.matches(c)]
        assert want is None or {c.id for c in live} == {c.id for c in want}
        got = store.search(query, k=10, where=where)
        expected = sorted(live, key=lambda c: -float(codec.query(c.text) @ query))[:10]
        assert [c.id for c, _ in got] == [c.id for c in expected], where
        assert len(got) == min(10, len(live))
    # the source glob became an IN list and the pages a range, in the SQL itself
    from rag.stores._filters import sql_where

    resolved = Where.parse(["type=pdf", "page=2-5"]).resolve(["/other/rare.pdf", "/data/a.md"])
    clause, params = sql_where(resolved, esc)
    assert clause == "TRUE AND source = ANY(%s) AND page BETWEEN %s AND %s"
    assert params == [["/other/rare.pdf"], 2, 5]
    # section prefixes are checked on the rows SQL kept: k come back when k match
    section = Where.parse(["section=Part 2", "source=doc1.md"])
    got = store.search(query, k=7, where=section)
    assert len(got) == 7 and all(section.matches(c) for c, _ in got)
    assert store.search(query, k=5, where=Where.parse(["type=docx"])) == []


def test_a_filtered_hnsw_scan_that_comes_short_falls_back_to_an_exact_scan(
    store: PgVectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    codec = DenseCodec()
    chunks = make_chunks(700)
    rare = [replace(c, source="/other/rare.pdf") for c in make_chunks(12, "r")]
    add(store, [*chunks, *rare])
    # make the planner walk the HNSW index even for a selective filter: pgvector then filters
    # the ef_search candidates it found, and few of those are among the 12 rare rows
    store._conn.execute(f'DROP INDEX "{store.table}_source"')
    store._conn.execute("SET enable_bitmapscan = off")
    store._conn.execute("SET enable_seqscan = off")
    store.ef_search = 40
    calls: list[bool] = []
    nearest = store._nearest

    def spy(*args: Any, exact: bool) -> list[tuple[Chunk, float]]:
        found = nearest(*args, exact=exact)
        calls.append(exact)
        return found

    monkeypatch.setattr(store, "_nearest", spy)
    query = codec.query("apple river stone")
    got = store.search(query, k=10, where=Where.parse(["type=pdf"]))
    expected = sorted(rare, key=lambda c: -float(codec.query(c.text) @ query))[:10]
    assert [c.id for c, _ in got] == [c.id for c in expected]
    assert calls == [False, True]  # the HNSW scan, then the exact one


def test_nul_and_names_round_trip(store: PgVectorStore) -> None:
    for text in ["plain", "a\x00b", "\ue000", "\ue0000\x00\ue000\ue000"]:
        assert unesc(esc(text)) == text
    assert "\x00" not in esc("a\x00b")
    long = table_name("org/" + "x" * 80)
    assert len(long.encode()) <= 50 and long != table_name("org_" + "x" * 80)
    odd = Chunk(
        id="n\x00ul",
        doc_id="d\x00",
        text="t\x00",
        start=0,
        end=1,
        source="s\x00.md",
        section=("h\x00",),
        metadata={"k\x00": "v\x00"},
    )
    add(store, [odd])
    (got,) = store.get([odd.id])
    assert got == odd and got.metadata == odd.metadata and store.ids() == [odd.id]
    assert store.search(DenseCodec().query("t\x00"), k=1, where=Where.parse(["type=md"]))


def test_dsn_from_the_environment(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.delenv("RAG_PGVECTOR_DSN", raising=False)
    with pytest.raises(ValueError, match="RAG_PGVECTOR_DSN"):
        get_store("pgvector", table="x")
    monkeypatch.setenv("RAG_PGVECTOR_DSN", pg_dsn)
    s = get_store("pgvector", collection=fresh_table(), dim=4)
    assert isinstance(s, PgVectorStore) and s.dim == 4 and s.count() == 0
    with pytest.raises(ValueError, match="vectors have 3 dimensions"):
        s.add(make_chunks(1), np.ones((1, 3), dtype=np.float32))
    s.drop()
    s.close()


def test_index_over_pgvector_and_bm25(
    tmp_path: Path,
    pg_dsn: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("bm25s")
    pytest.importorskip("Stemmer")
    register_hash_encoder(monkeypatch)
    monkeypatch.setenv("RAG_PGVECTOR_DSN", pg_dsn)
    docs = write_docs(tmp_path / "docs")
    index = rag.Index.create(tmp_path / "idx", encoders=["hash", "bm25"], store="pgvector")
    index.ingest(rag.load_directory(docs))
    dense = index.store("hash")
    assert isinstance(dense.store, PgVectorStore)  # under the index's text-less view
    n = sum(1 for _ in index.all_chunks())
    assert dense.count() == n > 0 and index.store("bm25").count() == n

    hits = index.search("reciprocal rank fusion", k=3)
    assert hits[0].chunk.source.endswith("fusion.md")
    assert hits[0].source.startswith("fusion:") and set(hits[0].components) == {"hash", "bm25"}
    only = index.search("context window", k=2, where={"type": "text"})
    assert only and all(h.chunk.source.endswith("install.txt") for h in only)

    # a re-run adds nothing; a reopened index finds the same table
    rag.Index(tmp_path / "idx").ingest(rag.load_directory(docs))
    assert rag.Index(tmp_path / "idx").store("hash").count() == n
    # a rebuild drops the index's tables before starting again
    table = dense.table
    rebuilt = rag.Index.create(
        tmp_path / "idx", encoders=["hash", "bm25"], store="pgvector", rebuild=True
    )
    assert rebuilt.store("hash").count() == 0 and rebuilt.store("hash").table == table


def test_cli_ingest_into_pgvector(
    tmp_path: Path,
    pg_dsn: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rag.cli import main

    register_hash_encoder(monkeypatch)
    monkeypatch.delenv("RAG_PGVECTOR_DSN", raising=False)  # --dsn sets it for this process
    docs, root = write_docs(tmp_path / "docs"), tmp_path / "idx"
    argv = ["ingest", str(docs), "--index", str(root), "--encoder", "hash"]
    assert main([*argv, "--store", "pgvector", "--dsn", pg_dsn, "--no-progress"]) == 0
    store = rag.Index(root).store("hash")
    assert isinstance(store.store, PgVectorStore) and store.count() > 0
    assert rag.Index.stored_config(root).store == "pgvector"  # type: ignore[union-attr]
    assert pg_dsn not in (root / "index.json").read_text("utf-8")
    from rag.index.admin import reset_index

    table = store.table
    reset_index(root)  # the index's tables go with it
    assert sql(store, "SELECT to_regclass(%s)", f'"{table}"') == [(None,)]


def test_a_table_it_did_not_create_is_refused(store: PgVectorStore, pg_dsn: str) -> None:  # noqa: F811
    other = fresh_table()
    store._conn.execute(f'CREATE TABLE "{other}" (id text, embedding text)')
    with pytest.raises(ValueError, match="not written by this version"):
        PgVectorStore(pg_dsn, other)
    store._conn.execute(f'DROP TABLE "{other}"')
