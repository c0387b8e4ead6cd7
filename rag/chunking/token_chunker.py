"""Fixed windows of tokens, optionally overlapping: the baseline chunker."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import ClassVar

from rag.chunking.common import ContextChunker, Cut, DocumentTokens, lstrip_pos, rstrip_pos


@dataclass
class TokenChunker(ContextChunker):
    """Windows of ``max_tokens`` tokens; consecutive windows share ``overlap`` tokens.

    Windows are cut on the section's token boundaries, mapped back to exact character offsets,
    then stripped of whitespace; a window whose own text re-tokenises to more than
    ``max_tokens`` is shortened. Sentences are ignored (see ``SentenceChunker``).
    """

    overlap: int = 0

    name: ClassVar[str] = "token"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.overlap, int) or not 0 <= self.overlap < self.max_tokens:
            raise ValueError(
                f"overlap must be an int in [0, max_tokens={self.max_tokens}), got {self.overlap!r}"
            )

    def cut(self, tokens: DocumentTokens, start: int, end: int) -> list[Cut]:
        text, starts, limit = tokens.text, tokens.starts, self.max_tokens
        n_tokens = len(starts)
        end = rstrip_pos(text, start, end)
        start = lstrip_pos(text, start, end)
        cuts: list[Cut] = []
        while start < end:
            first = bisect_right(starts, start) - 1
            target = starts[first + limit] if first + limit < n_tokens else end
            target = min(max(target, start + 1), end)
            cut = tokens.fit(start, target)
            if cuts and cut[1] <= cuts[-1][1]:
                # The overlap left this window no new text (its end had to be pulled back):
                # continue from the previous window's end instead.
                start = lstrip_pos(text, cuts[-1][1], end)
                continue
            cuts.append(cut)
            if cut[1] >= end:
                break
            following = cut[1]
            if self.overlap:
                after = bisect_left(starts, cut[1])
                # Step back ``overlap`` tokens, but always move forward and leave no gap.
                back = max(first + 1, after - self.overlap)
                following = min(starts[back], cut[1]) if back < n_tokens else cut[1]
            start = lstrip_pos(text, following, end)
        return cuts
