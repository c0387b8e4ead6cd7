"""Training examples for a situated encoder, made only from what a user has.

Each example is one late-chunking window (a document's text, with its title and section before
it) from which every chunk is pooled, a query, and which of those chunks answer it:

- **inverse cloze** (Lee, Chang & Toutanova, "Latent Retrieval for Weakly Supervised Open Domain
  Question Answering", ACL 2019): a sentence taken out of a chunk is the query; the positive is
  that chunk, read in its window with the sentence removed (kept in a small share of examples,
  as in the paper, so exact matches still count). The chunk must then be found by what is left
  of it *and its context*;
- **judged queries** (a train split of qrels): the query, with every chunk of a judged document
  as a positive (the document's best chunk is not known).

The other chunks of the same window are the in-sequence negatives of InSeNT (Conti et al.,
"Context is Gold to find the Gold Passage", arXiv:2505.24782, 2025); the trainer adds the chunks
of the other windows of a batch as in-batch negatives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rag.types import Chunk

SENTENCE_END = (".", "?", "!")
MIN_QUERY_TOKENS = 4


@dataclass(frozen=True)
class Example:
    """``window``: token ids (special tokens included); ``spans``: ``(first, end)`` token range
    of each chunk pooled from it; ``query``: token ids of the query (special tokens included);
    ``positives``: indices into ``spans``; ``doc_id``: the window's document."""

    window: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]
    query: tuple[int, ...]
    positives: tuple[int, ...]
    doc_id: str


@dataclass(frozen=True)
class Window:
    """A late-chunking window of one document and the chunks pooled from it."""

    doc_id: str
    ids: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]


def windows_of(late: object, chunks: Sequence[Chunk]) -> list[Window]:
    """The windows a :class:`~rag.encoders.situated.late.LateChunkingEncoder` would run over
    ``chunks`` (the same header, window size and pooling spans as at encode time)."""
    out = []
    for job in late.jobs(chunks):  # type: ignore[attr-defined]
        doc_id = chunks[job.spans[0][0]].doc_id
        spans = tuple((first, end) for _, first, end in job.spans)
        out.append(Window(doc_id, tuple(job.input_ids), spans))
    return out


def sentence_ranges(
    ids: Sequence[int], first: int, end: int, stops: set[int]
) -> list[tuple[int, int]]:
    """Token ranges of the sentences inside ``ids[first:end]`` (a sentence ends at a stop
    token); ranges shorter than ``MIN_QUERY_TOKENS`` are dropped."""
    ranges, start = [], first
    for i in range(first, end):
        if ids[i] in stops:
            ranges.append((start, i + 1))
            start = i + 1
    if start < end:
        ranges.append((start, end))
    return [(a, b) for a, b in ranges if b - a >= MIN_QUERY_TOKENS]


def cloze_example(
    window: Window,
    rng: np.random.Generator,
    *,
    stops: set[int],
    cls: Sequence[int],
    sep: Sequence[int],
    keep_probability: float = 0.1,
) -> Example | None:
    """One inverse-cloze example from ``window``, or None when no chunk has a sentence."""
    order = rng.permutation(len(window.spans))
    for index in order:
        first, end = window.spans[index]
        sentences = sentence_ranges(window.ids, first, end, stops)
        if not sentences:
            continue
        a, b = sentences[int(rng.integers(len(sentences)))]
        query = (*cls, *window.ids[a:b], *sep)
        # A chunk that is only this sentence keeps it: removing it would leave nothing to pool.
        if len(sentences) == 1 and (a, b) == (first, end) or rng.random() < keep_probability:
            return Example(window.ids, window.spans, query, (int(index),), window.doc_id)
        cut = b - a
        ids = window.ids[:a] + window.ids[b:]
        spans = tuple(_shift(span, a, b, cut) for span in window.spans)
        return Example(ids, spans, query, (int(index),), window.doc_id)
    return None


def _shift(span: tuple[int, int], a: int, b: int, cut: int) -> tuple[int, int]:
    """A span after tokens ``[a, b)`` are removed (the removed sentence lay inside one span)."""
    first, end = span
    if end <= a:
        return span
    if first >= b:
        return first - cut, end - cut
    return first, max(end - cut, first + 1)


def judged_examples(
    windows: Sequence[Window],
    queries: Mapping[str, Sequence[int]],
    qrels: Mapping[str, Mapping[str, int]],
) -> list[Example]:
    """One example per (query, judged document window): every chunk of the window is a
    positive. ``queries`` are token ids with special tokens."""
    by_doc: dict[str, list[Window]] = {}
    for w in windows:
        by_doc.setdefault(w.doc_id, []).append(w)
    out = []
    for qid, judged in sorted(qrels.items()):
        if qid not in queries:
            continue
        for doc_id, relevance in sorted(judged.items()):
            for w in by_doc.get(doc_id, [])[:1] if relevance > 0 else []:
                positives = tuple(range(len(w.spans)))
                out.append(Example(w.ids, w.spans, tuple(queries[qid]), positives, doc_id))
    return out
