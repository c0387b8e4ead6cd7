"""Context-aware chunking: Documents into Chunks with exact offsets and a context span.

Three chunkers, all measuring ``max_tokens`` with tiktoken (``cl100k_base``) on the chunk text:

- ``"token"``: fixed token windows, optionally overlapping (``TokenChunker``);
- ``"sentence"``: whole sentences packed up to the limit (``SentenceChunker``);
- ``"recursive"``: sections, spans, paragraphs, sentences, words, tokens (``RecursiveChunker``).

Every chunk keeps ``text == document.text[start:end]``, never crosses a section unless
``cross_sections=True``, and carries ``context`` (``document.text[context_start:context_end]``):
its section capped at ``context_tokens`` and centred on it (``context_mode="section"``) or
``context_tokens`` on each side (``"window"``).

Defaults: ingest uses ``DEFAULT_CHUNKER`` = ``"recursive"`` with ``max_tokens=256`` (room for a
paragraph or two, and within the 256-512 word-piece limits of small sentence encoders) and
``context_tokens=512`` in ``"section"`` mode. The chunked evaluation protocol uses
``SentenceChunker(max_tokens=64)``.
"""

from __future__ import annotations

from typing import Any

from rag.chunking.common import (
    ContextChunker,
    ContextMode,
    DocumentTokens,
    section_runs,
    text_document,
)
from rag.chunking.recursive_chunker import RecursiveChunker
from rag.chunking.sentence_chunker import SentenceChunker
from rag.chunking.text import split_paragraphs, split_sentences, split_words
from rag.chunking.token_chunker import TokenChunker

CHUNKERS: dict[str, type[ContextChunker]] = {
    "token": TokenChunker,
    "sentence": SentenceChunker,
    "recursive": RecursiveChunker,
}
DEFAULT_CHUNKER = "recursive"
DEFAULT_MAX_TOKENS = 256
DEFAULT_CONTEXT_TOKENS = 512


def get_chunker(name: str = DEFAULT_CHUNKER, **kwargs: Any) -> ContextChunker:
    """The chunker registered as ``name``, built with ``kwargs`` (e.g. ``max_tokens=64``)."""
    try:
        cls = CHUNKERS[name]
    except KeyError:
        raise ValueError(
            f"unknown chunker {name!r}; choose one of: {', '.join(sorted(CHUNKERS))}"
        ) from None
    return cls(**kwargs)


__all__ = [
    "text_document",
    "CHUNKERS",
    "DEFAULT_CHUNKER",
    "DEFAULT_CONTEXT_TOKENS",
    "DEFAULT_MAX_TOKENS",
    "ContextChunker",
    "ContextMode",
    "DocumentTokens",
    "RecursiveChunker",
    "SentenceChunker",
    "TokenChunker",
    "get_chunker",
    "section_runs",
    "split_paragraphs",
    "split_sentences",
    "split_words",
]
