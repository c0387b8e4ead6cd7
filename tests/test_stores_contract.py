"""One contract every store passes: upsert by id, exact ranking, delete, get, reopen, no pickle.

Parametrised over the dense stores (memory, in memory and persisted then reopened; embedded
Chroma on disk; Chroma over HTTP against a ``chroma run`` server started for the session on a
free loopback port) and the lexical BM25 store (in memory, and persisted then reopened). Each
store kind has a codec that turns chunk and query texts into what that store takes (hash
vectors for dense stores, ``BM25Encoder`` terms for lexical ones) and scores them by brute
force (cosine in numpy; BM25 computed here term by term), and every ranking is checked
against it.
"""

from __future__ import annotations

import http.client
import os
import pickle
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest

from rag.base import Store
from rag.stores import BM25Store, ChromaStore, MemoryStore, PgVectorStore, get_store
from rag.types import Chunk
from tests.pg_fixtures import pg_dsn  # noqa: F401 - the session's PostgreSQL
from tests.test_stores_codecs import (
    ODD_CHUNKS,
    Codec,
    DenseCodec,
    LexicalCodec,
    assert_same_chunk,
    check_search,
    make_chunks,
    query_texts,
)


@dataclass
class ChromaServer:
    port: int
    path: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _heartbeat(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)  # no proxy lookups
    try:
        conn.request("GET", "/api/v2/heartbeat")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """A ``chroma run`` server on a free loopback port, stopped at the end of the session."""
    cli = Path(sys.executable).with_name("chroma")
    if not cli.exists():
        found = shutil.which("chroma")
        if found is None:
            pytest.skip("the `chroma` CLI (from the chromadb package) is not installed")
        cli = Path(found)
    path = tmp_path_factory.mktemp("chroma-server")
    port = _free_port()
    log = open(path.parent / f"chroma-server-{port}.log", "wb")  # noqa: SIM115 - closed below
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(
        [str(cli), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while not _heartbeat(port):
            if proc.poll() is not None:
                raise RuntimeError(f"chroma run exited with {proc.returncode}; see {log.name}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"chroma run gave no heartbeat within 60 s; see {log.name}")
            time.sleep(0.2)
        yield ChromaServer(port=port, path=path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@dataclass
class StoreCase:
    """How to make a fresh store of one kind, how to reopen it, and what it takes as input."""

    kind: str
    make: Callable[[], Store]
    codec: Codec
    reopen_fn: Callable[[], Store] | None = None
    folder: Path | None = None
    opened: list[Store] = field(default_factory=list)

    def new(self) -> Store:
        store = self.make()
        self.opened.append(store)
        return store

    def reopen(self, store: Store) -> Store:
        assert self.reopen_fn is not None
        if isinstance(store, ChromaStore):
            store.close()  # the next client then reads the files afresh
        again = self.reopen_fn()
        self.opened.append(again)
        return again

    def add(self, store: Store, chunks: Sequence[Chunk]) -> None:
        store.add(chunks, self.codec.docs([c.text for c in chunks]))


STORE_KINDS = [
    "memory",
    "memory-persisted",
    "chroma",
    "chroma-http",
    "pgvector",
    "bm25",
    "bm25-persisted",
]


def _case(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> StoreCase:
    name = f"test-{uuid.uuid4().hex[:12]}"  # tests share the HTTP server: one collection each
    dense = DenseCodec()
    folder = tmp_path / kind
    if kind == "memory":
        return StoreCase(kind, MemoryStore, dense)
    if kind == "memory-persisted":
        return StoreCase(
            kind,
            lambda: MemoryStore.open(folder),
            dense,
            lambda: MemoryStore.open(folder, create=False),
            folder,
        )
    if kind == "chroma":
        return StoreCase(
            kind,
            lambda: get_store("chroma", path=folder, collection=name),
            dense,
            lambda: ChromaStore(folder, name),
            folder,
        )
    if kind == "chroma-http":
        server: ChromaServer = request.getfixturevalue("chroma_server")
        return StoreCase(
            kind,
            lambda: get_store("chroma-http", host="127.0.0.1", port=server.port, collection=name),
            dense,
            lambda: ChromaStore.http("127.0.0.1", server.port, name),
            server.path,
        )
    if kind == "pgvector":
        dsn: str = request.getfixturevalue("pg_dsn")
        return StoreCase(
            kind,
            lambda: get_store("pgvector", dsn=dsn, table=name),
            dense,
            lambda: PgVectorStore(dsn, name),
        )
    pytest.importorskip("bm25s")
    pytest.importorskip("Stemmer")
    if kind == "bm25":
        return StoreCase(kind, BM25Store, LexicalCodec())
    return StoreCase(
        kind,
        lambda: get_store("bm25", path=folder),
        LexicalCodec(),
        lambda: BM25Store.open(folder, create=False),
        folder,
    )


@pytest.fixture(params=STORE_KINDS)
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreCase]:
    c = _case(request.param, tmp_path, request)
    yield c
    for store in c.opened:
        if isinstance(store, ChromaStore | PgVectorStore):
            store.close()


# -- the contract ------------------------------------------------------------------------------


def test_upsert_twice_stores_once(case: StoreCase) -> None:
    store, codec = case.new(), case.codec
    chunks = make_chunks(30)
    case.add(store, chunks)
    case.add(store, chunks)
    assert store.count() == 30
    assert store.kind == codec.kind

    # Re-adding an id replaces its chunk and its vector (or terms).
    changed = replace(chunks[0], text="rewritten quokka narwhal")
    case.add(store, [changed])
    assert store.count() == 30
    assert store.get([chunks[0].id])[0].text == "rewritten quokka narwhal"
    live = [*chunks[1:], changed]  # a lexical store counts the re-added chunk as the newest
    check_search(store, codec, changed.text, live, k=5)
    best, score = store.search(codec.query(changed.text), k=1)[0]
    assert best.id == chunks[0].id
    if codec.kind == "dense":
        assert score == pytest.approx(1.0, abs=1e-5)

    # Within one batch the last copy of an id wins.
    dup = make_chunks(1, "dup")[0]
    twice = [replace(dup, text="first axolotl"), replace(dup, text="second wombat")]
    case.add(store, twice)
    assert store.count() == 31
    assert store.get(["dup0"])[0].text == "second wombat"
    assert store.search(codec.query("second wombat"), k=1)[0][0].id == "dup0"
    assert all(c.id != "dup0" for c, _ in store.search(codec.query("first axolotl"), k=3)) or (
        codec.kind == "dense"  # a dense store still ranks every chunk
    )


def test_search_ranks_like_brute_force(case: StoreCase) -> None:
    store, codec = case.new(), case.codec
    chunks = make_chunks(200)
    case.add(store, chunks)
    queries = query_texts(5, seed=2)
    for q in queries:
        check_search(store, codec, q, chunks, k=10)
    # the batch variant agrees with one-by-one search
    many = store.search_many(codec.queries(queries), k=10)
    assert [[c.id for c, _ in r] for r in many] == [
        [c.id for c, _ in store.search(codec.query(q), k=10)] for q in queries
    ]


def test_delete_removes_only_the_given_ids(case: StoreCase) -> None:
    store, codec = case.new(), case.codec
    chunks = make_chunks(20)
    case.add(store, chunks)
    store.delete(["c3", "c7", "c3", "never-stored"])
    store.delete([])
    assert store.count() == 18
    remaining = [c for c in chunks if c.id not in {"c3", "c7"}]
    assert store.existing_ids([c.id for c in chunks]) == {c.id for c in remaining}
    check_search(store, codec, chunks[3].text, remaining, k=20)
    assert [c.id for c in store.get(["c2", "c3", "c4"])] == ["c2", "c4"]


def test_delete_documents_removes_every_chunk_of_those_documents(case: StoreCase) -> None:
    store, codec = case.new(), case.codec
    chunks = make_chunks(30)  # doc_id is doc{i % 7}
    case.add(store, chunks)
    store.delete_documents(["doc1", "doc3", "no-such-doc"])
    store.delete_documents([])
    remaining = [c for c in chunks if c.doc_id not in {"doc1", "doc3"}]
    assert store.count() == len(remaining) == 21
    assert store.existing_ids([c.id for c in chunks]) == {c.id for c in remaining}
    for q in query_texts(3, seed=9):
        check_search(store, codec, q, remaining, k=30)
    if case.reopen_fn is not None:
        again = case.reopen(store)
        assert again.existing_ids([c.id for c in chunks]) == {c.id for c in remaining}


def test_existing_ids(case: StoreCase) -> None:
    store = case.new()
    case.add(store, make_chunks(5))
    assert store.existing_ids(["c0", "c4", "c5", "x", "c0"]) == {"c0", "c4"}
    assert store.existing_ids([]) == set()


def test_get_preserves_the_requested_order(case: StoreCase) -> None:
    store = case.new()
    chunks = make_chunks(10)
    case.add(store, chunks)
    wanted = ["c9", "c0", "missing", "c5", "c9"]
    got = store.get(wanted)
    assert [c.id for c in got] == ["c9", "c0", "c5", "c9"]
    for g in got:
        assert_same_chunk(g, chunks[int(g.id[1:])])
    assert store.get([]) == []


def test_search_with_k_above_count_returns_every_match_in_order(case: StoreCase) -> None:
    store = case.new()
    chunks = make_chunks(4)
    case.add(store, chunks)
    for q in [*query_texts(3, seed=4), chunks[2].text]:
        check_search(store, case.codec, q, chunks, k=50)


def test_empty_store(case: StoreCase) -> None:
    store, codec = case.new(), case.codec
    assert store.count() == 0
    assert store.search(codec.query("apple river"), k=5) == []
    assert store.search_many(codec.queries(["apple", "river", "stone"]), k=5) == [[], [], []]
    assert store.get(["a"]) == [] and store.existing_ids(["a"]) == set()
    store.delete(["a"])  # deleting from an empty store is fine
    store.delete_documents(["doc0"])
    chunks = make_chunks(2)
    case.add(store, chunks)
    store.delete(["c0", "c1"])
    assert store.count() == 0 and store.search(codec.query(chunks[0].text), k=5) == []


def test_chunks_round_trip_exactly(case: StoreCase) -> None:
    store, codec = case.new(), case.codec
    case.add(store, ODD_CHUNKS)
    for got, want in zip(store.get([c.id for c in ODD_CHUNKS]), ODD_CHUNKS, strict=True):
        assert_same_chunk(got, want)
    by_id = {c.id: c for c in ODD_CHUNKS}
    for want in ODD_CHUNKS:
        check_search(store, codec, want.text, ODD_CHUNKS, k=3)
        for got, _ in store.search(codec.query(want.text), k=3):
            assert_same_chunk(got, by_id[got.id])
    if case.reopen_fn is not None:
        again = case.reopen(store)
        for got, want in zip(again.get([c.id for c in ODD_CHUNKS]), ODD_CHUNKS, strict=True):
            assert_same_chunk(got, want)


def test_bad_input_is_refused_and_changes_nothing(case: StoreCase) -> None:
    store, codec = case.new(), case.codec
    case.add(store, make_chunks(3))
    with pytest.raises(ValueError, match=codec.mismatch):
        store.add(make_chunks(2, "x"), codec.docs(["a b", "c d", "e f"]))
    lossy = Chunk(id="t", doc_id="d", text="t", start=0, end=1, metadata={"pair": (1, 2)})
    with pytest.raises(ValueError, match="metadata"):
        store.add([lossy], codec.docs(["lossy words"]))
    with pytest.raises(ValueError, match="k must be"):
        store.search(codec.query("apple"), k=0)
    assert store.count() == 3 and store.existing_ids(["x0", "t"]) == set()


def test_persists_across_reopen(case: StoreCase) -> None:
    if case.reopen_fn is None:
        pytest.skip(f"{case.kind} does not persist")
    store, codec = case.new(), case.codec
    chunks = make_chunks(40)
    case.add(store, chunks[:25])
    case.add(store, chunks[20:])
    store.delete(["c1", "c30"])
    query = codec.query(query_texts(1, seed=7)[0])
    before = store.search(query, k=5)

    again = case.reopen(store)
    assert again.count() == 38
    assert again.existing_ids(["c1", "c30", "c2", "c39"]) == {"c2", "c39"}
    after = again.search(query, k=5)
    assert [c.id for c, _ in after] == [c.id for c, _ in before]
    np.testing.assert_allclose([s for _, s in after], [s for _, s in before], atol=1e-6)
    for got in again.get(["c0", "c39"]):
        assert_same_chunk(got, chunks[int(got.id[1:])])
    # and it keeps working after the reopen
    case.add(again, make_chunks(1, "late"))
    assert again.count() == 39


# Pickle protocols 4-5 open with PROTO then FRAME; 2-3 with PROTO then a container or global.
PICKLE_MAGIC = (b"\x80\x04\x95", b"\x80\x05\x95") + tuple(
    b"\x80" + bytes([p]) + op for p in (2, 3) for op in (b"}", b"]", b"(", b")", b"c", b"q")
)
# chromadb 1.5's HNSW segments keep their id->label maps in this protocol-3 pickle, written and
# read by its Rust core with serde-pickle (a data-only decoder). It is Chroma's, not ours.
CHROMA_HNSW_PICKLE = "index_metadata.pickle"


def pickle_files(folder: Path) -> list[Path]:
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                if path.suffix in {".pkl", ".pickle"} or fh.read(3).startswith(PICKLE_MAGIC):
                    found.append(path)
    return found


def test_no_store_writes_pickle_files(case: StoreCase, monkeypatch: pytest.MonkeyPatch) -> None:
    if case.folder is None:
        pytest.skip(f"{case.kind} writes no files")
    store, codec = case.new(), case.codec
    chunks = make_chunks(1200)  # past Chroma's sync point
    for lo in range(0, 1200, 300):
        case.add(store, chunks[lo : lo + 300])
    store.delete([c.id for c in chunks[:100]])
    query = codec.query(chunks[500].text)
    before = [c.id for c, _ in store.search(query, k=3)]

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a store unpickled something")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    assert [c.id for c, _ in case.reopen(store).search(query, k=3)] == before
    assert "c500" in before

    assert any(p.is_file() for p in case.folder.rglob("*"))
    found = pickle_files(case.folder)
    if case.kind.startswith("chroma"):
        assert {p.name for p in found} <= {CHROMA_HNSW_PICKLE}, found
    else:
        assert found == []
