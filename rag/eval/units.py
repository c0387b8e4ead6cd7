"""What an evaluation indexes: a BEIR corpus as Documents and their Chunks, per protocol.

- ``whole``: one chunk per corpus document, its text ``(title + " " + text).strip()`` -- the
  convention of BEIR's ``SentenceBERT.encode_corpus`` (``sep=" "``), also used by
  sentence-transformers' BEIR/NanoBEIR evaluators. BM25 indexes the same string.
- ``chunked``: the chunked-document protocol of ``shared/data/README.md``. Each document becomes a
  :class:`~rag.types.Document` (one span), is cut by the product's chunkers into sentence-aware
  chunks of at most ``chunk_tokens`` tokens with the title as *context* (not in the chunk text),
  and a document scores the best score of its chunks
  (:class:`rag.retrieval.documents.DocumentRanker`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.chunking import SentenceChunker
from rag.chunking.text import split_sentences
from rag.eval.beir import BeirDataset
from rag.types import Chunk, Document, Span, sha256_hex

if TYPE_CHECKING:
    from rag.base import Chunker

DEFAULT_CHUNKER = "sentence"
# How the chunked protocol cuts a corpus record: ``packed`` sentences up to ``chunk_tokens``,
# one ``sentence`` per chunk, or the whole ``record`` as one chunk (Climate-FEVER's records are
# single evidence sentences: each is a chunk, its article title the context).
CHUNKINGS: tuple[str, ...] = ("packed", "sentence", "record")
RECORD_MAX_TOKENS = 1 << 30


def whole_text(title: str, text: str) -> str:
    """The text of a whole document: BEIR's ``(title + " " + text).strip()``."""
    return f"{title} {text}".strip()


def corpus_document(dataset_name: str, doc_id: str, title: str, text: str) -> Document:
    """A corpus record as a Document: id = corpus id, the title apart, one span over the text."""
    return Document(
        id=doc_id,
        text=text,
        source=f"{dataset_name}/{doc_id}",
        content_hash=sha256_hex(text),
        title=title or None,
        spans=[Span(0, len(text))] if text else [],
    )


def document_chunk(document: Document) -> Chunk:
    """The one chunk that is the whole document (its context is the document too)."""
    text = document.text
    return Chunk(
        id=Chunk.make_id(document.id, 0, len(text), text),
        doc_id=document.id,
        text=text,
        start=0,
        end=len(text),
        source=document.source,
        title=document.title,
        context=text,
        context_start=0,
        context_end=len(text),
    )


@dataclass
class Units:
    """The indexed chunks, in index order, and the Documents they came from (for encoders that
    need the whole document, such as late chunking). ``max_per_doc`` is the most chunks of any
    one document: how deep a document ranking must search to be exact."""

    chunks: list[Chunk]
    documents: list[Document]
    max_per_doc: int = 1

    def __post_init__(self) -> None:
        known = {d.id for d in self.documents}
        stray = sorted({c.doc_id for c in self.chunks} - known)
        if stray:
            raise ValueError(f"chunks of documents that are not given: {stray[:5]}")

    @property
    def texts(self) -> list[str]:
        """What the encoders embed: each chunk's text."""
        return [c.text for c in self.chunks]

    @property
    def doc_ids(self) -> list[str]:
        return [c.doc_id for c in self.chunks]

    def __len__(self) -> int:
        return len(self.chunks)

    def first_chunks(self) -> dict[str, Chunk]:
        """Each indexed document's first chunk (under the whole protocol: its only one)."""
        first: dict[str, Chunk] = {}
        for chunk in self.chunks:
            first.setdefault(chunk.doc_id, chunk)
        return first


def whole_units(dataset: BeirDataset) -> Units:
    """One chunk per corpus document, over its whole text (the title is part of it)."""
    documents = [
        corpus_document(dataset.name, doc_id, title, whole_text(title, text))
        for doc_id, (title, text) in dataset.corpus.items()
    ]
    return Units(chunks=[document_chunk(d) for d in documents], documents=documents)


def chunked_units(dataset: BeirDataset, chunker: Chunker, *, show_progress: bool = False) -> Units:
    """Chunk every corpus document; the chunk texts (no title) are indexed.

    A document whose text yields no chunk (an empty abstract) cannot be retrieved under this
    protocol, as in any chunk index.
    """
    documents = [
        corpus_document(dataset.name, doc_id, title, text)
        for doc_id, (title, text) in dataset.corpus.items()
    ]
    chunks: list[Chunk] = []
    counts: dict[str, int] = {}
    for doc in _progress(documents, "chunking", show_progress):
        for chunk in chunker.chunk(doc):
            chunks.append(chunk)
            counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
    return Units(chunks=chunks, documents=documents, max_per_doc=max(counts.values(), default=1))


class OneSentenceChunker(SentenceChunker):
    """One sentence per chunk (a sentence over the limit is cut into near-equal token pieces):
    HotpotQA's paragraphs cut into sentence chunks, with the paragraph as context."""

    def cut(self, tokens, start, end):  # type: ignore[no-untyped-def]
        return [c for s in split_sentences(tokens.text, start, end) for c in tokens.pack([s])]


def make_chunker(
    chunk_tokens: int, name: str = DEFAULT_CHUNKER, chunking: str = "packed"
) -> Chunker:
    from rag.chunking import get_chunker

    if chunking == "sentence":
        return OneSentenceChunker(max_tokens=chunk_tokens, min_chars=0)  # one sentence each
    if chunking == "record":
        return get_chunker(name, max_tokens=RECORD_MAX_TOKENS)
    if chunking != "packed":
        raise ValueError(f"unknown chunking {chunking!r}; choose one of: {', '.join(CHUNKINGS)}")
    return get_chunker(name, max_tokens=chunk_tokens)


def _progress(items: Sequence[Any], desc: str, show: bool) -> Any:
    if not show:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, file=sys.stderr, unit="doc")
