"""MemoryStore specifics: exact top-k, crash-safe write-through persistence, compaction, no pickle."""

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

from rag.stores import MemoryStore, memory
from rag.types import Chunk

ROOT = Path(__file__).resolve().parents[1]


def unit_vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def chunks(ids: list[str]) -> list[Chunk]:
    return [Chunk(id=i, doc_id="d", text=f"text of {i}", start=0, end=1) for i in ids]


def segment_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("seg-"))


def test_top_k_matches_a_full_sort_and_ties_keep_insertion_order() -> None:
    store = MemoryStore()
    vectors = unit_vectors(500, seed=1)
    store.add(chunks([f"c{i}" for i in range(500)]), vectors)
    queries = unit_vectors(7, seed=2)
    for q, found in zip(queries, store.search_many(queries, k=25), strict=True):
        order = np.argsort(-(vectors @ q), kind="stable")[:25]
        assert [c.id for c, _ in found] == [f"c{i}" for i in order]

    same = MemoryStore()
    v = unit_vectors(1, seed=3)
    same.add(chunks(["b", "a", "c"]), np.repeat(v, 3, axis=0))
    assert [c.id for c, _ in same.search(v[0], k=2)] == ["b", "a"]
    assert [c.id for c, _ in same.search(v[0], k=3)] == ["b", "a", "c"]


def test_dimension_mismatches_are_refused() -> None:
    store = MemoryStore()
    store.add(chunks(["a"]), unit_vectors(1, dim=8))
    with pytest.raises(ValueError, match="dimensions"):
        store.add(chunks(["b"]), unit_vectors(1, dim=4))
    with pytest.raises(ValueError, match="dimensions"):
        store.search(unit_vectors(1, dim=4)[0])
    with pytest.raises(ValueError, match="search_many"):
        store.search(unit_vectors(2))
    assert store.count() == 1


def test_writes_are_on_disk_when_they_return(tmp_path: Path) -> None:
    store = MemoryStore.open(tmp_path / "s")
    store.add(chunks(["a", "b", "c"]), unit_vectors(3))
    assert MemoryStore.open(tmp_path / "s").count() == 3
    store.delete(["b"])
    assert MemoryStore.open(tmp_path / "s").existing_ids(["a", "b", "c"]) == {"a", "c"}
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["format"] == "rag-memory-store" and meta["version"] == 1
    assert meta["dim"] == 8 and meta["count"] == 2


def test_the_log_is_compacted_so_segments_stay_few(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "s"
    store = MemoryStore.open(folder)
    vectors = unit_vectors(400, seed=4)
    for lo in range(0, 400, 10):  # 40 small batches
        store.add(chunks([f"c{i}" for i in range(lo, lo + 10)]), vectors[lo : lo + 10])
    meta = json.loads((folder / "meta.json").read_text())
    # Rewrites happen when the log outgrows the base, so the base doubles: few rewrites, few
    # segments, and no folder left behind that meta.json does not list.
    assert len(meta["segments"]) < 20
    assert segment_dirs(folder) == sorted(s["name"] for s in meta["segments"])
    assert meta["segments"][0]["adds"] >= 200

    store.save()  # explicit compaction: one segment
    assert segment_dirs(folder) == [
        json.loads((folder / "meta.json").read_text())["segments"][0]["name"]
    ]
    again = MemoryStore.open(folder)
    assert again.count() == 400
    np.testing.assert_allclose(again.search(vectors[123], k=1)[0][1], 1.0, atol=1e-6)

    monkeypatch.setattr(memory, "MAX_SEGMENTS", 4)
    for i in range(10):  # many tiny writes also trigger a rewrite, however big the base
        store.delete([f"c{i}"])
        meta = json.loads((folder / "meta.json").read_text())
        assert len(meta["segments"]) <= 4
    assert meta["count"] == 390
    assert MemoryStore.open(folder).count() == meta["count"]


def test_save_binds_an_in_memory_store_and_copies_a_persisted_one(tmp_path: Path) -> None:
    store = MemoryStore()
    store.add(chunks(["a", "b"]), unit_vectors(2))
    with pytest.raises(ValueError, match="no folder"):
        store.save()
    store.save(tmp_path / "one")
    store.add(chunks(["c"]), unit_vectors(1, seed=1))  # now writes through
    assert MemoryStore.open(tmp_path / "one").count() == 3

    store.save(tmp_path / "copy")
    store.delete(["a"])
    assert MemoryStore.open(tmp_path / "copy").count() == 3  # the copy is not bound
    assert MemoryStore.open(tmp_path / "one").count() == 2
    with pytest.raises(FileExistsError):
        store.save(tmp_path / "copy")


def test_open_refuses_missing_unknown_and_inconsistent_stores(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        MemoryStore.open(tmp_path / "nothing", create=False)
    assert MemoryStore.open(tmp_path / "new").count() == 0

    folder = tmp_path / "s"
    MemoryStore.open(folder).add(chunks(["a"]), unit_vectors(1))
    meta_path = folder / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(ValueError, match="version 99"):
        MemoryStore.open(folder)
    meta_path.write_text(json.dumps({**meta, "count": 5}))
    with pytest.raises(ValueError, match="meta.json says 5"):
        MemoryStore.open(folder)


def test_open_never_unpickles(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    MemoryStore.open(folder).add(chunks(["a"]), unit_vectors(1))
    seg = json.loads((folder / "meta.json").read_text())["segments"][0]["name"]
    # An object array can only be read by unpickling; the store must refuse it.
    np.save(folder / seg / "vectors.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle"):
        MemoryStore.open(folder)


def snapshot(store: MemoryStore) -> dict[str, tuple[str, bytes]]:
    """Everything a store holds: id -> (text, vector bytes)."""
    n = store.count()
    return {c.id: (c.text, store._vectors[r].tobytes()) for r, c in enumerate(store._chunks[:n])}


@pytest.mark.parametrize("fail_at", ["vectors", "commit"])
def test_a_write_that_dies_part_way_leaves_the_old_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: str
) -> None:
    folder = tmp_path / "s"
    store = MemoryStore.open(folder)
    store.add(chunks([f"c{i}" for i in range(50)]), unit_vectors(50))
    before = snapshot(MemoryStore.open(folder))

    def die(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    # the process dies while writing the new segment's vectors, or just before the commit
    target = (memory.np, "save") if fail_at == "vectors" else (memory.os, "replace")
    monkeypatch.setattr(*target, die)
    with pytest.raises(OSError, match="disk full"):
        store.add(chunks(["new"]), unit_vectors(1, seed=5))
    monkeypatch.undo()
    assert snapshot(MemoryStore.open(folder)) == before


WRITER = textwrap.dedent(
    """
    import sys

    from rag.stores import MemoryStore
    from rag.types import Chunk

    sys.path.insert(0, sys.argv[2])
    from test_stores_memory import operation

    store = MemoryStore.open(sys.argv[1])
    j = 0
    while True:
        kind, ids, vectors = operation(j)
        if kind == "add":
            store.add([Chunk(id=i, doc_id="d", text=f"text of {i}", start=0, end=1) for i in ids], vectors)
        else:
            store.delete(ids)
        print(j, flush=True)  # operation j is durable now
        j += 1
    """
)


def operation(j: int) -> tuple[str, list[str], np.ndarray | None]:
    """The writer's j-th operation: adds of 300 rows (some upserting older ids), some deletes."""
    if j % 4 == 3:
        return "delete", [f"b{j - 2}-{i}" for i in range(0, 300, 2)], None
    ids = [f"b{j}-{i}" for i in range(290)] + [f"b{max(j - 1, 0)}-{i}" for i in range(10)]
    return "add", ids, unit_vectors(300, dim=384, seed=j)


def expected_after(m: int) -> MemoryStore:
    store = MemoryStore()
    for j in range(m + 1):
        kind, ids, vectors = operation(j)
        if kind == "add":
            store.add(chunks(ids), vectors)
        else:
            store.delete(ids)
    return store


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.15, 0.4])
def test_a_killed_writer_leaves_the_old_or_the_new_store(tmp_path: Path, delay: float) -> None:
    folder = tmp_path / "s"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(folder), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # wait out the imports (slow on a busy machine)
    assert first.strip() == b"0", "the writer failed before its first operation"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    last = int((first + out).split()[-1])

    # It opens cleanly whatever moment the kill hit, and holds every operation that returned
    # (durable) and at most the one in flight (atomic).
    store = MemoryStore.open(folder)
    got = snapshot(store)
    assert got in (snapshot(expected_after(last)), snapshot(expected_after(last + 1)))

    # A later writer cleans up whatever the killed one left behind.
    store.add(chunks(["after"]), unit_vectors(1, dim=384, seed=999))
    meta = json.loads((folder / "meta.json").read_text())
    assert segment_dirs(folder) == sorted(s["name"] for s in meta["segments"])
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert snapshot(MemoryStore.open(folder)) == snapshot(store)
