"""How well one fixed cut-off on ``Hit.relevance`` separates relevant from non-relevant hits.

For each BEIR set (whole-document protocol, MiniLM + BM25, the default fusion), the relevance
model is fitted on 256 pseudo-queries drawn from the corpus (no judgements, no test queries),
then every test query's top 10 fused hits are pooled across queries and labelled by the qrels.
Printed per set: precision / recall / F1 of "relevance >= t" for t = 0.3, 0.5, 0.7, and ROC AUC,
beside the raw fused score, whose best fixed threshold (by F1) is chosen on the *other* set (the
same rule is also applied to relevance, for a like-for-like row). Recall is over the relevant
hits in the pooled top 10. Document vectors come from the eval cache (``rag.eval.cache``).

    .venv/bin/python benchmarks/relevance_threshold.py [--data ../shared/data] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SETS = ("scifact", "climate_fever")
THRESHOLDS = (0.3, 0.5, 0.7)


@dataclass
class Pooled:
    """Every top-10 hit of every query: fused score, relevance, and whether it is relevant."""

    name: str
    score: np.ndarray
    relevance: np.ndarray
    label: np.ndarray
    fit_seconds: float
    queries: int


def roc_auc(values: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUC with average ranks for ties."""
    from scipy.stats import rankdata

    pos = labels.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(values)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def prf(values: np.ndarray, labels: np.ndarray, t: float) -> tuple[float, float, float]:
    keep = values >= t
    tp = int((keep & labels.astype(bool)).sum())
    p = tp / max(int(keep.sum()), 1)
    r = tp / max(int(labels.sum()), 1)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def best_threshold(values: np.ndarray, labels: np.ndarray) -> float:
    """The cut-off with the highest F1 on this set (candidates: every observed value)."""
    candidates = np.unique(values)
    scores = [prf(values, labels, float(t))[2] for t in candidates]
    return float(candidates[int(np.argmax(scores))])


def pooled_run(folder: Path, queries: int, k: int, split: str = "test", skip: int = 5) -> Pooled:
    from rag.eval.beir import load_beir
    from rag.eval.config import EvalConfig
    from rag.eval.systems import encoder_system
    from rag.eval.units import whole_units
    from rag.retrieval.multi import FusionRetriever
    from rag.retrieval.relevance import calibrate_relevance

    data = load_beir(folder, split)
    units = whole_units(data)
    config = EvalConfig(batch_size=32)
    label = f"{data.name}/whole"
    retrievers = [
        encoder_system(n, units, config, label=label).retriever for n in ("minilm", "bm25")
    ]
    t0 = time.perf_counter()
    model = calibrate_relevance(retrievers, units.chunks, queries=queries, depth=100, skip=skip)
    fit_seconds = time.perf_counter() - t0
    if model is None:
        raise RuntimeError(f"{data.name}: no relevance model could be fitted")
    fusion = FusionRetriever(retrievers, "default", candidates=100)
    qids = list(data.queries)
    runs = fusion.retrieve_runs([data.queries[q] for q in qids], 100)
    rows = []
    for i, qid in enumerate(qids):
        lists = {name: found[i] for name, found in runs.items()}
        judged = data.qrels.get(qid, {})
        for hit in model.apply(fusion.fuse_runs(lists, k), lists):
            rows.append((hit.score, hit.relevance, judged.get(hit.chunk.doc_id, 0) > 0))
    arr = np.asarray(rows, dtype=np.float64)
    return Pooled(data.name, arr[:, 0], arr[:, 1], arr[:, 2], fit_seconds, len(qids))


def table(runs: list[Pooled]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, run in enumerate(runs):
        other = runs[1 - i] if len(runs) == 2 else run
        auc_rel = roc_auc(run.relevance, run.label)
        for t in THRESHOLDS:
            out.append(
                _row(run, "relevance", f"{t:.1f}", prf(run.relevance, run.label, t), auc_rel)
            )
        t_rel = best_threshold(other.relevance, other.label)
        picked = prf(run.relevance, run.label, t_rel)
        out.append(_row(run, "relevance", f"{t_rel:.3f}*", picked, auc_rel))
        t_score = best_threshold(other.score, other.label)
        scored = prf(run.score, run.label, t_score)
        out.append(
            _row(run, "fused score", f"{t_score:.3f}*", scored, roc_auc(run.score, run.label))
        )
    return out


def _row(run: Pooled, what: str, t: str, found: tuple[float, float, float], auc: float) -> dict:
    p, r, f = found
    return {"set": run.name, "value": what, "threshold": t, "P": p, "R": r, "F1": f, "AUC": auc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--queries", type=int, default=256, help="pseudo-queries to fit on")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--split", default="test", help="qrels split (train: for choosing)")
    parser.add_argument("--skip", type=int, default=5, help="background starts below this rank")
    args = parser.parse_args()
    runs = [
        pooled_run(args.data / n, args.queries, args.k, args.split, args.skip) for n in args.sets
    ]
    rows = table(runs)
    for run in runs:
        print(
            f"{run.name}: {run.queries} queries, {len(run.label)} top-{args.k} hits, "
            f"{int(run.label.sum())} relevant; fit {run.fit_seconds:.1f} s"
        )
    print("* best F1 threshold chosen on the other set")
    print(f"{'set':<14}{'value':<13}{'threshold':>10}{'P':>7}{'R':>7}{'F1':>7}{'AUC':>7}")
    for r in rows:
        print(
            f"{r['set']:<14}{r['value']:<13}{r['threshold']:>10}"
            f"{r['P']:>7.3f}{r['R']:>7.3f}{r['F1']:>7.3f}{r['AUC']:>7.3f}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
