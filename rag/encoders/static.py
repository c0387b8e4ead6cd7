"""Static (non-contextual) embeddings: WordLlama averages token vectors taken from an LLM's
embedding table and trained for retrieval (Miller, "WordLlama", 2024, github.com/dleemiller/WordLlama).

No attention, so it is fast on CPU (~6,000 short texts/s) and gives no token-level context.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from rag.base import Encoder
from rag.encoders.models import WORDLLAMA_PACKAGE, missing_package_error, wordllama_dir

WORDLLAMA_DIMS = (64, 128, 256)


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32; an all-zero row (empty text) stays zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def batched(texts: Sequence[str], batch_size: int, show_progress: bool, desc: str) -> Any:
    """Slices of ``texts`` of ``batch_size``, with a tqdm bar when ``show_progress``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    starts = range(0, len(texts), batch_size)
    if show_progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=desc, unit="batch")
    for start in starts:
        yield list(texts[start : start + batch_size])


def embed_in_batches(
    texts: Sequence[str],
    role: str,
    encode: Callable[[list[str], bool], Any],
    *,
    dim: int,
    batch_size: int,
    show_progress: bool,
    desc: str,
) -> np.ndarray:
    """Unit ``(len(texts), dim)`` float32 rows of ``encode(batch, is_query)`` over batches of
    ``texts``; ``role`` is ``"query"`` or ``"document"``."""
    if role not in ("query", "document"):
        raise ValueError(f"role must be 'query' or 'document', got {role!r}")
    out = np.zeros((len(texts), dim), dtype=np.float32)
    row = 0
    for batch in batched(texts, batch_size, show_progress, desc):
        vectors = np.reshape(encode(batch, role == "query"), (len(batch), dim))
        out[row : row + len(batch)] = l2_normalise(vectors)
        row += len(batch)
    return out


@lru_cache(maxsize=4)
def load_wordllama(trunc_dim: int | None = None) -> Any:
    """The shipped 256-d WordLlama model, loaded once per process, never from the hub."""
    try:
        from wordllama import WordLlama
    except ImportError as exc:
        raise missing_package_error("wordllama", WORDLLAMA_PACKAGE) from exc
    # A plain WordLlama.load() looks on the hub first; the weights ship inside the package.
    return WordLlama.load(
        config="l2_supercat",
        dim=256,
        trunc_dim=trunc_dim,
        cache_dir=wordllama_dir(),
        disable_download=True,
    )


class WordLlamaEncoder(Encoder):
    """WordLlama average-pooled token embeddings; ``dim`` 256, or 64/128 by Matryoshka truncation.

    Queries and documents are embedded the same way (no prefixes).
    """

    def __init__(self, *, dim: int = 256, name: str = "wordllama") -> None:
        if dim not in WORDLLAMA_DIMS:
            raise ValueError(f"dim must be one of {WORDLLAMA_DIMS}, got {dim}")
        self.model = load_wordllama(None if dim == 256 else dim)
        self.dim = dim
        self.name = name

    def _embed(
        self, texts: Sequence[str], role: str, *, batch_size: int, show_progress: bool
    ) -> np.ndarray:
        # Normalise ourselves: wordllama's norm=True divides an empty text's zero vector by 0.
        def encode(batch: list[str], is_query: bool) -> Any:
            return self.model.embed(batch, norm=False, batch_size=len(batch))

        return embed_in_batches(
            texts,
            role,
            encode,
            dim=self.dim,
            batch_size=batch_size,
            show_progress=show_progress,
            desc=self.name,
        )
