"""One contract every vector store passes: upsert by id, exact cosine order, delete, get, reopen.

Parametrised over the memory store (in memory, and persisted then reopened), embedded Chroma on
disk, and Chroma over HTTP against a ``chroma run`` server started for the session on a free
loopback port. Scores are checked against a numpy brute force.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest

from rag.base import Store
from rag.stores import ChromaStore, MemoryStore, get_store
from rag.types import Chunk

DIM = 16


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_chunks(n: int, prefix: str = "c") -> list[Chunk]:
    return [
        Chunk(
            id=f"{prefix}{i}",
            doc_id=f"doc{i % 7}",
            text=f"chunk number {i}",
            start=10 * i,
            end=10 * i + 9,
            source=f"/data/doc{i % 7}.md",
            section=("Intro", f"Part {i % 3}"),
            page=i if i % 2 else None,
            metadata={"i": i},
        )
        for i in range(n)
    ]


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


# -- the stores under test ---------------------------------------------------------------------


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
    """How to make a fresh store of one kind, and how to reopen it from where it keeps data."""

    kind: str
    make: Callable[[], Store]
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


STORE_KINDS = ["memory", "memory-persisted", "chroma", "chroma-http"]


@pytest.fixture(params=STORE_KINDS)
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreCase]:
    kind = request.param
    name = f"test-{uuid.uuid4().hex[:12]}"  # tests share the HTTP server: one collection each
    if kind == "memory":
        c = StoreCase(kind, make=MemoryStore)
    elif kind == "memory-persisted":
        folder = tmp_path / "memory"
        c = StoreCase(
            kind,
            make=lambda: MemoryStore.open(folder),
            reopen_fn=lambda: MemoryStore.open(folder, create=False),
            folder=folder,
        )
    elif kind == "chroma":
        folder = tmp_path / "chroma"
        c = StoreCase(
            kind,
            make=lambda: get_store("chroma", path=folder, collection=name),
            reopen_fn=lambda: ChromaStore(folder, name),
            folder=folder,
        )
    else:
        server: ChromaServer = request.getfixturevalue("chroma_server")
        c = StoreCase(
            kind,
            make=lambda: get_store(
                "chroma-http", host="127.0.0.1", port=server.port, collection=name
            ),
            reopen_fn=lambda: ChromaStore.http("127.0.0.1", server.port, name),
            folder=server.path,
        )
    yield c
    for store in c.opened:
        if isinstance(store, ChromaStore):
            store.close()


# -- the contract ------------------------------------------------------------------------------


def test_upsert_twice_stores_once(case: StoreCase) -> None:
    store = case.new()
    chunks, vectors = make_chunks(30), unit_vectors(30)
    store.add(chunks, vectors)
    store.add(chunks, vectors)
    assert store.count() == 30

    # Re-adding an id replaces its chunk and its vector.
    changed = replace(chunks[0], text="rewritten")
    new_vector = unit_vectors(1, seed=99)
    store.add([changed], new_vector)
    assert store.count() == 30
    assert store.get([chunks[0].id])[0].text == "rewritten"
    best, score = store.search(new_vector[0], k=1)[0]
    assert best.id == chunks[0].id and score == pytest.approx(1.0, abs=1e-5)

    # Within one batch the last copy of an id wins.
    dup = make_chunks(1, "dup")[0]
    twice = [dup, replace(dup, text="v2")]
    store.add(twice, unit_vectors(2, seed=5))
    assert store.count() == 31
    assert store.get(["dup0"])[0].text == "v2"
    assert store.search(unit_vectors(2, seed=5)[1], k=1)[0][0].id == "dup0"


def test_search_returns_nearest_first_with_cosine_scores(case: StoreCase) -> None:
    store = case.new()
    chunks, vectors = make_chunks(200), unit_vectors(200, seed=1)
    store.add(chunks, vectors)
    queries = unit_vectors(5, seed=2)
    expected = queries @ vectors.T
    for q, row in zip(queries, expected, strict=True):
        found = store.search(q, k=10)
        top = np.argsort(-row)[:10]
        assert [c.id for c, _ in found] == [chunks[i].id for i in top]
        np.testing.assert_allclose([s for _, s in found], row[top], atol=1e-5)
    # the batch variant agrees with one-by-one search
    many = store.search_many(queries, k=10)
    assert [[c.id for c, _ in r] for r in many] == [
        [c.id for c, _ in store.search(q, k=10)] for q in queries
    ]


def test_delete_removes_only_the_given_ids(case: StoreCase) -> None:
    store = case.new()
    chunks, vectors = make_chunks(20), unit_vectors(20)
    store.add(chunks, vectors)
    store.delete(["c3", "c7", "c3", "never-stored"])
    store.delete([])
    assert store.count() == 18
    remaining = {c.id for c in chunks} - {"c3", "c7"}
    assert store.existing_ids([c.id for c in chunks]) == remaining
    found = store.search(vectors[3], k=20)
    assert {c.id for c, _ in found} == remaining
    assert [c.id for c in store.get(["c2", "c3", "c4"])] == ["c2", "c4"]


def test_existing_ids(case: StoreCase) -> None:
    store = case.new()
    store.add(make_chunks(5), unit_vectors(5))
    assert store.existing_ids(["c0", "c4", "c5", "x", "c0"]) == {"c0", "c4"}
    assert store.existing_ids([]) == set()


def test_get_preserves_the_requested_order(case: StoreCase) -> None:
    store = case.new()
    chunks = make_chunks(10)
    store.add(chunks, unit_vectors(10))
    wanted = ["c9", "c0", "missing", "c5", "c9"]
    got = store.get(wanted)
    assert [c.id for c in got] == ["c9", "c0", "c5", "c9"]
    for g in got:
        assert_same_chunk(g, chunks[int(g.id[1:])])
    assert store.get([]) == []


def test_search_with_k_above_count_returns_everything_in_order(case: StoreCase) -> None:
    store = case.new()
    vectors = unit_vectors(4, seed=3)
    store.add(make_chunks(4), vectors)
    query = unit_vectors(1, seed=4)[0]
    found = store.search(query, k=50)
    scores = vectors @ query
    assert [c.id for c, _ in found] == [f"c{i}" for i in np.argsort(-scores)]
    np.testing.assert_allclose([s for _, s in found], np.sort(scores)[::-1], atol=1e-5)


def test_empty_store(case: StoreCase) -> None:
    store = case.new()
    assert store.count() == 0
    assert store.search(unit_vectors(1)[0], k=5) == []
    assert store.search_many(unit_vectors(3), k=5) == [[], [], []]
    assert store.get(["a"]) == [] and store.existing_ids(["a"]) == set()
    store.delete(["a"])  # deleting from an empty store is fine
    store.add(make_chunks(2), unit_vectors(2))
    store.delete(["c0", "c1"])
    assert store.count() == 0 and store.search(unit_vectors(1)[0], k=5) == []


def test_chunks_round_trip_exactly(case: StoreCase) -> None:
    store = case.new()
    vectors = unit_vectors(len(ODD_CHUNKS), seed=8)
    store.add(ODD_CHUNKS, vectors)
    for got, want in zip(store.get([c.id for c in ODD_CHUNKS]), ODD_CHUNKS, strict=True):
        assert_same_chunk(got, want)
    for i, want in enumerate(ODD_CHUNKS):
        got, score = store.search(vectors[i], k=1)[0]
        assert_same_chunk(got, want)
        assert score == pytest.approx(1.0, abs=1e-5)
    if case.reopen_fn is not None:
        again = case.reopen(store)
        for got, want in zip(again.get([c.id for c in ODD_CHUNKS]), ODD_CHUNKS, strict=True):
            assert_same_chunk(got, want)


def test_bad_input_is_refused_and_changes_nothing(case: StoreCase) -> None:
    store = case.new()
    store.add(make_chunks(3), unit_vectors(3))
    with pytest.raises(ValueError, match="vectors"):
        store.add(make_chunks(2, "x"), unit_vectors(3))
    lossy = Chunk(id="t", doc_id="d", text="t", start=0, end=1, metadata={"pair": (1, 2)})
    with pytest.raises(ValueError, match="metadata"):
        store.add([lossy], unit_vectors(1))
    with pytest.raises(ValueError, match="k must be"):
        store.search(unit_vectors(1)[0], k=0)
    assert store.count() == 3 and store.existing_ids(["x0", "t"]) == set()


def test_persists_across_reopen(case: StoreCase) -> None:
    if case.reopen_fn is None:
        pytest.skip(f"{case.kind} does not persist")
    store = case.new()
    chunks, vectors = make_chunks(40), unit_vectors(40, seed=6)
    store.add(chunks[:25], vectors[:25])
    store.add(chunks[20:], vectors[20:])
    store.delete(["c1", "c30"])
    query = unit_vectors(1, seed=7)[0]
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
    again.add(make_chunks(1, "late"), unit_vectors(1, seed=11))
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
    store = case.new()
    chunks, vectors = make_chunks(1200), unit_vectors(1200, seed=12)  # past Chroma's sync point
    for lo in range(0, 1200, 300):
        store.add(chunks[lo : lo + 300], vectors[lo : lo + 300])
    store.delete([c.id for c in chunks[:100]])

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a store unpickled something")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    assert case.reopen(store).search(vectors[500], k=1)[0][0].id == "c500"

    assert any(p.is_file() for p in case.folder.rglob("*"))
    found = pickle_files(case.folder)
    if case.kind.startswith("memory"):
        assert found == []
    else:
        assert {p.name for p in found} <= {CHROMA_HNSW_PICKLE}, found
