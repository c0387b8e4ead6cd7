"""Residual scoring: ``score = sim(q, s) + alpha * sim(q, c)``.

``s`` is the chunk's situated vector and ``c`` its chunk-only vector, so adding context never
loses what the chunk alone matched. SitEmb (Wu et al., arXiv:2508.01959) scores its two vectors
this way with ``alpha = 0.5``.

For inner-product similarity the sum is linear: ``q.s + alpha * q.c == q.(s + alpha * c)``, so
an exact or inner-product vector index can store the one combined vector
(:func:`residual_vectors`) and score it in a single search; :func:`residual_scores` is the same
thing over two similarity arrays, for stores that keep ``s`` and ``c`` apart.
"""

from __future__ import annotations

import numpy as np

DEFAULT_ALPHA = 0.5


def check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"residual alpha must be a finite number >= 0, got {alpha!r}")
    return alpha


def residual_scores(
    situated_sims: np.ndarray, chunk_sims: np.ndarray, alpha: float = DEFAULT_ALPHA
) -> np.ndarray:
    """``situated_sims + alpha * chunk_sims``, elementwise (arrays of the same shape)."""
    situated_sims = np.asarray(situated_sims, dtype=np.float32)
    chunk_sims = np.asarray(chunk_sims, dtype=np.float32)
    if situated_sims.shape != chunk_sims.shape:
        raise ValueError(
            f"similarity arrays differ in shape: {situated_sims.shape} vs {chunk_sims.shape}"
        )
    return situated_sims + np.float32(check_alpha(alpha)) * chunk_sims


def residual_vectors(
    situated: np.ndarray, chunk: np.ndarray, alpha: float = DEFAULT_ALPHA
) -> np.ndarray:
    """``situated + alpha * chunk``: one vector per chunk whose inner product with a query is
    the residual score (not unit length: use it with inner-product search, not cosine)."""
    situated = np.asarray(situated, dtype=np.float32)
    chunk = np.asarray(chunk, dtype=np.float32)
    if situated.shape != chunk.shape:
        raise ValueError(f"vector arrays differ in shape: {situated.shape} vs {chunk.shape}")
    return np.ascontiguousarray(situated + np.float32(check_alpha(alpha)) * chunk)
