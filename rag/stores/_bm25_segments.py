"""The parts of a BM25 store: segments of raw term frequencies, merged without re-tokenising.

A segment holds a block of chunks as the term counts their encoder gave, never as scores: a
(documents x terms) CSC matrix over the segment's own sorted vocabulary (``indptr``, then per
posting its ``rows`` and ``tf``), each document's length, and the rows deleted since it was
written (tombstones). Scores need corpus statistics (the number of live documents, each term's
document frequency, the average length), which change with every add and delete, so they are
computed at query time from all segments together: a store of many segments scores exactly as
one BM25 index over its live chunks. ``merge`` builds one segment from others' stored counts.

BM25 formulas as in bm25s (Lù, arXiv:2407.03618) after Kamphuis et al., "Which BM25 Do You
Mean? A Large-Scale Reproducibility Study of Scoring Variants", ECIR 2020. The float types follow
bm25s step by step (idf rounded to float32, the term-frequency part in float64, each term's
contribution rounded to float32 and summed in float32 in query order), so the scores are those
of bm25s' eager index, bit for bit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from rag.stores._codec import chunk_from_json, chunk_to_json
from rag.types import Chunk

Method = Literal["lucene", "robertson", "atire"]
METHODS: tuple[Method, ...] = ("lucene", "robertson", "atire")


@dataclass
class SegmentChunks:
    """A segment's chunks, row by row. Ids and document ids are always at hand; the chunks are
    objects (made in this process) or JSON lines read from the segment's file on first use and
    parsed one row at a time, so opening a store reads no chunk text. A merged segment, until
    written, gets its lines from the ``parts`` it was merged from (each with its live rows)."""

    ids: list[str]
    doc_ids: list[str]
    chunks: list[Chunk] | None = None
    lines: list[bytes] | None = field(default=None, repr=False)
    read: Callable[[], list[bytes]] | None = field(default=None, repr=False)
    parts: list[tuple[SegmentChunks, np.ndarray]] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, chunks: Sequence[Chunk]) -> SegmentChunks:
        return cls([c.id for c in chunks], [c.doc_id for c in chunks], chunks=list(chunks))

    @classmethod
    def merged(cls, parts: Sequence[tuple[SegmentChunks, np.ndarray]]) -> SegmentChunks:
        """The live rows of ``parts`` (each: its chunks and live mask), in order."""
        ids = [i for part, live in parts for i in _kept(part.ids, live)]
        doc_ids = [d for part, live in parts for d in _kept(part.doc_ids, live)]
        chunks = None
        if all(part.chunks is not None for part, _ in parts):
            chunks = [c for part, live in parts for c in _kept(part.chunks or [], live)]
        return cls(ids, doc_ids, chunks=chunks, parts=list(parts))

    def chunk(self, row: int) -> Chunk:
        if self.chunks is not None:
            return self.chunks[row]
        return chunk_from_json(json.loads(self.json_lines()[row]))

    def json_lines(self) -> list[bytes]:
        """Every row as one line of JSON (UTF-8, no newline), copied rather than re-encoded
        where a file or a merged part already holds it."""
        if self.lines is None:
            if self.read is not None:
                self.lines = self.read()
            elif self.parts is not None:
                self.lines = [
                    x for part, live in self.parts for x in _kept(part.json_lines(), live)
                ]
            else:
                self.lines = encode(self.chunks or [])
        return self.lines


def _kept(items: Sequence, live: np.ndarray) -> list:
    return [x for x, alive in zip(items, live.tolist(), strict=True) if alive]


def encode(chunks: Sequence[Chunk]) -> list[bytes]:
    """Each chunk as a line of JSON (refusing metadata JSON would change)."""
    return [
        json.dumps(chunk_to_json(c), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        for c in chunks
    ]


@dataclass
class Segment:
    """One block of chunks with their term counts; only ``dead`` changes after it is built.

    ``terms[j]`` is column ``j``; its postings are ``rows[indptr[j]:indptr[j + 1]]`` (ascending)
    with counts ``tf[...]``. ``dead`` lists tombstoned rows (sorted). ``written`` says the
    segment's files exist in the store's folder, ``dead_file`` which tombstone file holds
    ``dead`` there (``None``: not written yet, or no tombstones).
    """

    number: int
    docs: SegmentChunks
    terms: list[str]
    indptr: np.ndarray  # int64 (len(terms) + 1,)
    rows: np.ndarray  # int32 (postings,)
    tf: np.ndarray  # int32 (postings,)
    doc_len: np.ndarray  # int32 (rows,)
    dead: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    written: bool = False
    dead_file: str | None = None
    columns: dict[str, int] | None = field(default=None, repr=False)
    live: np.ndarray = field(init=False, repr=False)
    live_len: int = field(init=False)

    def __post_init__(self) -> None:
        self.live = np.ones(len(self.docs.ids), dtype=bool)
        self.live[self.dead] = False
        self.live_len = int(self.doc_len[self.live].sum(dtype=np.int64))

    @property
    def name(self) -> str:
        return f"seg-{self.number:06d}"

    @property
    def n_docs(self) -> int:
        return len(self.docs.ids)

    @property
    def n_live(self) -> int:
        return self.n_docs - len(self.dead)

    def column(self, term: str) -> int | None:
        if self.columns is None:
            self.columns = {t: j for j, t in enumerate(self.terms)}
        return self.columns.get(term)

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """The live rows holding ``term`` and its count in each (empty when none)."""
        j = self.column(term)
        if j is None:
            return _NO_ROWS, _NO_ROWS
        lo, hi = self.indptr[j], self.indptr[j + 1]
        rows, tf = self.rows[lo:hi], self.tf[lo:hi]
        if len(self.dead):
            keep = self.live[rows]
            rows, tf = rows[keep], tf[keep]
        return rows, tf

    def with_dead(self, rows: Sequence[int]) -> Segment:
        """A copy with ``rows`` tombstoned as well (the arrays are shared, not copied)."""
        dead = np.union1d(self.dead, np.asarray(rows, dtype=np.int32)).astype(np.int32)
        return Segment(
            self.number,
            self.docs,
            self.terms,
            self.indptr,
            self.rows,
            self.tf,
            self.doc_len,
            dead=dead,
            written=self.written,
            dead_file=None,
            columns=self.columns,
        )


_NO_ROWS = np.zeros(0, dtype=np.int32)


def build(number: int, chunks: Sequence[Chunk], term_lists: Sequence[Sequence[str]]) -> Segment:
    """A segment over ``chunks`` whose terms are ``term_lists`` (one list per chunk)."""
    n = len(chunks)
    unique = {t for terms in term_lists for t in terms}
    if not all(isinstance(t, str) for t in unique):
        raise TypeError(f"terms must be strings, got {sorted(map(repr, unique))[:5]}")
    vocab = sorted(unique)
    column = {t: j for j, t in enumerate(vocab)}
    doc_len = np.fromiter((len(t) for t in term_lists), dtype=np.int64, count=n)
    total = int(doc_len.sum())
    cols = np.fromiter((column[t] for terms in term_lists for t in terms), np.int64, count=total)
    docs = np.repeat(np.arange(n, dtype=np.int64), doc_len)
    # One key per (term, row) pair: sorting the keys gives the CSC order, counting them the tf.
    keys, tf = np.unique(cols * max(n, 1) + docs, return_counts=True)
    return _segment(number, SegmentChunks.of(chunks), vocab, keys, tf, doc_len, n)


def merge(number: int, segments: Sequence[Segment]) -> Segment:
    """One segment with the live rows of ``segments``, in their order, from their stored counts."""
    vocab = sorted(set().union(*(s.terms for s in segments)))
    column = {t: j for j, t in enumerate(vocab)}
    n = sum(s.n_live for s in segments)
    keys, tfs, lens = [], [], []
    offset = 0
    for s in segments:
        new_row = np.cumsum(s.live, dtype=np.int64) - 1 + offset
        remap = np.fromiter((column[t] for t in s.terms), dtype=np.int64, count=len(s.terms))
        cols = np.repeat(remap, np.diff(s.indptr))
        keep = s.live[s.rows]
        keys.append(cols[keep] * max(n, 1) + new_row[s.rows[keep]])
        tfs.append(s.tf[keep])
        lens.append(s.doc_len[s.live])
        offset += s.n_live
    all_keys = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
    order = np.argsort(all_keys, kind="stable")
    all_tf = np.concatenate(tfs)[order] if tfs else np.zeros(0, dtype=np.int32)
    doc_len = np.concatenate(lens) if lens else np.zeros(0, dtype=np.int32)
    docs = SegmentChunks.merged([(s.docs, s.live) for s in segments])
    return _segment(number, docs, vocab, all_keys[order], all_tf, doc_len, n)


def _segment(
    number: int,
    docs: SegmentChunks,
    vocab: list[str],
    keys: np.ndarray,
    tf: np.ndarray,
    doc_len: np.ndarray,
    n: int,
) -> Segment:
    cols = keys // max(n, 1)
    per_term = np.bincount(cols, minlength=len(vocab))
    used = per_term > 0
    if not used.all():  # terms only deleted rows had: drop their empty columns
        vocab = [t for t, u in zip(vocab, used.tolist(), strict=True) if u]
        per_term = per_term[used]
    indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
    np.cumsum(per_term, out=indptr[1:])
    return Segment(
        number,
        docs,
        vocab,
        indptr,
        (keys % max(n, 1)).astype(np.int32),
        np.asarray(tf, dtype=np.int32),
        np.asarray(doc_len, dtype=np.int32),
    )


def plan(segments: Sequence[Segment], new_number: Callable[[], int]) -> list[Segment]:
    """The segments to keep after a change: empty ones dropped, mostly-dead ones rewritten, and
    neighbours merged until each segment holds less than half the live rows of the one before.

    Sizes then shrink geometrically, so there are at most ~log2(n) segments, a small add merges
    only small segments, and each row is rewritten O(log n) times over the store's life. Only
    neighbours merge, so the order of the rows (which breaks score ties) never changes.
    """
    out: list[Segment] = []
    for segment in segments:
        if segment.n_live == 0:
            continue
        if 2 * len(segment.dead) > segment.n_docs:
            segment = merge(new_number(), [segment])
        out.append(segment)
        while len(out) >= 2 and 2 * out[-1].n_live >= out[-2].n_live:
            out[-2:] = [merge(new_number(), out[-2:])]
    return out


# -- scoring -----------------------------------------------------------------------------------


def idf(method: Method, df: int, n: int) -> np.float32:
    """The inverse document frequency of a term in ``df`` of ``n`` documents (float32)."""
    if method == "lucene":
        value = math.log(1 + (n - df + 0.5) / (df + 0.5))
    elif method == "robertson":
        value = math.log(max((n - df + 0.5) / (df + 0.5), 1.0))  # clamped at 0, as in bm25s
    else:  # atire
        value = math.log(n / df)
    return np.float32(value)


def length_norms(doc_len: np.ndarray, avgdl: float, k1: float, b: float) -> np.ndarray:
    """``k1 * (1 - b + b * dl / avgdl)`` per document (float64), shared by all three methods."""
    return k1 * ((1 - b) + b * doc_len / avgdl)


def term_scores(
    method: Method, weight: np.float32, tf: np.ndarray, norms: np.ndarray, k1: float
) -> np.ndarray:
    """One term's BM25 contribution (float32) to documents with counts ``tf``, ``norms`` theirs."""
    if method == "atire":
        part = tf.astype(np.float32) * np.float32(k1 + 1) / (tf + norms)
    else:
        part = tf / (norms + tf)
    return (np.float64(weight) * part).astype(np.float32)
