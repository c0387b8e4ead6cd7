"""An exact in-memory vector store (numpy), optionally persisted to a folder.

Search is brute force: one matrix product and ``argpartition`` for the top k, so results are
exact and need no index build; it is the reference the approximate stores are checked against.

A persisted store writes through: when ``add`` or ``delete`` returns, the change is on disk. The
folder is a small log of segments in transparent files (JSON lines, ``.npy``, JSON; no pickle)::

    meta.json                  format, version, dim, count, the list of live segments (the commit)
    seg-000001/chunks.jsonl    one chunk per line, in row order
    seg-000001/vectors.npy     float32, one row per chunk
    seg-000003/deleted.json    ids deleted at this point (a delete segment)

Replaying the segments in order (each one: delete its ``deleted.json`` ids, then upsert its rows)
gives the store. Every segment is written and fsynced before ``meta.json`` is replaced (temp file
+ ``os.replace``), which is the one atomic commit, so a process killed at any moment leaves either
the old or the new store, never half of one. When the log holds more rows than the base segment,
everything is rewritten as one segment (like doubling a dynamic array: O(1) amortised writes per
row). One writer per folder at a time.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.base import Store
from rag.files import (
    file_state,
    fsync_dir,
    read_meta,
    remove_stale_temps,
    write_atomic,
    write_synced,
)
from rag.stores._codec import (
    as_matrix,
    check_k,
    chunk_from_json,
    chunk_to_json,
    last_occurrences,
    one_query,
)
from rag.types import Chunk
from rag.types.filters import Where

FORMAT = "rag-memory-store"
FORMAT_VERSION = 1
META = "meta.json"
_RETRIES = 8  # a reader racing a writer that commits this often in a row gives up
MAX_SEGMENTS = 64  # also compact when this many segments pile up (many tiny batches)
_QUERY_BLOCK_FLOATS = 16_000_000  # bound the query x rows score block to ~64 MB


class MemoryStore(Store):
    """Exact cosine search over float32 vectors held in one numpy matrix.

    ``MemoryStore()`` lives in memory only; ``MemoryStore.open(folder)`` loads (or starts) a
    persisted one whose every write is durable when it returns (if a write raises, the folder
    still holds the state before it: reopen the store). The score is the dot product, which is
    the cosine similarity for the L2-normalised vectors the ``Store`` contract asks for.
    """

    def __init__(self, dim: int | None = None) -> None:
        self.path: Path | None = None
        self._dim = dim
        self._chunks: list[Chunk] = []
        self._row: dict[str, int] = {}
        self._vectors = np.empty((0, dim or 0), dtype=np.float32)  # capacity >= count
        self._meta: dict[str, Any] = {}
        self._state: tuple[int, int, int] | None = None  # meta.json as last read or written

    # -- Store ---------------------------------------------------------------------------

    @property
    def dim(self) -> int | None:
        return self._dim

    def count(self) -> int:
        return len(self._chunks)

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if len(chunks) == 0:
            return
        matrix = as_matrix(vectors, rows=len(chunks))
        keep = last_occurrences(chunks)
        if len(keep) < len(chunks):
            chunks, matrix = [chunks[i] for i in keep], matrix[keep]
        records = [chunk_to_json(c) for c in chunks]  # refuses lossy metadata before any change
        self._upsert(chunks, matrix)
        if self.path is not None:
            self._append_segment(records=records, vectors=matrix)

    def delete(self, ids: Sequence[str]) -> None:
        gone = [i for i in dict.fromkeys(ids) if i in self._row]
        if not gone:
            return
        self._remove(gone)
        if self.path is not None:
            self._append_segment(deleted=gone)

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        wanted = set(doc_ids)
        self.delete([c.id for c in self._chunks if c.doc_id in wanted])

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        return {i for i in ids if i in self._row}

    def ids(self) -> list[str]:
        return [c.id for c in self._chunks]

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        return [self._chunks[self._row[i]] for i in ids if i in self._row]

    def search(
        self, vector: np.ndarray, k: int = 10, *, where: Where | None = None
    ) -> list[tuple[Chunk, float]]:
        return self.search_many(one_query(vector), k, where=where)[0]

    def search_many(
        self, vectors: np.ndarray, k: int = 10, *, where: Where | None = None
    ) -> list[list[tuple[Chunk, float]]]:
        check_k(k)
        queries = as_matrix(vectors)
        n = self.count()
        if n == 0 or queries.shape[0] == 0:
            return [[] for _ in range(queries.shape[0])]
        if queries.shape[1] != self._dim:
            raise ValueError(f"query has {queries.shape[1]} dimensions, the store {self._dim}")
        matrix = self._vectors[:n]
        chunks = self._chunks
        if where is not None:  # score only the matching rows, so k of them come back
            chunks = [c for c in self._chunks if where.matches(c)]
            if not chunks:
                return [[] for _ in range(queries.shape[0])]
            matrix = matrix[[self._row[c.id] for c in chunks]]
            n = len(chunks)
        k = min(k, n)
        block = max(1, _QUERY_BLOCK_FLOATS // n)
        results: list[list[tuple[Chunk, float]]] = []
        for lo in range(0, queries.shape[0], block):
            scores = queries[lo : lo + block] @ matrix.T
            if k < n:
                top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            else:
                top = np.broadcast_to(np.arange(n), scores.shape)
            top_scores = np.take_along_axis(scores, top, axis=1)
            # Highest score first; equal scores by insertion order, so results are reproducible.
            order = np.lexsort((top, -top_scores), axis=1)
            top = np.take_along_axis(top, order, axis=1)
            top_scores = np.take_along_axis(top_scores, order, axis=1)
            for rows, vals in zip(top.tolist(), top_scores.tolist(), strict=True):
                results.append([(chunks[r], v) for r, v in zip(rows, vals, strict=True)])
        return results

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of the known ``ids`` (for MMR's similarities)."""
        return {i: self._vectors[self._row[i]].copy() for i in ids if i in self._row}

    # -- persistence ---------------------------------------------------------------------------

    @classmethod
    def open(cls, folder: str | Path, *, create: bool = True) -> MemoryStore:
        """Load the store in ``folder``; with ``create``, a folder without one starts empty."""
        folder = Path(folder)
        for attempt in range(_RETRIES):
            state = file_state(folder / META)
            try:
                return cls._load(folder, create, state)
            except FileNotFoundError:
                # a writer committed and removed the segments being read: read the new ones
                if attempt == _RETRIES - 1 or file_state(folder / META) == state:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _load(cls, folder: Path, create: bool, state: tuple[int, int, int] | None) -> MemoryStore:
        store = cls()
        if state is None:
            if not create:
                raise FileNotFoundError(f"no memory store in {folder} (missing {META})")
            store.path = folder
            return store
        meta = read_meta(folder / META, FORMAT, FORMAT_VERSION)
        store._dim = meta["dim"]
        store._vectors = np.empty((0, store._dim or 0), dtype=np.float32)
        for segment in meta["segments"]:
            store._replay(folder / segment["name"], segment)
        if store.count() != meta["count"]:
            raise ValueError(
                f"{folder}: segments hold {store.count()} chunks, meta.json says {meta['count']}"
            )
        store.path, store._meta, store._state = folder, meta, state
        return store

    def refresh(self) -> bool:
        """Re-read the folder when another process committed to it since this object last read
        or wrote it (one ``stat`` of ``meta.json`` when nothing changed); True when it did."""
        if self.path is None or file_state(self.path / META) == self._state:
            return False
        self.__dict__.update(MemoryStore.open(self.path).__dict__)
        return True

    def save(self, folder: str | Path | None = None) -> None:
        """Write the whole store as one compact segment (atomically).

        Without ``folder`` it compacts the store's own folder. An in-memory store given a folder
        is bound to it, so later writes persist there; a persisted store given another folder
        writes a copy there and stays where it was.
        """
        if folder is None:
            if self.path is None:
                raise ValueError("this store has no folder yet: call save(folder)")
            self._compact()
            return
        folder = Path(folder)
        if self.path is not None and folder.resolve() == self.path.resolve():
            self._compact()
            return
        if (folder / META).exists():
            raise FileExistsError(f"{folder} already holds a store; open it instead")
        copy = MemoryStore(self._dim)
        copy._chunks, copy._row = self._chunks, self._row
        copy._vectors, copy.path = self._vectors, folder
        copy._compact()
        if self.path is None:
            self.path, self._meta, self._state = folder, copy._meta, copy._state

    # -- in-memory operations ------------------------------------------------------------------

    def _upsert(self, chunks: Sequence[Chunk], matrix: np.ndarray) -> None:
        if self._dim is None:
            self._dim = matrix.shape[1]
            self._vectors = np.empty((0, self._dim), dtype=np.float32)
        if matrix.shape[1] != self._dim:
            raise ValueError(f"vectors have {matrix.shape[1]} dimensions, the store {self._dim}")
        rows = np.empty(len(chunks), dtype=np.int64)
        n = self.count()
        for i, chunk in enumerate(chunks):
            row = self._row.get(chunk.id)
            if row is None:
                row = self._row[chunk.id] = n
                self._chunks.append(chunk)
                n += 1
            else:
                self._chunks[row] = chunk
            rows[i] = row
        if n > self._vectors.shape[0]:
            grown = np.empty((max(n, 2 * self._vectors.shape[0]), self._dim), dtype=np.float32)
            grown[: self._vectors.shape[0]] = self._vectors
            self._vectors = grown
        self._vectors[rows] = matrix

    def _remove(self, ids: Sequence[str]) -> None:
        n = self.count()
        keep = np.ones(n, dtype=bool)
        keep[[self._row[i] for i in ids]] = False
        self._vectors = self._vectors[:n][keep]
        self._chunks = [c for c, k in zip(self._chunks, keep.tolist(), strict=True) if k]
        self._row = {c.id: r for r, c in enumerate(self._chunks)}

    # -- files ---------------------------------------------------------------------------------

    def _replay(self, seg: Path, info: dict[str, Any]) -> None:
        if info["deletes"]:
            deleted = json.loads((seg / "deleted.json").read_text("utf-8"))
            self._remove([i for i in dict.fromkeys(deleted) if i in self._row])
        if info["adds"]:
            with open(seg / "chunks.jsonl", encoding="utf-8") as fh:
                chunks = [chunk_from_json(json.loads(line)) for line in fh]
            vectors = np.load(seg / "vectors.npy", allow_pickle=False)
            if vectors.dtype != np.float32 or vectors.shape != (info["adds"], self._dim):
                raise ValueError(
                    f"{seg}/vectors.npy has {vectors.dtype} {vectors.shape}, "
                    f"expected float32 ({info['adds']}, {self._dim})"
                )
            if len(chunks) != info["adds"]:
                raise ValueError(
                    f"{seg}/chunks.jsonl has {len(chunks)} lines, expected {info['adds']}"
                )
            self._upsert(chunks, vectors)

    def _append_segment(
        self,
        *,
        records: list[dict[str, Any]] | None = None,
        vectors: np.ndarray | None = None,
        deleted: list[str] | None = None,
    ) -> None:
        folder, meta = self._folder(), self._meta or _empty_meta()
        segments = meta["segments"]
        base = segments[0]["adds"] if segments else 0
        logged = sum(s["adds"] + s["deletes"] for s in segments[1:])
        logged += len(records or []) + len(deleted or [])
        if logged > base or len(segments) >= MAX_SEGMENTS:
            self._compact()  # the log outgrew the base: rewrite it all as the new base
            return
        info = _write_segment(folder, meta["next_segment"], records, vectors, deleted)
        self._commit({**meta, "segments": [*segments, info], "next_segment": info["number"] + 1})

    def _compact(self) -> None:
        folder, meta = self._folder(), self._meta or _empty_meta()
        n, number = self.count(), meta["next_segment"]
        segments = []
        if n:
            records = [chunk_to_json(c) for c in self._chunks]
            segments = [_write_segment(folder, number, records, self._vectors[:n], None)]
        self._commit({**meta, "segments": segments, "next_segment": number + 1})

    def _folder(self) -> Path:
        if self.path is None:
            raise ValueError(
                "this store has no folder: use MemoryStore.open(folder) or save(folder)"
            )
        return self.path

    def _commit(self, meta: dict[str, Any]) -> None:
        folder = self._folder()
        meta = {**meta, "dim": self._dim, "count": self.count()}
        write_atomic(folder / META, json.dumps(meta, indent=1))
        self._meta, self._state = meta, file_state(folder / META)  # ours: nothing to re-read
        live = {s["name"] for s in meta["segments"]}
        for entry in folder.iterdir():  # segments no longer listed, or left by a killed write
            if entry.name.startswith("seg-") and entry.name not in live:
                shutil.rmtree(entry, ignore_errors=True)
        remove_stale_temps(folder)


def _empty_meta() -> dict[str, Any]:
    return {"format": FORMAT, "version": FORMAT_VERSION, "segments": [], "next_segment": 1}


def _write_segment(
    folder: Path,
    number: int,
    records: list[dict[str, Any]] | None,
    vectors: np.ndarray | None,
    deleted: list[str] | None,
) -> dict[str, Any]:
    name = f"seg-{number:06d}"
    seg = folder / name
    if seg.exists():  # an uncommitted leftover of a killed write
        shutil.rmtree(seg)
    seg.mkdir(parents=True)
    adds = len(records or [])
    if records:
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        write_synced(seg / "chunks.jsonl", lines.encode("utf-8"))
        with open(seg / "vectors.npy", "wb") as fh:  # streamed: no in-memory copy of the .npy
            np.save(fh, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
    if deleted:
        write_synced(seg / "deleted.json", json.dumps(deleted, ensure_ascii=False).encode())
    fsync_dir(seg)
    fsync_dir(folder)  # the segment's own directory entry, before meta.json can point to it
    return {"name": name, "number": number, "adds": adds, "deletes": len(deleted or [])}
