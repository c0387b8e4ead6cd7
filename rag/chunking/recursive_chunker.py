"""Structure-aware chunking: sections, then spans, paragraphs, sentences, words, tokens."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from rag.chunking.common import (
    ContextChunker,
    Cut,
    DocumentTokens,
    Piece,
    lstrip_pos,
    rstrip_pos,
)
from rag.chunking.text import split_at, split_paragraphs, split_sentences, split_words


def _spans(tokens: DocumentTokens, start: int, end: int) -> list[Piece]:
    """The document's spans inside ``[start, end)`` (text between spans joins the span before)."""
    span_starts = tokens.span_starts
    lo, hi = bisect_right(span_starts, start), bisect_left(span_starts, end)
    return split_at(tokens.text, span_starts[lo:hi], start, end)


def _paragraphs(tokens: DocumentTokens, start: int, end: int) -> list[Piece]:
    return split_paragraphs(tokens.text, start, end)


def _sentences(tokens: DocumentTokens, start: int, end: int) -> list[Piece]:
    return split_sentences(tokens.text, start, end)


def _words(tokens: DocumentTokens, start: int, end: int) -> list[Piece]:
    return split_words(tokens.text, start, end)


# From the coarsest unit to the finest; below the last, pieces are cut by tokens.
LEVELS: tuple[Callable[[DocumentTokens, int, int], list[Piece]], ...] = (
    _spans,
    _paragraphs,
    _sentences,
    _words,
)


@dataclass
class RecursiveChunker(ContextChunker):
    """Keeps the largest structural units that fit, in the manner of LangChain's
    ``RecursiveCharacterTextSplitter`` but measured in tokens and driven by the Document's
    structure.

    Within a section (chunks never cross a change of ``Span.section`` unless
    ``cross_sections``), consecutive spans are packed up to ``max_tokens``; a span over the
    limit is split into paragraphs (blank lines) which are packed the same way, a paragraph over
    the limit into sentences, a sentence into words, a word into tokens. A chunk never
    starts inside a unit that had to be split, so chunks start on the strongest boundary
    available; with ``fill=True`` the last chunk of a split unit is topped up with the whole
    units that follow it (a long paragraph's last sentences open the next chunk, followed by
    the next paragraphs that fit: fewer, fuller chunks); by default (``fill=False``, the
    behaviour every retrieval figure in BENCHMARKS.md was measured with) it is left short.

    Planning is on the document's one tokenisation (bisection over token offsets, never
    re-encoding candidate pieces); each chunk is counted exactly once (``DocumentTokens.count``,
    which re-encodes only its first and last words).
    """

    fill: bool = False  # opt-in until its retrieval quality is measured

    name: ClassVar[str] = "recursive"

    def cut(self, tokens: DocumentTokens, start: int, end: int) -> list[Cut]:
        return self._split(tokens, start, end, 0)

    def _split(self, tokens: DocumentTokens, start: int, end: int, level: int) -> list[Cut]:
        if level == len(LEVELS) - 1:
            return self._words(tokens, start, end)

        def finer(s: int, e: int) -> list[Cut]:
            return self._split(tokens, s, e, level + 1)

        limit = self.max_tokens
        units = LEVELS[level](tokens, start, end)
        first, after = tokens.unit_tokens(units)
        cuts: list[Cut] = []
        lo = 0  # the first unit of the current run of units that fit
        for k, unit in enumerate(units + [(end, end)]):
            if k < len(units) and after[k] - first[k] <= limit:
                continue
            if lo < k:
                run, spans = units[lo:k], (first[lo:k], after[lo:k])
                if self.fill and cuts and cuts[-1][1] <= units[lo][0]:
                    # the tail of the unit split before opens this run's first chunk
                    tail = cuts[-1][:2]
                    (t_first,), (t_after,) = tokens.unit_tokens([tail])
                    if t_after - t_first <= limit:
                        cuts.pop()
                        run, spans = [tail, *run], ([t_first, *spans[0]], [t_after, *spans[1]])
                cuts += tokens.pack(run, finer, spans)
            if k < len(units):
                cuts += finer(*unit)
            lo = k + 1
        return cuts

    def _words(self, tokens: DocumentTokens, start: int, end: int) -> list[Cut]:
        """Whole words packed greedily (as ``pack`` would pack ``split_words``), found by
        stepping ``max_tokens`` tokens on and back to a word end; a word over the limit alone
        is cut by tokens."""
        text, starts, limit = tokens.text, tokens.starts, self.max_tokens
        n_tokens = len(starts)
        cuts: list[Cut] = []
        pos = lstrip_pos(text, start, end)
        while pos < end:
            word_end = pos  # the end of the first word
            while word_end < end and not text[word_end].isspace():
                word_end += 1
            first = bisect_right(starts, pos) - 1
            if bisect_left(starts, word_end, first) - first > limit:
                cuts += tokens.split_by_tokens(pos, word_end)
                pos = lstrip_pos(text, word_end, end)
                continue
            stop = first + limit  # the first token the chunk may not overlap
            cut_end = end if stop >= n_tokens else min(starts[stop], end)
            while cut_end > word_end and cut_end < end and not text[cut_end].isspace():
                cut_end -= 1  # back to the end of a word (not inside one)
            cut_end = rstrip_pos(text, pos, cut_end)
            count = tokens.count(pos, cut_end)
            while count > limit and cut_end > word_end:  # a token short: give a word back
                cut_end = rstrip_pos(text, pos, text_word_start(text, pos, cut_end))
                count = tokens.count(pos, cut_end)
            if count > limit:
                cuts += tokens.split_by_tokens(pos, word_end)
            else:
                cuts.append((pos, cut_end, count))
            pos = lstrip_pos(text, max(cut_end, word_end), end)
        return cuts


def text_word_start(text: str, start: int, pos: int) -> int:
    """The start of the word ending at ``pos`` (not before ``start``)."""
    while pos > start and not text[pos - 1].isspace():
        pos -= 1
    return pos
