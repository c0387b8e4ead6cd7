"""Fusion of several ranked lists of the same items into one (pure functions over plain data).

Every fusion takes ``runs``, one entry per retriever or encoder name, in either of two forms:

- **Hits**: ``{name: [Hit, ...]}``, each list best first; items are matched by ``chunk.id``. The
  result is one ``list[Hit]``: a fused hit has ``source="fusion:NAME"`` (NAME as in
  :data:`FUSIONS`), ``components`` = {run name: SourceScore(raw score, rank)} for every run that
  contained the chunk, in the order of ``runs``, and the ``chunk`` object of the first run that
  held it.
- **Plain runs**: ``{name: {id: score}}``, each run listing its ids best first (its order gives
  the ranks, 1-based), the form ranx uses for one query; ids are anything a run is keyed by
  (chunk ids, document ids). The result is one plain fused run ``{id: fused score}``.

Either way the result is sorted by fused score, highest first, ties broken by ascending id,
cut to the first ``k`` when ``k`` is given, and both forms give the same scores and order for
the same data. The runs of one call are all of one form (a ValueError otherwise).

Conventions shared by all methods:

- ``weights`` maps run names to non-negative weights; a run it does not name gets 1.0, and a
  name that is not a run is an error (a typo would otherwise pass silently).
- An item absent from a list contributes 0 to that list's term of a (normalised) sum
  (``missing="zero"``, the usual CombSUM reading). ``missing="min"`` instead credits it with the
  lowest normalised score that list retrieved, i.e. "ranked at the cut-off" -- this matters for
  z-scores, where 0 (the mean) beats the list's own below-average hits.
- If a list of Hits holds a chunk twice, its first (best-ranked) entry is used.
- Sums are taken over each item's terms in sorted order, so items with the same terms get
  bit-identical scores whatever the run order, and the id tie-break really applies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Literal

import numpy as np

from rag.retrieval.normalize import NormName, ScoreStats, get_normalizer, norm_zscore
from rag.types import Chunk, Hit, SourceScore

Run = Mapping[str, float]  # one query's plain run: {id: score}, best first
HitRuns = Mapping[str, Sequence[Hit]]
PlainRuns = Mapping[str, Run]
Runs = HitRuns | PlainRuns
Fused = list[Hit] | dict[str, float]  # list[Hit] for Hit runs, {id: score} for plain runs
Missing = Literal["zero", "min"]
Fusion = Callable[..., Fused]


def is_plain(runs: Runs) -> bool:
    """Whether ``runs`` are plain ``{id: score}`` runs (``False`` for lists of Hits, and for no
    runs at all); a ValueError when the two forms are mixed."""
    plain = [isinstance(r, Mapping) for r in runs.values()]
    if any(plain) and not all(plain):
        raise ValueError("runs must all be lists of Hits or all {id: score} mappings, not both")
    return bool(plain) and all(plain)


def _entries(name: str, run: Sequence[Hit] | Run) -> list[tuple[str, float, int, Chunk | None]]:
    """``(id, score, rank, chunk)`` per distinct item of one run, best first."""
    if isinstance(run, Mapping):
        return [(i, s, r, None) for r, (i, s) in enumerate(run.items(), start=1)]
    out: list[tuple[str, float, int, Chunk | None]] = []
    seen: set[str] = set()
    for hit in run:
        if hit.chunk.id in seen:
            continue
        seen.add(hit.chunk.id)
        if hit.rank < 1:
            raise ValueError(f"run {name!r}: ranks are 1-based, got {hit.rank}")
        out.append((hit.chunk.id, hit.score, hit.rank, hit.chunk))
    return out


class _Pool:
    """The union of all runs' items: one row per id, in order of first appearance."""

    def __init__(self, runs: Runs) -> None:
        self.plain = is_plain(runs)
        self.names: list[str] = list(runs)
        self.ids: list[str] = []
        self.chunks: list[Chunk | None] = []
        self.components: list[dict[str, SourceScore]] = []
        # per run: row of each of its items, raw scores, ranks (aligned arrays)
        self.rows: dict[str, np.ndarray] = {}
        self.raw: dict[str, list[float]] = {}
        self.ranks: dict[str, np.ndarray] = {}
        row_of: dict[str, int] = {}
        for name, run in runs.items():
            entries = _entries(name, run)
            rows: list[int] = []
            for cid, score, rank, item in entries:
                row = row_of.get(cid)
                if row is None:
                    row = row_of[cid] = len(self.ids)
                    self.ids.append(cid)
                    self.chunks.append(item)
                    self.components.append({})
                if not self.plain:
                    self.components[row][name] = SourceScore(float(score), rank)
                rows.append(row)
            self.rows[name] = np.asarray(rows, dtype=np.intp)
            self.raw[name] = [float(e[1]) for e in entries]
            self.ranks[name] = np.asarray([e[2] for e in entries], dtype=np.float64)

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, name: str) -> np.ndarray:
        arr = np.asarray(self.raw[name], dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"run {name!r} has a non-finite score")
        return arr

    def counts(self) -> np.ndarray:
        """How many runs contain each chunk."""
        counts = np.zeros(len(self), dtype=np.float64)
        for rows in self.rows.values():
            counts[rows] += 1.0
        return counts

    def empty(self) -> Fused:
        return {} if self.plain else []

    def ranked(self, fused: np.ndarray, name: str, k: int | None) -> Fused:
        """The items by fused score, best first, ties by ascending id: Hits named
        ``fusion:NAME`` for Hit runs, ``{id: score}`` for plain runs."""
        scores = fused.tolist()
        ids = self.ids
        order = sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))
        if k is not None:
            order = order[:k]
        if self.plain:
            return {ids[i]: scores[i] for i in order}
        source = f"fusion:{name}"
        return [
            Hit(
                chunk=self.chunks[i],  # type: ignore[arg-type]  # Hit runs carry their chunks
                score=scores[i],
                rank=rank,
                source=source,
                components=self.components[i],
            )
            for rank, i in enumerate(order, start=1)
        ]


def _check_k(k: int | None) -> None:
    if k is not None and k < 0:
        raise ValueError(f"k must be >= 0 or None, got {k}")


def _check_missing(missing: str) -> None:
    if missing not in ("zero", "min"):
        raise ValueError(f"missing must be 'zero' or 'min', got {missing!r}")


def _weights(names: Sequence[str], weights: Mapping[str, float] | None) -> dict[str, float]:
    if weights is None:
        return dict.fromkeys(names, 1.0)
    unknown = sorted(set(weights) - set(names))
    if unknown:
        raise ValueError(f"weights name runs that are not given: {unknown}; runs: {list(names)}")
    out = {name: float(weights.get(name, 1.0)) for name in names}
    bad = {name: w for name, w in out.items() if not (np.isfinite(w) and w >= 0.0)}
    if bad:
        raise ValueError(f"weights must be finite and >= 0, got {bad}")
    return out


def _sum_terms(
    pool: _Pool, terms: Mapping[str, np.ndarray], fill: Mapping[str, float]
) -> np.ndarray:
    """Per chunk, the sum over runs of its term (``fill[name]`` where the run lacks it)."""
    matrix = np.empty((len(pool), len(pool.names)), dtype=np.float64)
    for j, name in enumerate(pool.names):
        matrix[:, j] = fill[name]
        matrix[pool.rows[name], j] = terms[name]
    matrix.sort(axis=1)  # same terms -> same float sum, whatever the run order
    return matrix.sum(axis=1)


def _normalised_sum(
    pool: _Pool,
    norm: NormName,
    weights: Mapping[str, float],
    stats: Mapping[str, ScoreStats] | None,
    missing: Missing,
    floors: Mapping[str, float] | None = None,
) -> np.ndarray:
    normalise = get_normalizer(norm)
    stats = stats or {}
    terms: dict[str, np.ndarray] = {}
    fill: dict[str, float] = {}
    for name in pool.names:
        values = weights[name] * normalise(pool.scores(name), stats.get(name))
        terms[name] = values
        fill[name] = float(values.min()) if missing == "min" and values.size else 0.0
        if floors and name in floors and missing == "min":
            # an exhausted list: every chunk it does not hold scores ``floor`` there
            floor = np.array([floors[name]], dtype=np.float64)
            fill[name] = min(
                fill[name], float(weights[name] * normalise(floor, stats.get(name))[0])
            )
    return _sum_terms(pool, terms, fill)


def rrf(
    runs: Runs,
    *,
    k_rrf: float = 60,
    weights: Mapping[str, float] | None = None,
    k: int | None = None,
) -> Fused:
    """Reciprocal rank fusion: ``score(d) = sum over runs r containing d of w_r / (k_rrf + rank_r(d))``
    with 1-based ranks (Cormack, Clarke & Buettcher, "Reciprocal Rank Fusion outperforms Condorcet
    and individual Rank Learning Methods", SIGIR 2009; k_rrf=60 as there). Uses each hit's
    ``rank``, not its score. Weighted as in ranx / Elasticsearch's weighted RRF.

    LlamaIndex's ``reciprocal_rerank`` mode counts ranks from 0, i.e. equals ``k_rrf=59`` here.
    """
    _check_k(k)
    if not (np.isfinite(k_rrf) and k_rrf >= 0):
        raise ValueError(f"k_rrf must be finite and >= 0, got {k_rrf}")
    pool = _Pool(runs)
    if not len(pool):
        return pool.empty()
    w = _weights(pool.names, weights)
    terms = {name: w[name] / (k_rrf + pool.ranks[name]) for name in pool.names}
    return pool.ranked(_sum_terms(pool, terms, dict.fromkeys(pool.names, 0.0)), "rrf", k)


def combsum(
    runs: Runs,
    *,
    norm: NormName = "minmax",
    weights: Mapping[str, float] | None = None,
    stats: Mapping[str, ScoreStats] | None = None,
    missing: Missing = "zero",
    floors: Mapping[str, float] | None = None,
    k: int | None = None,
) -> Fused:
    """CombSUM: the (weighted) sum of each run's normalised scores (Fox & Shaw, "Combination of
    multiple searches", TREC-2, 1994). ``norm`` picks the normaliser from
    :mod:`rag.retrieval.normalize`; ``stats`` maps run names to outside statistics (runs it
    does not name are normalised with their own candidates' statistics). ``floors`` names
    runs that hold every chunk scoring above a floor (a BM25 list shorter than asked for: the
    rest score 0); with ``missing="min"`` a chunk missing from such a run is credited with the
    floor's normalised score, which is never above the list's lowest."""
    _check_k(k)
    _check_missing(missing)
    pool = _Pool(runs)
    if not len(pool):
        return pool.empty()
    fused = _normalised_sum(pool, norm, _weights(pool.names, weights), stats, missing, floors)
    return pool.ranked(fused, f"combsum-{norm}", k)


def combmnz(
    runs: Runs,
    *,
    norm: NormName = "minmax",
    weights: Mapping[str, float] | None = None,
    stats: Mapping[str, ScoreStats] | None = None,
    missing: Missing = "zero",
    floors: Mapping[str, float] | None = None,
    k: int | None = None,
) -> Fused:
    """CombMNZ: CombSUM times the number of runs that contain the chunk, rewarding agreement
    (Fox & Shaw, "Combination of multiple searches", TREC-2, 1994; Lee, SIGIR 1997).
    ``floors`` as for :func:`combsum`."""
    _check_k(k)
    _check_missing(missing)
    pool = _Pool(runs)
    if not len(pool):
        return pool.empty()
    fused = _normalised_sum(pool, norm, _weights(pool.names, weights), stats, missing, floors)
    return pool.ranked(fused * pool.counts(), f"combmnz-{norm}", k)


def mixture_embedding(
    runs: Runs,
    *,
    stats: Mapping[str, ScoreStats] | None = None,
    aggregate: Literal["max", "sum"] = "max",
    missing: Missing = "zero",
    k: int | None = None,
) -> Fused:
    """Mixture-Embedding RAG: standardise each embedding model's similarities (z-score per model),
    pool all models' candidates and sort by standardised similarity (Chen, Zhao & Chen, "Each to
    Their Own: Exploring the Optimal Embedding in RAG", arXiv:2507.17442, 2025).

    A chunk found by several models takes its ``max`` standardised score (``aggregate="max"``,
    the paper's pooling; ``missing`` does not apply) or their ``sum`` (``"sum"``, which then
    equals CombSUM with z-scores). ``stats`` maps model names to outside statistics, e.g. each
    model's similarities over the corpus; by default each model's candidates are used.
    """
    _check_k(k)
    _check_missing(missing)
    if aggregate not in ("max", "sum"):
        raise ValueError(f"aggregate must be 'max' or 'sum', got {aggregate!r}")
    pool = _Pool(runs)
    if not len(pool):
        return pool.empty()
    if aggregate == "sum":
        fused = _normalised_sum(pool, "zscore", dict.fromkeys(pool.names, 1.0), stats, missing)
        return pool.ranked(fused, "mixture-sum", k)
    stats = stats or {}
    fused = np.full(len(pool), -np.inf)
    for name in pool.names:
        rows = pool.rows[name]
        z = norm_zscore(pool.scores(name), stats.get(name))
        fused[rows] = np.maximum(fused[rows], z)
    return pool.ranked(fused, "mixture", k)


def _share_weights(pool: _Pool, weights: Mapping[str, float] | None) -> dict[str, float]:
    """Weights rescaled to sum to 1 (equal shares by default), as LlamaIndex does."""
    w = _weights(pool.names, weights)
    total = sum(w.values())
    if total <= 0.0:
        raise ValueError("weights must not all be zero")
    return {name: value / total for name, value in w.items()}


def relative_score(
    runs: Runs,
    *,
    weights: Mapping[str, float] | None = None,
    missing: Missing = "zero",
    k: int | None = None,
) -> Fused:
    """Relative score fusion: min-max scale each list, weight it (weights rescaled to sum to 1;
    equal by default) and sum; as LlamaIndex's ``QueryFusionRetriever`` mode ``relative_score``
    (itself after Weaviate's ``relativeScoreFusion``, 2023). Equals CombSUM-minmax divided by the
    weights' total. A constant list maps to 1 if its score is positive, else 0 (as LlamaIndex)."""
    _check_k(k)
    _check_missing(missing)
    pool = _Pool(runs)
    if not len(pool):
        return pool.empty()
    fused = _normalised_sum(pool, "minmax", _share_weights(pool, weights), None, missing)
    return pool.ranked(fused, "relative_score", k)


def dist_based_score(
    runs: Runs,
    *,
    weights: Mapping[str, float] | None = None,
    missing: Missing = "zero",
    k: int | None = None,
) -> Fused:
    """Distribution-based score fusion: scale each list so that ``mean -/+ 3 std`` maps to 0/1,
    weight it (weights rescaled to sum to 1; equal by default) and sum (Mazzeschi,
    "Distribution-Based Score Fusion (DBSF)", 2023; LlamaIndex mode ``dist_based_score``).

    Scores are clipped to [0, 1]; LlamaIndex does not clip, which only differs for a list of
    more than 10 hits holding a score beyond 3 std of its mean (Samuelson's inequality).
    """
    _check_k(k)
    _check_missing(missing)
    pool = _Pool(runs)
    if not len(pool):
        return pool.empty()
    fused = _normalised_sum(pool, "dbsf", _share_weights(pool, weights), None, missing)
    return pool.ranked(fused, "dist_based_score", k)


FUSIONS: dict[str, Fusion] = {
    "rrf": rrf,
    "combsum-minmax": partial(combsum, norm="minmax"),
    "combsum-zscore": partial(combsum, norm="zscore"),
    "combsum-dbsf": partial(combsum, norm="dbsf"),
    "combmnz-minmax": partial(combmnz, norm="minmax"),
    "combmnz-zscore": partial(combmnz, norm="zscore"),
    "combmnz-dbsf": partial(combmnz, norm="dbsf"),
    "mixture": partial(mixture_embedding, aggregate="max"),
    "mixture-sum": partial(mixture_embedding, aggregate="sum"),
    "relative_score": relative_score,
    "dist_based_score": dist_based_score,
}


def get_fusion(name: str) -> Fusion:
    """The fusion registered as ``name``, called as ``fn(runs, k=..., **options)``; a ValueError
    names the valid choices."""
    try:
        return FUSIONS[name]
    except KeyError:
        choices = ", ".join(sorted(FUSIONS))
        raise ValueError(f"unknown fusion {name!r}; choose one of: {choices}") from None
