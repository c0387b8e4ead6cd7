"""Score normalisers: put one retriever's scores on a scale that can be compared with another's.

Every normaliser has the shape ``fn(scores, stats=None) -> np.ndarray`` (float64, same shape).
``stats`` says where the statistics come from: ``None`` (the default) uses the retrieved
candidates themselves; a :class:`ScoreStats` brings them from outside, e.g. the model's scores
over the whole corpus or over a calibration sample of queries (see :func:`stats_from_matrix`,
:func:`stats_from_score_lists`, :func:`stats_per_model`). Candidate statistics depend on how many
hits were retrieved and on how good they are; outside statistics give every query the same scale.

Constant lists (zero spread) carry no ordering information and never produce NaN: ``zscore``
maps them to 0 (the mean) and ``minmax`` / ``dbsf`` map them to 1 where the score is positive and
0 otherwise (LlamaIndex's convention in ``QueryFusionRetriever._relative_score_fusion``, so that a
lone positive hit keeps full credit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

NormName = Literal["none", "minmax", "zscore", "dbsf"]
Normalizer = Callable[..., np.ndarray]

# A spread this small relative to the scores' magnitude is rounding noise of a constant list
# (np.std of three equal floats can be 5e-17); dividing by it would blow noise up to +-1.
_REL_TOL = 1e-12


@dataclass(frozen=True)
class ScoreStats:
    """Summary of a score distribution: mean, population standard deviation, min and max."""

    mean: float
    std: float
    min: float
    max: float


def stats_from_scores(scores: np.ndarray | Sequence[float]) -> ScoreStats:
    """Statistics of any array of scores (all entries, any shape; population std, ``ddof=0``)."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("cannot compute score statistics of an empty array")
    if not np.all(np.isfinite(arr)):
        raise ValueError("scores must be finite (no NaN or inf)")
    return ScoreStats(
        mean=float(arr.mean()), std=float(arr.std()), min=float(arr.min()), max=float(arr.max())
    )


def stats_from_matrix(similarities: np.ndarray) -> ScoreStats:
    """One model's statistics from a ``queries x corpus`` similarity matrix (pooled over all
    entries): the distribution a normaliser sees when the model scores whole corpora."""
    sims = np.asarray(similarities)
    if sims.ndim != 2:
        raise ValueError(f"expected a 2-D queries x corpus matrix, got shape {sims.shape}")
    return stats_from_scores(sims)


def stats_from_score_lists(score_lists: Iterable[np.ndarray | Sequence[float]]) -> ScoreStats:
    """One model's statistics pooled over several score arrays (e.g. its top-k scores for a
    calibration sample of queries), without concatenating them: per-array moments are merged
    with Chan, Golub & LeVeque's (1979) parallel update, which stays accurate for large arrays."""
    count, mean, m2 = 0, 0.0, 0.0
    lo, hi = np.inf, -np.inf
    for scores in score_lists:
        arr = np.asarray(scores, dtype=np.float64).ravel()
        if arr.size == 0:
            continue
        if not np.all(np.isfinite(arr)):
            raise ValueError("scores must be finite (no NaN or inf)")
        n_b, mean_b = arr.size, float(arr.mean())
        m2_b = float(((arr - mean_b) ** 2).sum())
        total = count + n_b
        delta = mean_b - mean
        mean += delta * n_b / total
        m2 += m2_b + delta * delta * count * n_b / total
        count = total
        lo, hi = min(lo, float(arr.min())), max(hi, float(arr.max()))
    if count == 0:
        raise ValueError("cannot compute score statistics: every score list is empty")
    return ScoreStats(mean=mean, std=(m2 / count) ** 0.5, min=lo, max=hi)


def stats_per_model(
    scores: Mapping[str, np.ndarray | Sequence[np.ndarray | Sequence[float]]],
) -> dict[str, ScoreStats]:
    """Per-model statistics from ``{model name: scores}``, where each value is either one array
    (a 1-D list of scores or a ``queries x corpus`` matrix) or a list of score arrays."""
    out: dict[str, ScoreStats] = {}
    for name, value in scores.items():
        if isinstance(value, np.ndarray):
            out[name] = stats_from_scores(value)
        else:
            out[name] = stats_from_score_lists(value)
    return out


def _as_scores(scores: np.ndarray | Sequence[float]) -> np.ndarray:
    return np.asarray(scores, dtype=np.float64)


def _degenerate(spread: float, *refs: float) -> bool:
    scale = max([1.0, *(abs(r) for r in refs)])
    return not spread > _REL_TOL * scale


def _positive_indicator(arr: np.ndarray) -> np.ndarray:
    return (arr > 0).astype(np.float64)


def norm_none(scores: np.ndarray, stats: ScoreStats | None = None) -> np.ndarray:
    """Identity: the raw scores (as a float64 copy); ``stats`` is ignored."""
    return np.array(scores, dtype=np.float64, copy=True)


def norm_minmax(scores: np.ndarray, stats: ScoreStats | None = None) -> np.ndarray:
    """Min-max scaling ``(s - min) / (max - min)``: the best candidate maps to 1, the worst to 0
    (Fox & Shaw, "Combination of multiple searches", TREC-2, 1994; Lee, SIGIR 1997).

    With outside ``stats`` the result is not clipped: a score beyond the reference range maps
    outside [0, 1], keeping the transform linear.
    """
    arr = _as_scores(scores)
    if arr.size == 0:
        return arr
    lo, hi = (float(arr.min()), float(arr.max())) if stats is None else (stats.min, stats.max)
    if _degenerate(hi - lo, lo, hi):
        return _positive_indicator(arr)
    return (arr - lo) / (hi - lo)


def _mean_std(arr: np.ndarray, stats: ScoreStats | None) -> tuple[float, float]:
    """The outside statistics when given, else the candidates' own (population std)."""
    if stats is None:
        return float(arr.mean()), float(arr.std())
    return stats.mean, stats.std


def norm_zscore(scores: np.ndarray, stats: ScoreStats | None = None) -> np.ndarray:
    """Standard score ``(s - mean) / std`` (population std), as used per embedding model by
    Mixture-Embedding RAG (Chen, Zhao & Chen, "Each to Their Own: Exploring the Optimal Embedding
    in RAG", arXiv:2507.17442, 2025) and as Z-score fusion (Montague & Aslam, CIKM 2001)."""
    arr = _as_scores(scores)
    if arr.size == 0:
        return arr
    mean, std = _mean_std(arr, stats)
    if _degenerate(std, mean):
        return np.zeros_like(arr)
    return (arr - mean) / std


def norm_dbsf(scores: np.ndarray, stats: ScoreStats | None = None) -> np.ndarray:
    """Distribution-based score fusion scaling: ``[mean - 3 std, mean + 3 std]`` maps linearly to
    [0, 1], clipped (Mazzeschi, "Distribution-Based Score Fusion (DBSF), a new approach to Vector
    Search Ranking", 2023; LlamaIndex ``dist_based_score``, which does not clip).

    Unlike min-max, one outlying score does not squash all the others towards 0. Within one list
    of n candidates no score lies beyond ``sqrt(n - 1)`` std of the mean (Samuelson's inequality),
    so clipping only matters for lists longer than 10 or with outside ``stats``.
    """
    arr = _as_scores(scores)
    if arr.size == 0:
        return arr
    mean, std = _mean_std(arr, stats)
    if _degenerate(std, mean):
        return _positive_indicator(arr)
    lo = mean - 3.0 * std
    return np.clip((arr - lo) / (6.0 * std), 0.0, 1.0)


NORMALIZERS: dict[str, Normalizer] = {
    "none": norm_none,
    "minmax": norm_minmax,
    "zscore": norm_zscore,
    "dbsf": norm_dbsf,
}


def get_normalizer(name: str) -> Normalizer:
    """The normaliser registered as ``name``; a ValueError names the valid choices."""
    try:
        return NORMALIZERS[name]
    except KeyError:
        choices = ", ".join(sorted(NORMALIZERS))
        raise ValueError(f"unknown normaliser {name!r}; choose one of: {choices}") from None
