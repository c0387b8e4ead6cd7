"""What every chunker shares: a document's section runs and token offsets, greedy packing with
exact token checks, and turning ``(start, end)`` cuts into Chunks with their context span.

Token counts are planned on one tokenisation of each section (``estimate``: how many of the
section's tokens a character range overlaps, by binary search) and every emitted chunk is then
counted exactly as tiktoken counts its own text (``count``: the middle from the section's
tokens, the first and last words re-encoded). Re-tokenising a substring can differ
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
from rag.chunking.merge import DEFAULT_MIN_CHARS, Joiner, chunk_metadata, merge_short
from rag.chunking.offsets import prefix_chars, token_starts
from rag.tokens import DEFAULT_ENCODING, get_encoding
from rag.types import Chunk, Document, Span, sha256_hex

ContextMode = Literal["section", "window"]
CONTEXT_MODES: tuple[str, ...] = ("section", "window")
Piece = tuple[int, int]
Cut = tuple[int, int, int]  # start, end, exact token count of text[start:end]

# Encodings whose pre-tokeniser never puts a space after a non-space in the same pre-token.
SYNC_ENCODINGS = frozenset(
    ["cl100k_base", "o200k_base", "p50k_base", "p50k_edit", "r50k_base", "gpt2"]
)

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


_EDGE_CACHE_SIZE, _EDGE_CHARS = 1 << 16, 48
_EDGE_COUNTS: dict[str, dict[str, int]] = {}


def _edge_counts(encoding: str) -> dict[str, int]:
    """Token counts of chunk edges (mostly single words), shared across documents; emptied
    when full."""
    cache = _EDGE_COUNTS.setdefault(encoding, {})
    if len(cache) > _EDGE_CACHE_SIZE:
        cache.clear()
    return cache


def _sync_after(text: str, start: int, end: int) -> int:
    """The first position in ``(start, end)`` holding a space after a non-space, else -1."""
    pos = text.find(" ", start + 1, end)
    while pos > 0 and text[pos - 1].isspace():
        pos = text.find(" ", pos + 1, end)
    return pos


def _sync_before(text: str, first: int, end: int) -> int:
    """The last position in ``[first, end)`` holding a space after a non-space (``first`` is
    one)."""
    pos = text.rfind(" ", first, end)
    while pos > first and text[pos - 1].isspace():
        pos = text.rfind(" ", first, pos)
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
        self._run_ends = [r.end for r in self.runs]
        self._sync = encoding in SYNC_ENCODINGS
        self._edges = _edge_counts(encoding)
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
        """The exact token count of ``text[start:end]``, as tiktoken gives on that text alone
        (memoised). Only the first and last words are re-encoded: see ``_count``."""
        key = (start, end)
        n = self._counts.get(key)
        if n is None:
            n = self._count(start, end)
            self._counts[key] = n
        return n

    def _count(self, start: int, end: int) -> int:
        """Re-encode the edges, take the middle from the document's tokenisation.

        In the pre-tokeniser patterns of tiktoken's encodings (``SYNC_ENCODINGS``) a space
        after a non-space character always starts a pre-token (a space only ever opens one),
        and no pattern looks behind, so from such a position on, ``text[start:end]`` and the
        section are split alike until the chunk's last such position. Between the first and
        the last of them the chunk's tokens are the section's; the two edges are encoded.
        """
        text, encode = self.text, self._encoder.encode_ordinary
        first = _sync_after(text, start, end) if self._sync else -1
        if first < 0:
            return len(encode(text[start:end]))
        last = _sync_before(text, first, end)
        run = self._run_ends[bisect_right(self._run_starts, first) - 1]
        if last > run:  # crosses a section run: the document's tokens restart there
            return len(encode(text[start:end]))
        starts, cache = self.starts, self._edges
        middle = bisect_right(starts, last) - bisect_right(starts, first)
        head, tail = text[start:first], text[last:end]
        n_head, n_tail = cache.get(head), cache.get(tail)
        if n_head is None:
            n_head = len(encode(head))
            if len(head) <= _EDGE_CHARS:  # only words are worth keeping
                cache[head] = n_head
        if n_tail is None:
            n_tail = len(encode(tail))
            if len(tail) <= _EDGE_CHARS:
                cache[tail] = n_tail
        return n_head + middle + n_tail

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

    def unit_tokens(self, units: Sequence[Piece]) -> tuple[list[int], list[int]]:
        """For each unit, the index of the token holding its first character and of the first
        token at or after its end: ``after[j] - first[i]`` is ``estimate`` of units i..j."""
        starts = self.starts
        if not units:
            return [], []
        lo = max(bisect_right(starts, units[0][0]) - 1, 0)
        hi = min(bisect_left(starts, units[-1][1], lo) + 1, len(starts))
        first, after = [], []
        for a, b in units:
            lo = bisect_right(starts, a, lo, hi) - 1
            first.append(lo)
            after.append(bisect_left(starts, b, lo, hi))
        return first, after

    def pack(
        self,
        units: Sequence[Piece],
        oversize: Callable[[int, int], list[Cut]] | None = None,
        spans: tuple[list[int], list[int]] | None = None,
    ) -> list[Cut]:
        """Greedily join consecutive units into cuts within the limit.

        A unit that alone is over the limit goes to ``oversize`` (default: ``split_by_tokens``);
        units are never cut otherwise. ``spans`` is ``unit_tokens(units)`` when known.
        """
        oversize = oversize or self.split_by_tokens
        limit = self.max_tokens
        first, after = spans or self.unit_tokens(units)
        cuts: list[Cut] = []
        i, n = 0, len(units)
        while i < n:
            start = units[i][0]
            # the last unit the estimate lets in (``after`` never decreases)
            j = max(bisect_right(after, first[i] + limit, i, n) - 1, i)
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
    - ``min_chars``: a cut shorter than this joins a neighbour within the limit (a heading
      joins the text under it: :mod:`rag.chunking.merge`); 0 keeps every cut as it is.
    """

    max_tokens: int = 256
    context_mode: ContextMode = "section"
    context_tokens: int = 512
    cross_sections: bool = False
    encoding: str = DEFAULT_ENCODING
    min_chars: int = DEFAULT_MIN_CHARS

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
        for name in ("context_tokens", "min_chars"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be an int >= 0, got {getattr(self, name)!r}")

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
        cuts = [cut for start, end in regions for cut in self.cut(tokens, start, end)]
        joiner = Joiner(
            tokens.count, self.max_tokens, lambda at: tokens.run_at(at).section, self.cross_sections
        )
        placed = merge_short(joiner, cuts, self.min_chars) if self.min_chars else cuts
        return [self._make_chunk(tokens, *p) for p in placed]

    def _make_chunk(
        self, tokens: DocumentTokens, start: int, end: int, count: int, anchor: int = -1
    ) -> Chunk:
        """The chunk ``text[start:end]``, filed under the section at ``anchor`` (its start by
        default), with its context around the part from ``anchor`` on."""
        document = tokens.document
        text = document.text[start:end]
        anchor = max(anchor, start)
        span, section = tokens.span_at(start), tokens.span_at(anchor)
        c_start, c_end = tokens.context(anchor, end, self.context_mode, self.context_tokens)
        c_start = min(c_start, start)
        return Chunk(
            id=Chunk.make_id(document.id, start, end, text),
            doc_id=document.id,
            text=text,
            start=start,
            end=end,
            source=document.source,
            title=document.title,
            section=section.section if section is not None else (),
            page=span.page if span is not None else None,
            context=document.text[c_start:c_end],
            context_start=c_start,
            context_end=c_end,
            metadata=chunk_metadata(document, span.page if span is not None else None, count),
        )


def text_document(text: str, source: str | None = None) -> Document:
    """A plain string as a Document: its id (and default source) ``text-`` + the first 16 hex
    digits of its SHA-256, so the same string always gives the same chunk ids."""
    digest = sha256_hex(text)
    doc_id = f"text-{digest[:16]}"
    return Document(id=doc_id, text=text, source=source or doc_id, content_hash=digest)
