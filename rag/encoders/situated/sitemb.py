"""``sitemb``: the SitEmb input format, for any encoder.

The chunk comes first, then the sentence "The context in which the chunk is situated is given
below." and the context: the document title and section path, then the context window the
chunker recorded, cut to the model's window around the chunk. The chunk is always kept whole;
only the context is shortened.

Wu et al., "SitEmb-v1.5: Improved Context-Aware Dense Retrieval for Semantic Association and
Long Story Comprehension", arXiv:2508.01959 (2025). Their own models (causal, two vectors from
one pass) are served by :class:`rag.encoders.situated.causal.CausalSitEmbEncoder`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.encoders.situated.base import (
    ChunkBatch,
    SituatedEncoder,
    TokenSpans,
    centred_window,
    chunk_in_context,
    header,
    model_window,
    surrounding_text,
    token_spans_for,
)
from rag.types import Chunk

if TYPE_CHECKING:
    from rag.base import Encoder

SITEMB_INSTRUCTION = "The context in which the chunk is situated is given below."
# Special tokens ([CLS]/[SEP]) plus slack for pieces tokenised apart vs. joined.
RESERVED_TOKENS = 6


def context_text(
    chunk: Chunk, budget: int | None = None, token_spans: TokenSpans | None = None
) -> str:
    """The chunk's context as text: header line, then the context window; with ``budget`` (in
    tokens of ``token_spans``) the window is cut to that many tokens around the chunk."""
    head = header(chunk)
    around = surrounding_text(chunk)
    if around and budget is not None:
        spans = token_spans or token_spans_for(None)
        used = len(spans(head)) + 1 if head else 0
        focus = chunk_in_context(chunk)
        start, end = centred_window(around, focus, budget - used, spans)
        around = around[start:end]
    return "\n".join(part for part in (head, around.strip()) if part)


def sitemb_text(
    chunk: Chunk,
    *,
    window: int | None = None,
    token_spans: TokenSpans | None = None,
    instruction: str = SITEMB_INSTRUCTION,
) -> str:
    """``chunk \\n instruction \\n context``, fitted to ``window`` tokens (special tokens
    included) when given: the context gets what the chunk and instruction leave."""
    budget = None
    if window is not None:
        spans = token_spans or token_spans_for(None)
        fixed = len(spans(chunk.text)) + len(spans(instruction)) + RESERVED_TOKENS
        budget = max(window - fixed, 0)
    context = context_text(chunk, budget, token_spans)
    if not context:
        return chunk.text
    return f"{chunk.text}\n{instruction}\n{context}"


class SitEmbTextEncoder(SituatedEncoder):
    """Embeds :func:`sitemb_text` with the base encoder (one vector per chunk; the chunk-only
    vector needs a second, plain pass, made only when ``chunk_vectors=True``).

    ``window``: the tokens the encoder reads (default: its ``max_seq_length``, else 512),
    counted with its own tokenizer when it has a fast one, else with tiktoken.
    """

    mode = "sitemb"

    def __init__(
        self,
        base: Encoder,
        *,
        window: int | None = None,
        instruction: str = SITEMB_INSTRUCTION,
    ) -> None:
        self.base = base
        self.window = window or model_window(base)
        self.instruction = instruction
        # Chunks of one document share their context: tokenise each context once.
        self._spans = lru_cache(maxsize=1024)(token_spans_for(base))

    def options(self) -> dict[str, Any]:
        return {"mode": self.mode, "window": self.window, "instruction": self.instruction}

    def texts(self, chunks: Sequence[Chunk]) -> list[str]:
        return [
            sitemb_text(
                c, window=self.window, token_spans=self._spans, instruction=self.instruction
            )
            for c in chunks
        ]

    def situated_vectors(self, batch: ChunkBatch) -> np.ndarray:
        return self._embed_texts(self.texts(batch.chunks), batch)
