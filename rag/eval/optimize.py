"""Learn a fusion from relevance judgements: a small grid search on a train split.

The grid covers the fusion method (RRF with several ``k_rrf``; CombSUM and CombMNZ with
min-max, z-score and dbsf normalisation over the candidates or their background, missing chunks
credited 0 or the list's lowest score; Mixture-Embedding) and one weight per encoder. The first
encoder's weight stays 1 (sums are scale-free); the others take every value of ``weight_grid``
(0 drops an encoder) while that is at most ``max_grid`` combinations, else coordinate ascent
from equal weights. Statistics that need outside data (``calibration``, ``corpus``) are not
searched.

Scoring is vectorised: per normalisation the candidates of every query are laid out once as a
``queries x pool x encoders`` array of per-encoder terms, and each weight vector is one matrix
product, so a few thousand configurations take seconds. Ties are broken by chunk id, as
:mod:`rag.retrieval.fusion` does, so the scores equal those of the real fusion (up to the order
of floating-point sums). The objective is nDCG@10 (trec_eval conventions, as
:mod:`rag.eval.metrics`); ties go to the earlier (simpler) configuration of the grid. The best
configuration replaces the default fusion only when it is significantly better on the train
split (paired t-test over queries), so that noise in a small train split is not learned.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rag.retrieval.multi import DEFAULT_FUSION, FusionConfig

Ranked = Mapping[str, Mapping[str, float]]  # query id -> plain run {doc id: score}, best first

WEIGHT_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)
K_RRF_GRID: tuple[float, ...] = (10.0, 30.0, 60.0, 100.0)


@dataclass
class OptimizeResult:
    """The best config, its train nDCG@10, and the best score of every family searched."""

    config: FusionConfig
    score: float
    num_queries: int
    evaluated: int
    families: list[dict[str, Any]] = field(default_factory=list)
    baseline: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config.to_json(),
            "train_ndcg@10": self.score,
            "train_queries": self.num_queries,
            "configs_evaluated": self.evaluated,
            "baseline": self.baseline,
            "families": self.families,
        }


@dataclass
class _Layout:
    """Every query's candidate pool as padded arrays (pool slots beyond a query's pool: -inf)."""

    names: list[str]
    scores: np.ndarray  # (Q, U, E) raw scores, NaN where the encoder lacks the chunk
    ranks: np.ndarray  # (Q, U, E) 1-based ranks, NaN where missing
    valid: np.ndarray  # (Q, U) a real pool slot
    gains: np.ndarray  # (Q, U) qrels grade of the chunk (0 when unjudged or not relevant)
    idcg: np.ndarray  # (Q,) ideal DCG@10 from the qrels


def _layout(runs: Mapping[str, Ranked], qrels: Mapping[str, Mapping[str, int]]) -> _Layout:
    names = list(runs)
    qids = list(qrels)  # as rag.eval.metrics.evaluate: a query without relevant docs scores 0
    pools: list[dict[str, int]] = []
    for q in qids:
        docs = {doc for name in names for doc in runs[name].get(q, {})}
        pools.append({doc: i for i, doc in enumerate(sorted(docs))})  # slots in chunk id order
    size = max((len(p) for p in pools), default=0) or 1
    shape = (len(qids), size, len(names))
    scores, ranks = np.full(shape, np.nan), np.full(shape, np.nan)
    valid = np.zeros(shape[:2], dtype=bool)
    gains = np.zeros(shape[:2])
    idcg = np.zeros(len(qids))
    for i, (q, pool) in enumerate(zip(qids, pools, strict=True)):
        valid[i, : len(pool)] = True
        for j, name in enumerate(names):
            for rank, (doc, score) in enumerate(runs[name].get(q, {}).items(), start=1):
                scores[i, pool[doc], j] = score
                ranks[i, pool[doc], j] = rank
        for doc, grade in qrels[q].items():
            if grade > 0 and doc in pool:
                gains[i, pool[doc]] = grade
        ideal = sorted((g for g in qrels[q].values() if g > 0), reverse=True)[:10]
        idcg[i] = sum(g / math.log2(r + 2) for r, g in enumerate(ideal))
    return _Layout(names, scores, ranks, valid, gains, idcg)


def _ndcg10_per_query(fused: np.ndarray, layout: _Layout) -> np.ndarray:
    fused = np.where(layout.valid, fused, -np.inf)
    k = min(10, fused.shape[1])
    # best first, ties by ascending chunk id, as rag.retrieval.fusion ranks
    # (pool slots are in chunk id order, so a stable sort breaks ties by id)
    top = np.argsort(-fused, axis=1, kind="stable")[:, :k]
    gains = np.take_along_axis(layout.gains, top, axis=1)
    gains = np.where(np.isfinite(np.take_along_axis(fused, top, axis=1)), gains, 0.0)
    dcg = (gains / np.log2(np.arange(2, k + 2))).sum(axis=1)
    return np.where(layout.idcg > 0, dcg / np.where(layout.idcg > 0, layout.idcg, 1), 0.0)


def _stats(values: np.ndarray, present: np.ndarray, skip: int) -> tuple[np.ndarray, ...]:
    """Per query and encoder: mean, std, min, max of the candidates (after the best ``skip``,
    when at least two remain -- as :func:`rag.retrieval.multi.background_stats`)."""
    filled = np.where(present, values, np.nan)
    if skip:
        order = -np.sort(-np.where(present, values, -np.inf), axis=1)  # best first per encoder
        counts = present.sum(axis=1, keepdims=True)
        positions = np.arange(values.shape[1])[None, :, None]
        keep = (positions >= skip) & (positions < counts)
        use_bg = (counts - skip) >= 2
        background = np.where(keep, order, np.nan)
        filled = np.where(use_bg, background, filled)
    with np.errstate(all="ignore"):
        mean = np.nanmean(filled, axis=1)
        std = np.nanstd(filled, axis=1)
        lo = np.nanmin(np.where(present, values, np.nan), axis=1)
        hi = np.nanmax(np.where(present, values, np.nan), axis=1)
        if skip:
            lo = np.nanmin(filled, axis=1)
            hi = np.nanmax(filled, axis=1)
    return mean, std, lo, hi


def _normalised(layout: _Layout, norm: str, skip: int) -> np.ndarray:
    """(Q, U, E) normalised scores, NaN where missing (as :mod:`rag.retrieval.normalize`)."""
    values, present = layout.scores, ~np.isnan(layout.scores)
    if skip:
        mean, std, lo, hi = _stats(values, present, skip)
    else:
        mean, std, lo, hi = _stats(values, present, 0)
    mean, std, lo, hi = (np.nan_to_num(a)[:, None, :] for a in (mean, std, lo, hi))
    scale = np.maximum(1.0, np.maximum(np.abs(lo), np.abs(hi)))
    positive = (values > 0).astype(float)
    with np.errstate(all="ignore"):
        if norm == "zscore":
            degenerate = ~(std > 1e-12 * np.maximum(1.0, np.abs(mean)))
            out = np.where(degenerate, 0.0, (values - mean) / std)
        elif norm == "minmax":
            degenerate = ~(hi - lo > 1e-12 * scale)
            out = np.where(degenerate, positive, (values - lo) / (hi - lo))
        else:  # dbsf
            degenerate = ~(std > 1e-12 * np.maximum(1.0, np.abs(mean)))
            out = np.where(
                degenerate, positive, np.clip((values - mean + 3 * std) / (6 * std), 0.0, 1.0)
            )
    return np.where(present, out, np.nan)


def _weight_vectors(n: int, grid: Sequence[float], max_grid: int) -> list[tuple[float, ...]]:
    combos = len(grid) ** (n - 1)
    if combos <= max_grid:
        return [(1.0, *rest) for rest in itertools.product(grid, repeat=n - 1)]
    return []  # coordinate ascent instead


def _families(names: Sequence[str]) -> Iterator[tuple[dict[str, Any], str, str, str, int]]:
    """(config fields, kind, norm, missing, skip) for every family of the grid."""
    for k_rrf in K_RRF_GRID:
        yield {"method": "rrf", "k_rrf": k_rrf}, "rrf", "", "zero", 0
    for agg in ("combsum", "combmnz"):
        for norm in ("minmax", "zscore", "dbsf"):
            for stats, skip in (("candidates", 0), ("background", 5)):
                for missing in ("zero", "min"):
                    fields = {"method": f"{agg}-{norm}", "stats": stats, "missing": missing}
                    if stats == "background":
                        fields["skip"] = skip
                    yield fields, agg, norm, missing, skip


class _Scorer:
    """Per-query nDCG@10 of a family (method, normalisation, missing, skip) and weights."""

    def __init__(self, layout: _Layout) -> None:
        self.layout = layout
        self.present = ~np.isnan(layout.scores)
        self.count = self.present.sum(axis=2)
        self._normed: dict[tuple[str, int], np.ndarray] = {}

    def terms(self, kind: str, norm: str, missing: str, skip: int, k_rrf: float) -> Any:
        present = self.present
        if kind == "rrf":
            terms = np.where(present, 1.0 / (k_rrf + np.nan_to_num(self.layout.ranks)), 0.0)
            return terms, np.zeros(terms.shape[0::2])
        key = (norm, skip)
        if key not in self._normed:
            self._normed[key] = _normalised(self.layout, norm, skip)
        normed = self._normed[key]
        if missing == "min":
            with np.errstate(all="ignore"):
                fills = np.nan_to_num(np.nanmin(normed, axis=1))
        else:
            fills = np.zeros(normed.shape[0::2])
        return np.where(present, normed, 0.0), fills

    def per_query(self, family: Any, kind: str, weights: Sequence[float]) -> np.ndarray:
        terms, fills = family
        w = np.asarray(weights, dtype=float)
        fused = terms @ w + ((~self.present) * (fills * w)[:, None, :]).sum(axis=2)
        if kind == "combmnz":
            fused = fused * self.count
        return _ndcg10_per_query(fused, self.layout)


def _family_of(config: FusionConfig) -> tuple[str, str, str, int, float] | None:
    """(kind, norm, missing, skip, k_rrf) of a config the grid can score, else ``None``."""
    if config.method == "rrf":
        return "rrf", "", "zero", 0, 60.0 if config.k_rrf is None else config.k_rrf
    agg, _, norm = config.method.partition("-")
    if agg not in ("combsum", "combmnz") or norm not in ("minmax", "zscore", "dbsf"):
        return None
    if config.stats not in ("candidates", "background"):
        return None
    skip = config.skip if config.stats == "background" else 0
    return agg, norm, config.missing or "zero", skip, 0.0


def paired_t(gain: np.ndarray) -> float:
    """Paired t statistic of per-query differences (0 for no difference at all, +-inf for a
    constant non-zero one)."""
    n = len(gain)
    mean = float(np.mean(gain)) if n else 0.0
    sd = float(np.std(gain, ddof=1)) if n > 1 else 0.0
    if not sd > 1e-12:  # a constant gain: certain if it is not zero
        return 0.0 if abs(mean) <= 1e-12 else math.copysign(math.inf, mean)
    return mean / (sd / math.sqrt(n))


def optimize(
    runs: Mapping[str, Ranked],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    weight_grid: Sequence[float] = WEIGHT_GRID,
    max_grid: int = 216,
    baseline: FusionConfig | None = DEFAULT_FUSION,
    min_t: float = 1.645,
) -> OptimizeResult:
    """The fusion config with the best mean nDCG@10 over the judged queries of ``qrels``, given
    each encoder's ranked documents for those queries (``runs[encoder][qid]``).

    The best of the grid replaces ``baseline`` (the default fusion) only when its per-query gain
    over it is significant: a paired t statistic of at least ``min_t`` (one-sided 5% for the
    default 1.645). A train split of a few hundred queries otherwise picks weights by noise,
    which do not carry over to the test split. ``min_t=0`` takes the best of the grid as is.
    """
    names = list(runs)
    if len(names) < 2:
        raise ValueError("optimising a fusion needs at least two encoders' runs")
    layout = _layout(runs, qrels)
    if not np.any(layout.idcg > 0):
        raise ValueError("no judged query with a relevant document to optimise on")
    scorer = _Scorer(layout)
    vectors = _weight_vectors(len(names), weight_grid, max_grid)
    best: tuple[float, FusionConfig, np.ndarray] | None = None
    evaluated = 0
    families: list[dict[str, Any]] = []
    for fields, kind, norm, missing, skip in _families(names):
        family = scorer.terms(kind, norm, missing, skip, fields.get("k_rrf", 0.0))

        def mean_score(weights: Sequence[float], family=family, kind=kind) -> float:
            return float(np.mean(scorer.per_query(family, kind, weights)))

        family_best: tuple[float, tuple[float, ...]] | None = None
        for w in vectors or _coordinate_ascent(mean_score, len(names), weight_grid):
            value = mean_score(w)
            evaluated += 1
            if family_best is None or value > family_best[0] + 1e-12:
                family_best = (value, tuple(w))
        assert family_best is not None
        config = FusionConfig(**fields, weights=dict(zip(names, family_best[1], strict=True)))
        families.append({"config": config.to_json(), "train_ndcg@10": family_best[0]})
        if best is None or family_best[0] > best[0] + 1e-12:
            per_query = scorer.per_query(family, kind, family_best[1])
            best = (family_best[0], config, per_query)
    assert best is not None
    result = OptimizeResult(
        config=best[1],
        score=best[0],
        num_queries=len(layout.idcg),
        evaluated=evaluated,
        families=families,
    )
    base = _family_of(baseline) if baseline is not None else None
    if baseline is not None and base is not None:
        kind, norm, missing, skip, k_rrf = base
        weights = [float(baseline.weights.get(n, 1.0)) for n in names]
        base_scores = scorer.per_query(
            scorer.terms(kind, norm, missing, skip, k_rrf), kind, weights
        )
        t = paired_t(best[2] - base_scores)
        result.baseline = {
            "config": baseline.to_json(),
            "train_ndcg@10": float(np.mean(base_scores)),
            "best_of_grid": best[1].to_json(),
            "best_of_grid_train_ndcg@10": best[0],
            "best_minus_baseline": float(np.mean(best[2] - base_scores)),
            "paired_t": t,
            "min_t": min_t,
            "kept_baseline": t < min_t,
        }
        if t < min_t:
            result.config = baseline
            result.score = float(np.mean(base_scores))
    return result


def _coordinate_ascent(score: Any, n: int, grid: Sequence[float]) -> list[tuple[float, ...]]:
    """Weight vectors visited by coordinate ascent from equal weights (two sweeps)."""
    current = [1.0] * n
    visited = [tuple(current)]
    best = score(current)
    for _ in range(2):
        for j in range(1, n):
            for value in grid:
                trial = list(current)
                trial[j] = value
                visited.append(tuple(trial))
                result = score(trial)
                if result > best + 1e-12:
                    best, current = result, trial
    return visited
