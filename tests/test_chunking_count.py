"""``DocumentTokens.count`` re-encodes only a range's first and last words and takes the middle
from the section's tokenisation: it must agree with tiktoken on the range's own text."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from rag.chunking.common import DocumentTokens
from rag.tokens import count_tokens
from rag.types import Document, Span, sha256_hex

PIECES = [
    " ",
    "  ",
    "\n",
    "\n\n",
    "\r\n",
    "\t",
    "a",
    "the",
    " don't",
    "x" * 9,
    "12345",
    ".",
    "!",
    '"',
    "(",
    "é",
    "日本",
    "\u00a0",
    "\u3000",
    "--",
    "'s",
    " <|endoftext|>",
    "🙂",
]


def doc(text: str, cuts: list[int]) -> Document:
    bounds = [0, *cuts, len(text)]
    spans = [Span(a, b, (str(i % 2),)) for i, (a, b) in enumerate(pairwise(bounds))]
    return Document("d", text, "mem://d", sha256_hex(text), None, spans)


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_count_matches_tiktoken_on_the_range_itself(encoding: str) -> None:
    rng = random.Random(7)
    for _ in range(60):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 120)))
        cuts = sorted(set(rng.sample(range(1, len(text)), min(3, len(text) - 1))))
        tokens = DocumentTokens(doc(text, cuts), 16, encoding)
        for _ in range(40):
            start = rng.randrange(len(text))
            end = rng.randint(start + 1, len(text))
            assert tokens.count(start, end) == count_tokens(text[start:end], encoding)
