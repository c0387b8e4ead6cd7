"""A lexical store: BM25 over the term lists a lexical encoder gives, updated incrementally.

``add`` takes one list of terms per chunk (``BM25Encoder.embed_documents``), ``search`` one for
the query (``embed_query``). Adding or deleting chunks touches only their own terms: each add
becomes a new segment of raw term counts, a delete tombstones rows, and BM25 is computed at
query time from the statistics of all live chunks, so the scores always equal one BM25 index
built afresh over them (see ``rag.stores._bm25_segments``). Small segments are merged from their
stored counts, never by re-tokenising.

Only chunks sharing a term with the query are returned, with positive scores, best first; equal
scores are ordered by insertion (a re-added chunk counts as inserted when it was re-added).

A persisted store writes through, like ``MemoryStore``: when a call returns the change is on
disk. The folder (JSON, JSON lines, ``.npy``; no pickle)::

    meta.json                  format, version, k1, b, method, count, the live segments (the commit)
    seg-000001/chunks.jsonl    one chunk per line, in row order (read when a chunk is first needed)
    seg-000001/segment.json    {"ids": [...], "doc_ids": [...]} per row, "terms": the vocabulary
                               (sorted; column j is terms[j])
    seg-000001/tf_indptr.npy   int64, len(terms) + 1: column j's postings are [indptr[j], indptr[j+1])
    seg-000001/postings.npy    int32 (2, postings): per posting its row (ascending within a column)
                               and how often the term occurs in that row
    seg-000001/doc_len.npy     int32, per row: its number of terms
    seg-000001/dead-000004.npy int32, the rows deleted since (a new file per change)

Segment files never change once written. New segments and tombstone files are written and
fsynced before ``meta.json`` is replaced (``rag.files.write_json_atomic``), the one atomic commit:
a process killed at any moment leaves the old or the new store. One writer per folder at a time.
Readers take no lock: they load the generation ``meta.json`` names (again from the new one when a
file vanished under them), hold each segment's chunk file open until they read it (a writer
removes old generations after its commit), and ``refresh`` when ``meta.json`` changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.base import Store
from rag.files import file_state, write_json_atomic
from rag.stores import _bm25_segments as seg
from rag.stores._bm25_files import (
    lines_reader,
    load_committed,
    remove_unlisted,
    term_lists,
    write_dead,
    write_segment,
)
from rag.stores._codec import check_k, last_occurrences, metadata_json
from rag.types import Chunk
from rag.types.filters import Where

FORMAT = "rag-bm25-store"
FORMAT_VERSION = 1
META = "meta.json"


class BM25Store(Store):
    """BM25 (``method`` lucene, robertson or atire; ``k1``, ``b``) over chunks' term lists.

    ``BM25Store()`` lives in memory only; ``BM25Store.open(folder)`` loads (or starts) a
    persisted one. If a write raises, neither the store in memory nor its folder has changed.
    """

    kind = "lexical"

    def __init__(self, *, k1: float = 1.5, b: float = 0.75, method: seg.Method = "lucene") -> None:
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        if method not in seg.METHODS:
            raise ValueError(
                f"unknown BM25 method {method!r}; choose one of: lucene, robertson, atire"
            )
        self.k1, self.b, self.method = float(k1), float(b), method
        self.path: Path | None = None
        self._segments: list[seg.Segment] = []
        self._where: dict[str, tuple[int, int]] = {}  # chunk id -> (segment number, row)
        self._by_number: dict[int, seg.Segment] = {}
        self._offsets = np.zeros(1, dtype=np.int64)  # segment i's rows start at _offsets[i]
        self._next = 1
        self._live_len = 0
        self._norms: dict[int, np.ndarray] = {}  # per segment, for the current average length
        self._state: tuple[int, int, int] | None = None  # meta.json as last read or written

    # -- Store ---------------------------------------------------------------------------

    def count(self) -> int:
        return len(self._where)

    def add(self, chunks: Sequence[Chunk], embeddings: Any) -> None:
        terms = term_lists(embeddings, len(chunks))
        if len(chunks) == 0:
            return
        keep = last_occurrences(chunks)
        chunks, terms = [chunks[i] for i in keep], [terms[i] for i in keep]
        new = seg.build(self._take_number(), chunks, terms)
        if self.path is not None:  # chunk JSON refuses lossy metadata before any change
            new.docs.lines = seg.encode(chunks)
        else:
            for c in chunks:
                metadata_json(c)
        replaced = [c.id for c in chunks if c.id in self._where]
        self._change([*self._tombstoned(replaced), new], replaced)

    def delete(self, ids: Sequence[str]) -> None:
        gone = [i for i in dict.fromkeys(ids) if i in self._where]
        if gone:
            self._change(self._tombstoned(gone), gone)

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        wanted = set(doc_ids)
        self.delete(
            [
                i
                for s in self._segments
                for i, d, alive in zip(s.docs.ids, s.docs.doc_ids, s.live.tolist(), strict=True)
                if alive and d in wanted
            ]
        )

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        return {i for i in ids if i in self._where}

    def ids(self) -> list[str]:
        return list(self._where)

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        found = (self._where.get(i) for i in ids)
        return [
            self._by_number[n].docs.chunk(row) for n, row in (w for w in found if w is not None)
        ]

    def search(
        self, query: Sequence[str], k: int = 10, *, where: Where | None = None
    ) -> list[tuple[Chunk, float]]:
        return self.search_many([query], k, where=where)[0]

    def search_many(
        self, queries: Sequence[Sequence[str]], k: int = 10, *, where: Where | None = None
    ) -> list[list[tuple[Chunk, float]]]:
        check_k(k)
        queries = term_lists(queries, None, what="queries")
        return [self._top(self.scores(q), k, where) for q in queries]

    # -- scoring -------------------------------------------------------------------------------

    def scores(self, query: Sequence[str]) -> np.ndarray:
        """float32 BM25 scores of ``query`` per row position (rows of all segments in order;
        deleted rows score 0). A repeated query term counts each time, as in Lucene and bm25s."""
        scores = np.zeros(int(self._offsets[-1]), dtype=np.float32)
        n = self.count()
        if n == 0:
            return scores
        contributions = {t: self._term(t, n) for t in dict.fromkeys(query)}
        for term in query:  # in query order, so the float32 sums match bm25s'
            for positions, values in contributions[term]:
                scores[positions] += values
        return scores

    def _term(self, term: str, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        found = [(i, *s.postings(term)) for i, s in enumerate(self._segments)]
        df = sum(len(rows) for _, rows, _ in found)
        if df == 0:
            return []
        weight = seg.idf(self.method, df, n)
        out = []
        for i, rows, tf in found:
            if len(rows):
                norms = self._segment_norms(self._segments[i])[rows]
                values = seg.term_scores(self.method, weight, tf, norms, self.k1)
                out.append((self._offsets[i] + rows, values))
        return out

    def _segment_norms(self, segment: seg.Segment) -> np.ndarray:
        norms = self._norms.get(segment.number)
        if norms is None:
            avgdl = self._live_len / self.count()
            norms = seg.length_norms(segment.doc_len, avgdl, self.k1, self.b)
            self._norms[segment.number] = norms
        return norms

    def _top(
        self, scores: np.ndarray, k: int, where: Where | None = None
    ) -> list[tuple[Chunk, float]]:
        if where is not None:
            return self._top_matching(scores, k, where)
        matched = np.flatnonzero(scores > 0)
        if len(matched) > k:  # the top k, plus any ties at the cut-off, before the exact sort
            cut = np.partition(scores[matched], len(matched) - k)[len(matched) - k]
            matched = matched[scores[matched] >= cut]
        top = matched[np.lexsort((matched, -scores[matched]))[:k]]
        which = np.searchsorted(self._offsets, top, side="right") - 1
        return [
            (self._segments[i].docs.chunk(p - self._offsets[i]), float(scores[p]))
            for i, p in zip(which.tolist(), top.tolist(), strict=True)
        ]

    def _top_matching(self, scores: np.ndarray, k: int, where: Where) -> list[tuple[Chunk, float]]:
        """The best ``k`` rows whose chunks ``where`` matches (read in score order, lazily)."""
        matched = np.flatnonzero(scores > 0)
        order = matched[np.lexsort((matched, -scores[matched]))]
        which = np.searchsorted(self._offsets, order, side="right") - 1
        out: list[tuple[Chunk, float]] = []
        for i, p in zip(which.tolist(), order.tolist(), strict=True):
            chunk = self._segments[i].docs.chunk(p - self._offsets[i])
            if where.matches(chunk):
                out.append((chunk, float(scores[p])))
                if len(out) == k:
                    break
        return out

    # -- changes -------------------------------------------------------------------------------

    def _tombstoned(self, ids: Sequence[str]) -> list[seg.Segment]:
        """The current segments with the rows of ``ids`` tombstoned."""
        rows: dict[int, list[int]] = {}
        for i in ids:
            n, row = self._where[i]
            rows.setdefault(n, []).append(row)
        return [s.with_dead(rows[s.number]) if s.number in rows else s for s in self._segments]

    def _change(self, segments: list[seg.Segment], removed: Sequence[str]) -> None:
        """Merge as the policy says, write (when persisted) and commit, then install."""
        segments = seg.plan(segments, self._take_number)
        if self.path is not None:
            self._write(segments)
        self._install(segments, removed)

    def _install(self, segments: list[seg.Segment], removed: Sequence[str]) -> None:
        old = self._by_number
        for i in removed:
            del self._where[i]
        self._by_number = {s.number: s for s in segments}
        for s in segments:
            if s.number not in old:
                self._where.update(
                    (i, (s.number, row))
                    for row, (i, alive) in enumerate(zip(s.docs.ids, s.live.tolist(), strict=True))
                    if alive
                )
            if s.docs.chunks is not None or s.docs.read is not None:
                s.docs.parts = None  # the merged parts are no longer needed
        self._segments = segments
        self._offsets = np.cumsum([0, *(s.n_docs for s in segments)], dtype=np.int64)
        self._live_len = sum(s.live_len for s in segments)
        self._norms.clear()  # the average length changed

    def _take_number(self) -> int:
        self._next += 1
        return self._next - 1

    # -- persistence ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        folder: str | Path,
        *,
        create: bool = True,
        k1: float | None = None,
        b: float | None = None,
        method: seg.Method | None = None,
    ) -> BM25Store:
        """Load the store in ``folder``; with ``create``, a folder without one starts empty.

        ``k1``, ``b`` and ``method`` set up a new store (defaults 1.5, 0.75, lucene); for an
        existing one they must match what it was built with (``None``: whatever it has)."""
        folder = Path(folder)
        asked = {"k1": k1, "b": b, "method": method}
        loaded = load_committed(folder, FORMAT, FORMAT_VERSION, {})
        if loaded is None:
            if not create:
                raise FileNotFoundError(f"no BM25 store in {folder} (missing {META})")
            store = cls(**{key: v for key, v in asked.items() if v is not None})
            store.path = folder
            return store
        meta = loaded[0]
        for key, value in asked.items():
            if value is not None and value != meta[key]:
                raise ValueError(
                    f"{folder} holds a BM25 store with {key}={meta[key]!r}, not {value!r}"
                )
        store = cls(k1=meta["k1"], b=meta["b"], method=meta["method"])
        store.path = folder
        store._adopt(*loaded)
        return store

    def refresh(self) -> bool:
        """Re-read the folder when another process committed to it since this object last read
        or wrote it (one ``stat`` of ``meta.json`` when nothing changed); True when it did.
        Segments already loaded are kept: a segment never changes once written."""
        if self.path is None or file_state(self.path / META) == self._state:
            return False
        reuse = {(s.name, s.dead_file): s for s in self._segments if s.written}
        loaded = load_committed(self.path, FORMAT, FORMAT_VERSION, reuse)
        self._where, self._by_number = {}, {}
        if loaded is None:  # the store was removed: it reads as empty
            self._install([], [])
            self._state = None
        else:
            self._adopt(*loaded)
        return True

    def _adopt(
        self, meta: dict[str, Any], segments: list[seg.Segment], state: tuple[int, int, int]
    ) -> None:
        self.k1, self.b, self.method = float(meta["k1"]), float(meta["b"]), meta["method"]
        self._next, self._state = meta["next_segment"], state
        self._install(segments, [])
        if self.count() != meta["count"]:
            raise ValueError(
                f"{self.path}: segments hold {self.count()} chunks, meta.json says {meta['count']}"
            )

    def compact(self) -> None:
        """Merge every segment into one (dropping deleted rows); persisted stores rewrite it."""
        if self._segments:
            merged = seg.merge(self._take_number(), self._segments)
            segments = [merged] if merged.n_docs else []
            if self.path is not None:
                self._write(segments)
            self._install(segments, [])

    def save(self, folder: str | Path) -> None:
        """Write the store to the new folder ``folder`` as one segment; an in-memory store is
        then bound to it (later writes persist there), a persisted one stays where it was."""
        folder = Path(folder)
        if (folder / META).exists():
            raise FileExistsError(f"{folder} already holds a store; open it instead")
        merged = seg.merge(self._take_number(), self._segments)
        segments = [merged] if merged.n_docs else []
        copy = BM25Store(k1=self.k1, b=self.b, method=self.method)
        copy.path, copy._next = folder, self._next
        copy._write(segments)
        if self.path is None:
            self.path, self._next, self._state = folder, copy._next, copy._state
            self._install(segments, [])

    def _write(self, segments: list[seg.Segment]) -> None:
        folder = self._folder()
        folder.mkdir(parents=True, exist_ok=True)
        fresh = [s for s in segments if not s.written]
        for s in fresh:
            write_segment(folder, s)
        for s in segments:
            if len(s.dead) and s.dead_file is None:
                write_dead(folder, s, self._take_number())
        write_json_atomic(folder / META, self._meta(segments))
        self._state = file_state(folder / META)  # our own commit: nothing to re-read
        for s in fresh:  # committed: their chunks now come from their own files
            s.written = True
            s.docs.read, s.docs.lines = lines_reader(folder, s), None
        remove_unlisted(folder, segments)

    def _meta(self, segments: list[seg.Segment]) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "k1": self.k1,
            "b": self.b,
            "method": self.method,
            "count": sum(s.n_live for s in segments),
            "next_segment": self._next,
            "segments": [
                {
                    "name": s.name,
                    "number": s.number,
                    "docs": s.n_docs,
                    "terms": len(s.terms),
                    "postings": len(s.rows),
                    "dead": len(s.dead),
                    "dead_file": s.dead_file,
                }
                for s in segments
            ],
        }

    def _folder(self) -> Path:
        if self.path is None:
            raise ValueError("this store has no folder: use BM25Store.open(folder) or save(folder)")
        return self.path
