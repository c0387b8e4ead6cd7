"""BM25Store under a writer killed at random moments: it reopens as the old or the new store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from rag.stores import BM25Store
from rag.types import Chunk

WORDS = "bone heart liver gene vitamin fracture runner fasting insulin mice cells density"


WRITER = textwrap.dedent(
    """
    import sys

    sys.path.insert(0, sys.argv[2])
    from test_stores_bm25_crash import apply, operation

    from rag.stores import BM25Store

    store = BM25Store.open(sys.argv[1])
    j = 0
    while True:
        apply(store, operation(j))
        print(j, flush=True)  # operation j is durable now
        j += 1
    """
)


def operation(j: int) -> tuple[str, list[str], list[str]]:
    """The writer's j-th operation: adds of 200 rows (some upserting older ids), deletes of half
    an older add, and now and then a whole document; texts are plain words (terms = split)."""
    if j % 4 == 3:
        return "delete", [f"b{j - 2}-{i}" for i in range(0, 200, 2)], []
    if j % 8 == 6:
        return "delete_documents", [f"b{j - 6}"], []
    ids = [f"b{j}-{i}" for i in range(190)] + [f"b{max(j - 1, 0)}-{i}" for i in range(10)]
    rng = np.random.default_rng(j)
    words = WORDS.split()
    return "add", ids, [" ".join(rng.choice(words, int(rng.integers(1, 9)))) for _ in ids]


def apply(store: BM25Store, op: tuple[str, list[str], list[str]]) -> None:
    kind, ids, texts = op
    if kind == "add":
        chunks = [
            Chunk(id=i, doc_id=i.split("-")[0], text=t, start=0, end=1)
            for i, t in zip(ids, texts, strict=True)
        ]
        store.add(chunks, [t.split() for t in texts])
    elif kind == "delete":
        store.delete(ids)
    else:
        store.delete_documents(ids)


def snapshot(store: BM25Store) -> tuple[dict[str, str], list[list[tuple[str, float]]]]:
    order = [s.docs.chunk(r) for s in store._segments for r in np.flatnonzero(s.live).tolist()]
    queries = [["bone", "heart"], ["liver", "gene", "gene"], ["mice"]]
    return {c.id: c.text for c in order}, [
        [(c.id, v) for c, v in store.search(q, k=20)] for q in queries
    ]


def expected_after(m: int) -> BM25Store:
    store = BM25Store()
    for j in range(m + 1):
        apply(store, operation(j))
    return store


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.2, 0.5])
def test_a_killed_writer_leaves_the_old_or_the_new_store(tmp_path: Path, delay: float) -> None:
    folder = tmp_path / "s"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(folder), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # wait out the imports (slow on a busy machine)
    assert first.strip() == b"0", "the writer failed before its first operation"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    last = int((first + out).split()[-1])

    # It opens cleanly whatever moment the kill hit, and holds every operation that returned
    # (durable) and at most the one in flight (atomic); scores and tie order included.
    store = BM25Store.open(folder, create=False)
    assert snapshot(store) in (snapshot(expected_after(last)), snapshot(expected_after(last + 1)))

    # A later writer cleans up whatever the killed one left behind.
    apply(store, operation(1001))
    meta = json.loads((folder / "meta.json").read_text())
    listed = {s["name"]: s["dead_file"] for s in meta["segments"]}
    assert sorted(p.name for p in folder.glob("seg-*")) == sorted(listed)
    for name, dead_file in listed.items():
        assert [p.name for p in (folder / name).glob("dead-*")] == (
            [dead_file] if dead_file else []
        )
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]
    assert snapshot(BM25Store.open(folder)) == snapshot(store)
