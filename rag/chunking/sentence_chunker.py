"""Whole sentences packed up to a token limit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rag.chunking.common import ContextChunker, Cut, DocumentTokens
from rag.chunking.text import split_sentences


@dataclass
class SentenceChunker(ContextChunker):
    """Consecutive sentences (``rag.chunking.text.split_sentences``) packed greedily while the
    chunk stays within ``max_tokens``; a sentence that alone is over the limit is cut by tokens
    into near-equal pieces. Paragraphs are not kept apart (see ``RecursiveChunker``)."""

    name: ClassVar[str] = "sentence"

    def cut(self, tokens: DocumentTokens, start: int, end: int) -> list[Cut]:
        return tokens.pack(split_sentences(tokens.text, start, end))
