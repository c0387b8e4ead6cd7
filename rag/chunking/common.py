"""What every chunker shares: a document's section runs and token offsets, greedy packing with
exact token checks, and turning ``(start, end)`` cuts into Chunks with their context span.

Token counts are planned on one tokenisation of each section (``estimate``: how many of the
section's tokens a character range overlaps, by binary search) and every emitted chunk is then
counted exactly with tiktoken on its own text (``count``). Re-tokenising a substring can differ
from the tokens it covered in place by a token at the edges, so a chunk whose exact count is over
the limit gives back its last unit, or, when it is a single unit, is cut shorter by tokens.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import ClassVar, Literal

from rag.base import Chunker
from rag.chunking.offsets import prefix_chars, token_starts
from rag.tokens import DEFAULT_ENCODING, get_encoding
from rag.types import Chunk, Document, Span, sha256_hex

ContextMode = Literal["section", "window"]
CONTEXT_MODES: tuple[str, ...] = ("section", "window")
Piece = tuple[int, int]
Cut = tuple[int, int, int]  # start, end, exact token count of text[start:end]

# A single character is at most 4 UTF-8 bytes, hence at most 4 tokens: any limit >= 4 can be met.
MIN_MAX_TOKENS = 4


@dataclass(frozen=True)
class SectionRun:
    """A maximal stretch of the text whose spans share one section path; text between spans
    belongs to the run of the span before it (text before the first span, to the first run)."""

    start: int
    end: int
    section: tuple[str, ...]


def section_runs(document: Document) -> list[SectionRun]:
    """Split ``document.text`` where ``Span.section`` changes; the runs cover the whole text."""
    n = len(document.text)
    spans = document.spans
    if not spans:
        return [SectionRun(0, n, ())] if n else []
    bounds, sections = [0], [spans[0].section]
    for prev, span in pairwise(spans):
        if span.section != prev.section and bounds[-1] < span.start < n:
            bounds.append(span.start)
            sections.append(span.section)
    bounds.append(n)
    return [SectionRun(a, b, s) for (a, b), s in zip(pairwise(bounds), sections, strict=True)]


def lstrip_pos(text: str, pos: int, end: int) -> int:
    """The first non-whitespace position in ``[pos, end)``, or ``end``."""
    while pos < end and text[pos].isspace():
        pos += 1
    return pos


def rstrip_pos(text: str, start: int, pos: int) -> int:
    """The end of ``text[start:pos]`` without its trailing whitespace."""
    while pos > start and text[pos - 1].isspace():
        pos -= 1
    return pos


class DocumentTokens:
    """One document, tokenised once per section run, with the operations chunkers cut with."""

    def __init__(self, document: Document, max_tokens: int, encoding: str = DEFAULT_ENCODING):
        self.document = document
        self.text = document.text
        self.max_tokens = max_tokens
        self.encoding = encoding
        self._encoder = get_encoding(encoding)
        self.runs = section_runs(document)
        self._run_starts = [r.start for r in self.runs]
        # Token start offsets over the whole document, concatenated per run: a run boundary is
        # always a token boundary, as it is a place where chunks are cut.
        starts: list[int] = []
        for run in self.runs:
            starts += token_starts(self.text[run.start : run.end], encoding, offset=run.start)
        self.starts = starts
        self.span_starts = [s.start for s in document.spans]
        self._counts: dict[Piece, int] = {}

    # -- counting ----------------------------------------------------------------------------

    def estimate(self, start: int, end: int) -> int:
        """How many of the document's tokens overlap ``text[start:end]`` (fast, near-exact)."""
        return bisect_left(self.starts, end) - bisect_right(self.starts, start) + 1

    def count(self, start: int, end: int) -> int:
        """The exact token count of ``text[start:end]`` (tiktoken on that text; memoised)."""
        key = (start, end)
        n = self._counts.get(key)
        if n is None:
            n = len(self._encoder.encode_ordinary(self.text[start:end]))
            self._counts[key] = n
        return n

    # -- cutting -----------------------------------------------------------------------------

    def fit(self, start: int, end: int) -> Cut:
        """Shorten ``text[start:end]`` (``start`` not whitespace) until it is within the limit.

        Returns a non-empty cut with no trailing whitespace. Cuts fall on token boundaries of
        the piece's own tokenisation, rounded down to whole characters.
        """
        limit = self.max_tokens
        while True:
            end = rstrip_pos(self.text, start, end)
            piece = self.text[start:end]
            tokens = self._encoder.encode_ordinary(piece)
            if len(tokens) <= limit:
                self._counts[(start, end)] = len(tokens)
                return start, end, len(tokens)
            new_end = start + prefix_chars(piece, tokens, limit, self.encoding)
            # Always make progress, and never return an empty piece (one character always fits).
            end = min(max(new_end, start + 1), end - 1)

    def split_by_tokens(self, start: int, end: int) -> list[Cut]:
        """Cut ``text[start:end]`` into pieces within the limit, of near-equal token counts (a
        65-token sentence under a 64-token limit becomes 33 + 32, not 64 + 1)."""
        cuts: list[Cut] = []
        limit, starts = self.max_tokens, self.starts
        stop = bisect_left(starts, end)
        start = lstrip_pos(self.text, start, end)
        while start < end:
            first = bisect_right(starts, start) - 1
            remaining = stop - first
            if remaining <= limit:
                target = end
            else:
                take = math.ceil(remaining / math.ceil(remaining / limit))
                target = starts[first + take]
                if target <= start:
                    target = min(end, start + 1)
            cut = self.fit(start, target)
            cuts.append(cut)
            start = lstrip_pos(self.text, cut[1], end)
        return cuts

    def pack(
        self, units: Sequence[Piece], oversize: Callable[[int, int], list[Cut]] | None = None
    ) -> list[Cut]:
        """Greedily join consecutive units into cuts within the limit.

        A unit that alone is over the limit goes to ``oversize`` (default: ``split_by_tokens``);
        units are never cut otherwise.
        """
        oversize = oversize or self.split_by_tokens
        limit = self.max_tokens
        cuts: list[Cut] = []
        i, n = 0, len(units)
        while i < n:
            start = units[i][0]
            j = i
            while j + 1 < n and self.estimate(start, units[j + 1][1]) <= limit:
                j += 1
            count = self.count(start, units[j][1])
            while count > limit and j > i:  # the estimate was a token short: give a unit back
                j -= 1
                count = self.count(start, units[j][1])
            if count <= limit:
                cuts.append((start, units[j][1], count))
            else:
                cuts.extend(oversize(*units[i]))
            i = j + 1
        return cuts

    # -- where a chunk sits --------------------------------------------------------------------

    def span_at(self, offset: int) -> Span | None:
        """The span holding ``offset``, else the span before it, else the first span."""
        spans = self.document.spans
        if not spans:
            return None
        return spans[max(bisect_right(self.span_starts, offset) - 1, 0)]

    def run_at(self, offset: int) -> SectionRun:
        return self.runs[max(bisect_right(self._run_starts, offset) - 1, 0)]

    def context(self, start: int, end: int, mode: ContextMode, budget: int) -> Piece:
        """The context span of the chunk ``text[start:end]``; it always contains the chunk.

        ``"section"``: the chunk's section run, or, when that is over ``budget`` tokens, a
        ``budget``-token window of it centred on the chunk (moved inwards at the section's
        edges). ``"window"``: up to ``budget`` tokens on each side of the chunk, across
        sections. Counts are on the document's token stream; ends are stripped of whitespace.
        """
        starts, n_tokens = self.starts, len(self.starts)
        first = bisect_right(starts, start) - 1  # the token holding the chunk's first character
        after = bisect_left(starts, end)  # the first token at or after the chunk's end
        if mode == "window":
            lo, hi = 0, len(self.text)
            left = right = budget
        else:
            run = self.run_at(start)
            lo, hi = min(run.start, start), max(run.end, end)
            left_room = first - (bisect_right(starts, lo) - 1)
            right_room = bisect_left(starts, hi) - after
            room = budget - (after - first)
            if left_room + right_room <= room:  # the whole section fits
                left = right = n_tokens
            elif room <= 0:
                left = right = 0
            else:  # centre on the chunk; what one side cannot use goes to the other
                left = min(room // 2, left_room)
                right = min(room - left, right_room)
                left = min(room - right, left_room)
        c_start = starts[max(first - left, 0)] if left > 0 else start
        if right <= 0:
            c_end = end
        elif after + right < n_tokens:
            c_end = starts[after + right]
        else:
            c_end = hi
        c_start = min(max(c_start, lo), start)
        c_end = max(min(c_end, hi), end)
        return lstrip_pos(self.text, c_start, start), rstrip_pos(self.text, end, c_end)


@dataclass
class ContextChunker(Chunker):
    """Settings and the ``chunk`` method shared by the chunkers; subclasses implement ``cut``.

    - ``max_tokens``: the most tiktoken tokens (``encoding``) a chunk's text may have.
    - ``context_mode``: ``"section"`` (the enclosing section, capped at ``context_tokens`` and
      centred on the chunk) or ``"window"`` (``context_tokens`` on each side).
    - ``cross_sections``: let chunks run over a change of ``Span.section`` (off by default).
    """

    max_tokens: int = 256
    context_mode: ContextMode = "section"
    context_tokens: int = 512
    cross_sections: bool = False
    encoding: str = DEFAULT_ENCODING

    name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        if not isinstance(self.max_tokens, int) or self.max_tokens < MIN_MAX_TOKENS:
            raise ValueError(
                f"max_tokens must be an int >= {MIN_MAX_TOKENS}, got {self.max_tokens!r}"
            )
        if self.context_mode not in CONTEXT_MODES:
            raise ValueError(
                f"context_mode must be one of {', '.join(CONTEXT_MODES)}; got {self.context_mode!r}"
            )
        if not isinstance(self.context_tokens, int) or self.context_tokens < 0:
            raise ValueError(f"context_tokens must be an int >= 0, got {self.context_tokens!r}")

    @abstractmethod
    def cut(self, tokens: DocumentTokens, start: int, end: int) -> list[Cut]:
        """Cuts of ``text[start:end]`` (a section, or the whole text with ``cross_sections``):
        ordered, non-overlapping (unless the chunker overlaps by design), stripped, within
        ``max_tokens``, and together holding every non-whitespace character of the range."""

    def chunk(self, document: Document | str) -> list[Chunk]:
        """Chunks of ``document``; a plain string is chunked as a document of its own."""
        if isinstance(document, str):
            document = text_document(document)
        if not document.text or document.text.isspace():
            return []
        tokens = DocumentTokens(document, self.max_tokens, self.encoding)
        if self.cross_sections:
            regions = [(0, len(document.text))]
        else:
            regions = [(r.start, r.end) for r in tokens.runs]
        return [
            self._make_chunk(tokens, *cut)
            for start, end in regions
            for cut in self.cut(tokens, start, end)
        ]

    def _make_chunk(self, tokens: DocumentTokens, start: int, end: int, count: int) -> Chunk:
        document = tokens.document
        text = document.text[start:end]
        span = tokens.span_at(start)
        c_start, c_end = tokens.context(start, end, self.context_mode, self.context_tokens)
        return Chunk(
            id=Chunk.make_id(document.id, start, end, text),
            doc_id=document.id,
            text=text,
            start=start,
            end=end,
            source=document.source,
            title=document.title,
            section=span.section if span is not None else (),
            page=span.page if span is not None else None,
            context=document.text[c_start:c_end],
            context_start=c_start,
            context_end=c_end,
            metadata={"tokens": count},
        )


def text_document(text: str, source: str | None = None) -> Document:
    """A plain string as a Document: its id (and default source) ``text-`` + the first 16 hex
    digits of its SHA-256, so the same string always gives the same chunk ids."""
    digest = sha256_hex(text)
    doc_id = f"text-{digest[:16]}"
    return Document(id=doc_id, text=text, source=source or doc_id, content_hash=digest)
