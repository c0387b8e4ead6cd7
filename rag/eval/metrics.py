"""Ranking metrics over document ids, following trec_eval (as BEIR reports them via pytrec_eval).

Conventions (the ones ``pytrec_eval``'s ``ndcg_cut``, ``recall`` and ``recip_rank`` use):

- A document is relevant when its qrels grade is at least 1; grade 0 (or a negative grade) is
  "judged not relevant" and unjudged documents are not relevant.
- nDCG@k (Järvelin & Kekäläinen, 2002, "Cumulated gain-based evaluation of IR techniques"):
  gain = the grade itself (linear, not ``2**rel - 1``), discount ``1 / log2(rank + 1)``, and
  the ideal DCG ranks the query's own qrels by grade, cut at k.
- Recall@k = relevant documents in the top k / all relevant documents of the query.
- MRR@k = 1 / rank of the first relevant document within the top k, else 0.

Every metric is computed per query and averaged over the *evaluated* queries (those of the
qrels): a query the run has no results for scores 0 (BEIR, by contrast, silently drops it).
A ranking is a sequence of document ids, best first; a repeated id counts at its first rank.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Sequence[str]]

DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10")


def _dedupe(ranking: Iterable[str], k: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for doc_id in ranking:
        if doc_id in seen:
            continue
        seen.add(doc_id)
        out.append(doc_id)
        if len(out) == k:
            break
    return out


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"the cut-off k must be at least 1, got {k}")


def ndcg_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """nDCG@k with linear gains (trec_eval ``ndcg_cut``); 0 when the query has no relevant doc."""
    _check_k(k)
    ideal_gains = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(ideal_gains))
    if ideal == 0:
        return 0.0
    dcg = sum(
        max(relevant.get(doc_id, 0), 0) / math.log2(i + 2)
        for i, doc_id in enumerate(_dedupe(ranking, k))
    )
    return dcg / ideal


def recall_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """Share of the query's relevant documents found in the top k; 0 when it has none."""
    _check_k(k)
    positives = {d for d, g in relevant.items() if g > 0}
    if not positives:
        return 0.0
    return sum(1 for d in _dedupe(ranking, k) if d in positives) / len(positives)


def reciprocal_rank_at_k(ranking: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    """1 / rank of the first relevant document in the top k, else 0 (averaged: MRR@k)."""
    _check_k(k)
    for i, doc_id in enumerate(_dedupe(ranking, k)):
        if relevant.get(doc_id, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


MetricFn = Callable[[Sequence[str], Mapping[str, int], int], float]

METRICS: dict[str, MetricFn] = {
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "mrr": reciprocal_rank_at_k,
}


def parse_metric(spec: str) -> tuple[MetricFn, int]:
    """``"ndcg@10"`` -> (ndcg_at_k, 10); names the valid metrics on error."""
    name, sep, cut = spec.partition("@")
    if name not in METRICS or not sep or not cut.isdigit() or int(cut) < 1:
        valid = ", ".join(f"{m}@K" for m in METRICS)
        raise ValueError(f"unknown metric {spec!r}; valid forms: {valid} (K a positive integer)")
    return METRICS[name], int(cut)


def per_query_scores(
    run: Run,
    qrels: Qrels,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    ignore_identical_ids: bool = False,
) -> dict[str, dict[str, float]]:
    """``{query_id: {metric: value}}`` for every query of ``qrels``.

    ``ignore_identical_ids`` drops a retrieved document whose id equals the query id (BEIR does
    this by default for ArguAna and Quora, where queries are also corpus documents).
    """
    parsed = [(spec, *parse_metric(spec)) for spec in metrics]
    scores: dict[str, dict[str, float]] = {}
    for qid, relevant in qrels.items():
        ranking: Sequence[str] = run.get(qid, ())
        if ignore_identical_ids:
            ranking = [d for d in ranking if d != qid]
        scores[qid] = {spec: fn(ranking, relevant, k) for spec, fn, k in parsed}
    return scores


def evaluate(
    run: Run,
    qrels: Qrels,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    ignore_identical_ids: bool = False,
) -> dict[str, float]:
    """Each metric averaged over the queries of ``qrels`` (0.0 for every metric when empty)."""
    per_query = per_query_scores(run, qrels, metrics, ignore_identical_ids=ignore_identical_ids)
    n = len(per_query)
    return {spec: (sum(q[spec] for q in per_query.values()) / n if n else 0.0) for spec in metrics}
