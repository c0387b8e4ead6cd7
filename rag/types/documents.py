"""Documents and what retrieval makes of them: Span, Document, IngestError, Chunk, Hit.

Offsets are recorded while splitting and always index into ``Document.text``; a chunk's context
is kept apart from its text so that its offsets stay valid.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Span:
    """A structural region of a document's text: ``text[start:end]`` lies in ``section`` on ``page``.

    ``section`` is the heading path from the outermost heading inwards (empty when the text lies
    before any heading). ``page`` is 1-based, or ``None`` for formats without pages.
    """

    start: int
    end: int
    section: tuple[str, ...] = ()
    page: int | None = None


@dataclass
class Document:
    """One parsed source file (or one record of a corpus), with its structure.

    ``spans`` are ordered, non-overlapping, and lie within ``text``; together they say for every
    character which section and page it belongs to. ``id`` is stable for a source: the source
    path for files, the corpus id for data sets. ``content_hash`` is the SHA-256 of the raw bytes
    (or of the text when there are no bytes) and tells whether a file changed.
    """

    id: str
    text: str
    source: str
    content_hash: str
    title: str | None = None
    spans: list[Span] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)

    def span_at(self, offset: int) -> Span | None:
        """The span holding character ``offset`` (binary search; spans are ordered)."""
        lo, hi = 0, len(self.spans)
        while lo < hi:
            mid = (lo + hi) // 2
            span = self.spans[mid]
            if offset < span.start:
                hi = mid
            elif offset >= span.end:
                lo = mid + 1
            else:
                return span
        return None


@dataclass(frozen=True)
class IngestError:
    """A file that could not be turned into a Document, and why (e.g. ``"no text layer"``)."""

    path: str
    reason: str


@dataclass(frozen=True)
class Chunk:
    """A short piece of a Document, with exact offsets and the context it sits in.

    ``text == document.text[start:end]``. The context window is
    ``document.text[context_start:context_end]`` (it contains the chunk) and is stored as
    ``context``; ``title`` and ``section`` give the structural context. ``id`` derives from the
    content (document id, offsets and text), so re-chunking unchanged input gives the same ids.
    """

    id: str
    doc_id: str
    text: str
    start: int
    end: int
    source: str = ""
    title: str | None = None
    section: tuple[str, ...] = ()
    page: int | None = None
    context: str = ""
    context_start: int = 0
    context_end: int = 0
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @staticmethod
    def make_id(doc_id: str, start: int, end: int, text: str) -> str:
        return sha256_hex(f"{doc_id}\x00{start}\x00{end}\x00{text}")[:32]


@dataclass(frozen=True)
class SourceScore:
    """What one retriever said about a hit: its raw score and 1-based rank there."""

    score: float
    rank: int


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its score, 1-based rank, and the retriever that produced it.

    For fused hits ``source`` names the fusion (e.g. ``"fusion:rrf"``) and ``components`` keeps
    every contributing retriever's own score and rank, so fusion stays debuggable.
    ``duplicates`` holds the near-identical chunks collapsed into this hit by de-duplication
    (the same passage in other copies of a document), best first.
    ``relevance`` is a probability-like score in [0, 1] that means the same in every query of an
    index (see :mod:`rag.retrieval.relevance`); ``None`` where none was fitted.
    """

    chunk: Chunk
    score: float
    rank: int
    source: str
    components: dict[str, SourceScore] = field(default_factory=dict, compare=False, hash=False)
    duplicates: tuple[Chunk, ...] = field(default=(), compare=False, hash=False)
    relevance: float | None = field(default=None, compare=False, hash=False)
