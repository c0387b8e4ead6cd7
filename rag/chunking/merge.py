"""Joining very short chunks to a neighbour, and what a chunk says about where it sits.

A chunk of a few words (a heading alone, a stray line, a section's last sentence) is a poor unit
of retrieval: it matches queries by its words alone and tells the reader nothing. After a
chunker has cut a document, every cut shorter than ``min_chars`` characters joins the cut that
follows it, as a heading belongs to the text under it, when the two together are within
``max_tokens`` and the following cut lies in the same section or in one nested under it (a
chapter heading followed by its first section). Where that is not allowed, it joins the cut before
it in the same section, under the same limit; otherwise it stays as it is. A joined chunk is the
exact range ``text[first.start:last.end]``, so offsets stay exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from rag.types import Document

Cut = tuple[int, int, int]  # start, end, exact token count (as in rag.chunking.common)

# Under 60 characters a chunk is a heading or a line: the issue-13 measure of short chunks.
DEFAULT_MIN_CHARS = 60


class Placed(NamedTuple):
    """A cut, and the offset whose section the chunk is filed under (its start, or where the
    chunk it joined starts: a heading joined to its first subsection is filed under that)."""

    start: int
    end: int
    count: int
    anchor: int


@dataclass(frozen=True)
class Joiner:
    """What joining needs to know of a document: exact token counts of any range, the limit,
    and the section path at an offset."""

    count: Callable[[int, int], int]
    max_tokens: int
    section_at: Callable[[int], tuple[str, ...]]
    cross_sections: bool = False

    def join(self, first: Placed, second: Placed, anchor: int) -> Placed | None:
        count = self.count(first.start, second.end)
        if count > self.max_tokens:
            return None
        return Placed(first.start, second.end, count, anchor)

    def forward(self, short: Placed, following: Placed) -> Placed | None:
        """``short`` joined to the cut after it, where sections and the limit allow."""
        if following.start < short.end:  # overlapping windows: nothing to join
            return None
        outer, inner = self.section_at(short.anchor), self.section_at(following.anchor)
        # text before the first heading (section ()) encloses nothing: it is not a heading
        nested = inner == outer or (outer and inner[: len(outer)] == outer)
        if not (self.cross_sections or nested):
            return None
        return self.join(short, following, following.anchor)

    def backward(self, before: Placed, short: Placed) -> Placed | None:
        """``short`` joined to the cut before it, in the same section and within the limit."""
        if before.end > short.start or self.section_at(before.anchor) != self.section_at(
            short.anchor
        ):
            return None
        return self.join(before, short, before.anchor)


def merge_short(joiner: Joiner, cuts: list[Cut], min_chars: int) -> list[Placed]:
    """``cuts`` (in document order) with each one under ``min_chars`` characters joined to a
    neighbour where the rules above allow it."""
    out: list[Placed] = []
    pending: Placed | None = None  # a short cut waiting for the one after it
    for start, end, count in cuts:
        current = Placed(start, end, count, start)
        if pending is not None:
            joined = joiner.forward(pending, current)
            if joined is None:
                _settle(joiner, out, pending)
            else:
                current = joined
            pending = None
        if current.end - current.start < min_chars:
            pending = current  # still short (a heading and its subheading): wait for more
        else:
            out.append(current)
    if pending is not None:
        _settle(joiner, out, pending)
    return out


def _settle(joiner: Joiner, out: list[Placed], short: Placed) -> None:
    """Put ``short`` into ``out``, joined to the cut before it where allowed."""
    joined = joiner.backward(out[-1], short) if out else None
    if joined is None:
        out.append(short)
    else:
        out[-1] = joined


def chunk_metadata(document: Document, page: int | None, count: int) -> dict[str, object]:
    """A chunk's metadata: its token count, and its page's printed label where the connector
    recorded labels that differ from the physical numbers (``page_labels``, one per page)."""
    metadata: dict[str, object] = {"tokens": count}
    labels = document.metadata.get("page_labels")
    if page is not None and isinstance(labels, list) and 0 < page <= len(labels):
        metadata["page_label"] = str(labels[page - 1])
    return metadata
