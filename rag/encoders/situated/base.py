"""What every situated encoder shares: the vectors it returns, its one required method, and the
helpers that read a chunk's context (header, context segments, centred truncation).

A situated encoder embeds a short chunk *conditioned on its context* (title, section path, the
surrounding text the chunker recorded in ``Chunk.context``); queries go through the base
encoder unchanged, so one index holds one vector space.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.types import Chunk, Document

if TYPE_CHECKING:
    from rag.base import Encoder

HEADER_SEPARATOR = " > "


@dataclass(frozen=True)
class ChunkBatch:
    """What a situated encoder reads: the chunks, how to encode them, and optionally their
    documents by ``Document.id`` (the prefix summary callback uses them)."""

    chunks: Sequence[Chunk]
    batch_size: int = 32
    show_progress: bool = False
    documents: Mapping[str, Document] | None = None


@dataclass(frozen=True)
class SituatedVectors:
    """One row per chunk: ``situated`` (the chunk read in its context) and, when asked for or
    when the encoder gives it for free, ``chunk`` (the chunk alone, for residual scoring).
    Both are L2-normalised float32 of the same width."""

    situated: np.ndarray
    chunk: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.chunk is not None and self.chunk.shape != self.situated.shape:
            raise ValueError(
                f"chunk vectors {self.chunk.shape} and situated vectors {self.situated.shape} "
                "must have the same shape"
            )

    def __len__(self) -> int:
        return len(self.situated)


class SituatedEncoder(ABC):
    """Embeds Chunks in their context; queries go through :meth:`embed_queries`.

    Subclasses implement :meth:`embed_chunks`. ``chunk_vectors=True`` asks for the chunk-only
    vectors as well (residual scoring): encoders that get them from the same forward pass always
    return them; the others add one plain pass over the chunk texts only when asked.
    """

    mode: str = "situated"
    base: Encoder

    @property
    def name(self) -> str:
        return f"{self.base.name}+{self.mode}"

    @property
    def dim(self) -> int:
        return self.base.dim

    default_batch_size = 32

    @abstractmethod
    def situated_vectors(self, batch: ChunkBatch) -> np.ndarray | SituatedVectors:
        """The one required method: each chunk's vector read in its context. A mode that gets
        the plain chunk vectors from the same pass returns both as ``SituatedVectors``."""

    def embed_chunks(
        self,
        chunks: Sequence[Chunk],
        *,
        batch_size: int | None = None,
        show_progress: bool = False,
        chunk_vectors: bool = False,
        documents: Mapping[str, Document] | None = None,
    ) -> SituatedVectors:
        """Vectors for ``chunks`` (and, with ``chunk_vectors``, their plain vectors for residual
        scoring); ``documents`` (by ``Document.id``) is optional extra input that some modes use
        (the prefix summary callback)."""
        batch = ChunkBatch(chunks, batch_size or self.default_batch_size, show_progress, documents)
        out = self.situated_vectors(batch)
        if isinstance(out, SituatedVectors):
            return out
        return SituatedVectors(out, self._plain(batch) if chunk_vectors else None)

    def embed_plain(
        self, chunks: Sequence[Chunk], *, batch_size: int | None = None, show_progress: bool = False
    ) -> np.ndarray:
        """The chunks alone (no context) through this encoder's model, for residual scoring."""
        return self._plain(ChunkBatch(chunks, batch_size or self.default_batch_size, show_progress))

    def embed_queries(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False
    ) -> np.ndarray:
        return self.base.embed_queries(texts, batch_size=batch_size, show_progress=show_progress)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_queries([text])[0]

    def options(self) -> dict[str, Any]:
        """The settings that change the vectors (recorded beside an index or a result)."""
        return {"mode": self.mode}

    def _plain(self, batch: ChunkBatch) -> np.ndarray:
        return self._embed_texts([c.text for c in batch.chunks], batch)

    def _embed_texts(self, texts: Sequence[str], batch: ChunkBatch) -> np.ndarray:
        """The base encoder's document vectors of ``texts``, as float32 (n, dim)."""
        vectors = self.base.embed_documents(
            texts, batch_size=batch.batch_size, show_progress=batch.show_progress
        )
        return as_vectors(vectors, self.dim)


def as_vectors(vectors: Any, dim: int) -> np.ndarray:
    """Any (n, dim) array as contiguous float32 (an empty input gives shape (0, dim))."""
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    return array.reshape(0, dim) if array.size == 0 else array


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class PlainEncoder(SituatedEncoder):
    """The baseline: the chunk text alone (its vectors are also the residual's chunk vectors)."""

    mode = "plain"

    def __init__(self, base: Encoder) -> None:
        self.base = base

    def situated_vectors(self, batch: ChunkBatch) -> SituatedVectors:
        vectors = self._plain(batch)
        return SituatedVectors(vectors, vectors)


# -- reading a chunk's context ---------------------------------------------------------------------


def header(chunk: Chunk, separator: str = HEADER_SEPARATOR) -> str:
    """``"title > section > subsection"``: the chunk's place in its document (a section
    heading equal to the title is not repeated)."""
    parts = [chunk.title] if chunk.title else []
    for heading in chunk.section:
        heading = heading.strip()
        if heading and (not parts or heading != parts[-1]):
            parts.append(heading)
    return separator.join(p.strip() for p in parts if p and p.strip())


def surrounding_text(chunk: Chunk) -> str:
    """The chunk's context window, or ``""`` when it holds nothing beyond the chunk itself."""
    context = chunk.context.strip()
    return "" if not context or context == chunk.text.strip() else chunk.context


def chunk_in_context(chunk: Chunk) -> tuple[int, int]:
    """Where the chunk lies inside ``chunk.context`` (character offsets)."""
    start = chunk.start - chunk.context_start
    if not (start >= 0 and start + len(chunk.text) <= len(chunk.context)):
        raise ValueError(
            f"chunk {chunk.id} lies outside its context span "
            f"[{chunk.context_start}, {chunk.context_end}) (start={chunk.start}, end={chunk.end})"
        )
    return start, start + len(chunk.text)


@dataclass(frozen=True)
class Segment:
    """A stretch of a document's text known from its chunks' contexts:
    ``document.text[start:start + len(text)] == text``; ``chunks`` index into the input list."""

    doc_id: str
    start: int
    text: str
    chunks: tuple[int, ...]

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def context_segments(chunks: Sequence[Chunk]) -> list[Segment]:
    """Merge the context spans of each document's chunks into maximal non-overlapping segments.

    Contexts are slices of one document text, so overlapping spans agree on their common part;
    a chunk with no recorded context (``context == ""``) stands for itself. Segments come out
    in input order of their documents, then by position.
    """
    by_doc: dict[str, list[int]] = {}
    for i, chunk in enumerate(chunks):
        by_doc.setdefault(chunk.doc_id, []).append(i)
    segments: list[Segment] = []
    for doc_id, members in by_doc.items():
        spans = []
        for i in members:
            c = chunks[i]
            if c.context and c.context_start <= c.start and c.end <= c.context_end:
                spans.append((c.context_start, c.context_end, c.context, i))
            else:
                spans.append((c.start, c.end, c.text, i))
        spans.sort(key=lambda s: (s[0], -s[1]))
        start, end, text, owned = spans[0][0], spans[0][1], spans[0][2], [spans[0][3]]
        for s_start, s_end, s_text, i in spans[1:]:
            if s_start <= end:  # overlapping or touching: extend with the part beyond ``end``
                if s_end > end:
                    text += s_text[end - s_start :]
                    end = s_end
                owned.append(i)
            else:
                segments.append(Segment(doc_id, start, text, tuple(sorted(owned))))
                start, end, text, owned = s_start, s_end, s_text, [i]
        segments.append(Segment(doc_id, start, text, tuple(sorted(owned))))
    return segments


TokenSpans = Callable[[str], list[tuple[int, int]]]


def centred_window(
    text: str, focus: tuple[int, int], budget: int, token_spans: TokenSpans
) -> tuple[int, int]:
    """The character range of at most ``budget`` tokens of ``text`` centred on ``focus`` (a
    character range), with what one side cannot use given to the other; the focus is kept whole
    when it fits. ``token_spans(text)`` gives each token's ``(start, end)`` characters."""
    if budget <= 0 or not text:
        return focus[0], focus[0]
    spans = token_spans(text)
    if len(spans) <= budget:
        return 0, len(text)
    first = next((i for i, (_, e) in enumerate(spans) if e > focus[0]), len(spans) - 1)
    last = max((i for i, (s, _) in enumerate(spans) if s < focus[1]), default=first)
    last = max(last, first)
    inside = last - first + 1
    if inside >= budget:  # the focus alone fills the budget: keep its beginning
        return spans[first][0], spans[first + budget - 1][1]
    room = budget - inside
    left_room, right_room = first, len(spans) - 1 - last
    left = min(room // 2, left_room)
    right = min(room - left, right_room)
    left = min(room - right, left_room)
    return spans[first - left][0], spans[last + right][1]


def token_spans_for(encoder: Encoder | None) -> TokenSpans:
    """A function giving the ``(start, end)`` characters of each token of a text, in the
    encoder's own tokenisation when it has a fast Hugging Face tokenizer, else tiktoken's."""
    tokenizer = getattr(encoder, "tokenizer", None) if encoder is not None else None
    if tokenizer is not None and getattr(tokenizer, "is_fast", False):

        def hf_spans(text: str) -> list[tuple[int, int]]:
            enc = tokenizer(
                text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
            )
            return [(int(s), int(e)) for s, e in enc["offset_mapping"]]

        return hf_spans
    from rag.chunking.offsets import token_starts
    from rag.tokens import DEFAULT_ENCODING

    def tiktoken_spans(text: str) -> list[tuple[int, int]]:
        starts = token_starts(text, DEFAULT_ENCODING)
        return [(s, e) for s, e in zip(starts, [*starts[1:], len(text)], strict=True) if e > s]

    return tiktoken_spans


def model_window(encoder: Encoder | None, default: int = 512) -> int:
    """How many tokens (special tokens included) the encoder reads before it truncates."""
    limit = getattr(encoder, "max_seq_length", None)
    return int(limit) if isinstance(limit, int) and limit > 0 else default
