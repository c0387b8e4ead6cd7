"""Residual scoring stored as plain cosine vectors (``EncoderEntry.residual``): the chunk
vectors a residual index stores and the query vectors that match them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def residual_store_vectors(situated: np.ndarray, chunk: np.ndarray, alpha: float) -> np.ndarray:
    """What a residual index stores: unit vectors ``[v / m, sqrt(1 - |v / m|^2)]`` for
    ``v = s + alpha * c`` and ``m = 1 + alpha`` (the largest ``|v|`` for unit ``s``, ``c``).

    A query ``[q, 0]`` (:class:`ResidualQueries`) then scores ``(q.s + alpha * q.c) / m``: the
    residual score of ``rag eval --residual`` over a constant, so cosine and exact stores rank
    chunks exactly as it does. Renormalising ``v`` itself would not: it divides each chunk's
    score by that chunk's own ``|v|``, which favours chunks whose ``s`` and ``c`` disagree.
    """
    from rag.encoders.situated import residual_vectors

    scaled = residual_vectors(situated, chunk, alpha) / np.float32(1.0 + alpha)
    rest = np.clip(1.0 - np.einsum("ij,ij->i", scaled, scaled), 0.0, None)  # rounding: >= 0
    return np.ascontiguousarray(np.hstack([scaled, np.sqrt(rest)[:, None]]), dtype=np.float32)


class ResidualQueries:
    """A situated encoder's (plain) query vectors with a 0 appended: the extra coordinate of
    :func:`residual_store_vectors` then adds nothing to a query's inner product."""

    def __init__(self, situated: Any) -> None:
        self.situated = situated
        self.name: str = situated.name
        self.dim: int = situated.dim + 1

    def embed_queries(self, texts: Sequence[str], **options: Any) -> np.ndarray:
        queries = np.asarray(self.situated.embed_queries(texts, **options), dtype=np.float32)
        return np.hstack([queries, np.zeros((len(queries), 1), dtype=np.float32)])

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_queries([text])[0]
