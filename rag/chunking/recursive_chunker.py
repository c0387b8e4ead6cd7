"""Structure-aware chunking: sections, then spans, paragraphs, sentences, words, tokens."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from rag.chunking.common import ContextChunker, Cut, DocumentTokens, Piece
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
    the limit into sentences, a sentence into words, a word into tokens. Packing never runs
    across a unit that had to be split, so chunks start and end on the strongest boundary
    available: a long paragraph's last sentences are not glued to the next paragraph.
    """

    name: ClassVar[str] = "recursive"

    def cut(self, tokens: DocumentTokens, start: int, end: int) -> list[Cut]:
        return self._split(tokens, start, end, 0)

    def _split(self, tokens: DocumentTokens, start: int, end: int, level: int) -> list[Cut]:
        if level == len(LEVELS):
            return tokens.split_by_tokens(start, end)

        def finer(s: int, e: int) -> list[Cut]:
            return self._split(tokens, s, e, level + 1)

        cuts: list[Cut] = []
        run: list[Piece] = []
        for unit in LEVELS[level](tokens, start, end):
            if tokens.estimate(*unit) <= self.max_tokens:
                run.append(unit)
                continue
            cuts += tokens.pack(run, oversize=finer)
            run = []
            cuts += finer(*unit)
        cuts += tokens.pack(run, oversize=finer)
        return cuts
