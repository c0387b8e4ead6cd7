"""Readers beside a writer in another process: no failed search, every result set committed.

A writer process re-ingests a folder round after round (every file changed, one added, one
deleted with ``--prune``); each file is one chunk that names its round. One round is one commit
(plus one for the deletion), so a result set from a committed state has a single round in it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rag.index import Index, IndexConfig
from rag.index.config import EncoderEntry

TESTS = Path(__file__).resolve().parent
ENV = {**os.environ, "PYTHONPATH": str(TESTS.parent)}
WORDS = ["bone", "heart", "liver", "gene", "vitamin", "fracture", "runner", "fasting"]
FILES = 10
QUERY = "bone heart liver gene"  # every file has two of these words or more

WRITER = textwrap.dedent(
    """
    import sys

    sys.path.insert(0, sys.argv[1])
    from test_readers_snapshot import register_in_child, write_round, ingest

    register_in_child()
    index, source, store, first, last = sys.argv[2:7]
    for r in range(int(first), int(last)):
        write_round(source, r)
        ingest(index, source, store)
        print(r, flush=True)
    """
)


def register_in_child() -> None:
    """Register the test-only ``hash`` encoder in a child process (no monkeypatch there)."""
    from fakes import hash_encoder_spec

    from rag.encoders.registry import REGISTRY

    REGISTRY["hash"] = hash_encoder_spec()


def config(store: str) -> IndexConfig:
    return IndexConfig(
        encoders=[EncoderEntry("hash", "dense"), EncoderEntry("bm25", "lexical")], store=store
    )


def write_round(source: str | Path, r: int) -> None:
    """Round ``r``: every file rewritten (one chunk each, naming the round), file ``extra{r}``
    added and ``extra{r - 2}`` deleted (so one round is one commit, and one more for the
    deletion)."""
    source = Path(source)
    source.mkdir(parents=True, exist_ok=True)
    (source / f"extra{r - 2}.md").unlink(missing_ok=True)
    for name in [*(f"f{i}" for i in range(FILES)), f"extra{r}"]:
        common = " ".join(WORDS[(len(name) + j + r) % len(WORDS)] for j in range(6))
        own = " ".join(f"{name}w{j}x{r}" for j in range(20))  # no two chunks near-duplicates
        (source / f"{name}.md").write_text(f"{common} {own} {name} round{r}\n", "utf-8")


def ingest(index: str | Path, source: str | Path, store: str) -> None:
    from connectors.directory import load_directory

    folder = Index(index, config(store))
    folder.ingest(load_directory(source), prune_missing_under=source, batch_chunks=1000)


def rounds_of(hits: list) -> set[int]:
    """The rounds of the rewritten files among ``hits`` (an added file keeps its round)."""
    found = (re.search(r" f\d+ round(\d+)", h.chunk.text) for h in hits)
    return {int(m.group(1)) for m in found if m}


def search_loop(index_dir: Path, writer: subprocess.Popen[str]) -> tuple[int, list[str]]:
    """Search with fused and BM25 retrievers (fresh index objects and a long-lived one) until
    the writer exits; returns the searches made and what went wrong."""
    long_lived = Index(index_dir)
    kept = [long_lived.fused_retriever(), long_lived.retriever("bm25")]
    searches, problems = 0, []
    while writer.poll() is None:
        fresh = Index(index_dir)
        for retriever in [fresh.fused_retriever(), fresh.retriever("bm25"), *kept]:
            searches += 1
            try:
                hits = retriever.retrieve(QUERY, 20)
            except Exception as exc:  # noqa: BLE001 - counted: the test asserts there are none
                problems.append(f"{type(exc).__name__}: {exc}")
                continue
            if len(rounds_of(hits)) > 1:
                problems.append(f"mixed rounds {sorted(rounds_of(hits))}")
            if len(hits) < FILES:
                problems.append(f"only {len(hits)} hits")
    return searches, problems


def start_writer(tmp_path: Path, store: str, first: int, last: int) -> subprocess.Popen[str]:
    args = [str(TESTS), str(tmp_path / "ix"), str(tmp_path / "src"), store, str(first), str(last)]
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, *args], env=ENV, stdout=subprocess.PIPE, text=True
    )


@pytest.fixture
def hash_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    from fakes import register_hash_encoder

    register_hash_encoder(monkeypatch)


@pytest.mark.parametrize(("store", "rounds"), [("memory", 12), ("chroma", 5)])
def test_readers_never_fail_while_a_writer_reingests(
    tmp_path: Path, hash_encoder: None, store: str, rounds: int
) -> None:
    write_round(tmp_path / "src", 0)
    ingest(tmp_path / "ix", tmp_path / "src", store)
    writer = start_writer(tmp_path, store, 1, rounds)
    searches, problems = search_loop(tmp_path / "ix", writer)
    assert writer.wait(timeout=60) == 0
    assert searches > 20 and problems == [], (searches, problems[:5])
    print(f"{store}: {searches} searches during {rounds} writer rounds, {len(problems)} failed")  # noqa: T201 - the figure, with -s
    hits = Index(tmp_path / "ix").search(QUERY, 20, dedup=False)
    assert rounds_of(hits) == {rounds - 1}


@pytest.mark.parametrize("store", ["memory", "chroma"])
def test_a_long_lived_index_sees_what_another_process_committed(
    tmp_path: Path, hash_encoder: None, store: str
) -> None:
    write_round(tmp_path / "src", 0)
    ingest(tmp_path / "ix", tmp_path / "src", store)
    index = Index(tmp_path / "ix")
    retrievers = [index.fused_retriever(), index.retriever("bm25"), index.retriever("hash")]
    assert all(rounds_of(r.retrieve(QUERY, 20)) == {0} for r in retrievers)
    for first in (1, 2):  # two re-ingests by other processes, each seen
        assert start_writer(tmp_path, store, first, first + 1).wait(timeout=60) == 0
        for retriever in retrievers:
            hits = retriever.retrieve(QUERY, 20)
            names = {Path(h.chunk.source).name for h in hits}
            assert rounds_of(hits) == {first} and len(hits) == FILES + 2
            assert f"extra{first}.md" in names and f"extra{first - 2}.md" not in names


def test_a_writer_killed_on_a_fresh_index_leaves_it_searchable(
    tmp_path: Path, hash_encoder: None
) -> None:
    for trial, delay in enumerate([0.0, 0.3, 0.8]):
        root = tmp_path / f"t{trial}"
        writer = start_writer(root, "memory", 0, 50)
        while not (root / "ix" / "index.json").exists() and writer.poll() is None:
            time.sleep(0.01)  # killed once it started writing the index
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        index = Index(root / "ix")
        manifest = root / "ix" / "manifest.json"
        named = set()
        if manifest.exists():
            named = {
                i
                for e in json.loads(manifest.read_text())["files"].values()
                for i in e["chunk_ids"]
            }
        for retriever in [index.fused_retriever(), index.retriever("bm25")]:
            hits = retriever.retrieve(QUERY, 20)
            assert {h.chunk.id for h in hits} <= named
            assert len(rounds_of(hits)) <= 1


def test_a_bm25_reader_outlives_the_generation_it_loaded(tmp_path: Path) -> None:
    from rag.stores import BM25Store
    from rag.types import Chunk

    def chunks(tag: str) -> list[Chunk]:
        return [
            Chunk(id=f"{tag}{i}", doc_id=tag, text=f"bone {tag}", start=0, end=5) for i in range(3)
        ]

    writer = BM25Store.open(tmp_path / "s")
    writer.add(chunks("a"), [["bone", "a"]] * 3)
    reader = BM25Store.open(tmp_path / "s")  # its chunk text is read only when first needed
    for tag in "bcd":
        writer.add(chunks(tag), [["bone", tag]] * 3)
        writer.compact()  # a new generation; the one the reader loaded is removed
    assert not (tmp_path / "s" / "seg-000001").exists()
    assert {c.doc_id for c, _ in reader.search(["bone"], 10)} == {"a"}
    assert reader.refresh() and reader.count() == writer.count() == 12
    assert not reader.refresh()  # nothing new: one stat
    assert {c.doc_id for c, _ in reader.search(["bone"], 20)} == set("abcd")
