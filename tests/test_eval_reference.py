"""Cross-check the metrics against trec_eval (through ``pytrec_eval``, as BEIR computes them).

Skipped when ``pytrec_eval`` (PyPI: ``pytrec_eval-terrier``) is not installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.eval.metrics import per_query_scores

pytrec_eval = pytest.importorskip("pytrec_eval")


def trec_scores(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]):
    """trec_eval's ndcg_cut_10, recall_100 and recip_rank on the top 10, per query."""

    def as_trec(r: dict[str, list[str]], depth: int) -> dict[str, dict[str, float]]:
        # Strictly decreasing scores so trec_eval's ordering (score, then doc id) is our order.
        return {
            q: {d: float(1000 - i) for i, d in enumerate(docs[:depth])} for q, docs in r.items()
        }

    full = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(
        as_trec(run, 1000)
    )
    top10 = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(as_trec(run, 10))
    return {
        q: {
            "ndcg@10": full[q]["ndcg_cut_10"],
            "recall@100": full[q]["recall_100"],
            "mrr@10": top10[q]["recip_rank"],
        }
        for q in full
    }


def assert_same(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> None:
    ours = per_query_scores(run, qrels, ["ndcg@10", "recall@100", "mrr@10"])
    ref = trec_scores(run, qrels)
    assert set(ref) <= set(ours)
    for qid, values in ref.items():
        for metric, value in values.items():
            assert ours[qid][metric] == pytest.approx(value, abs=1e-9), (qid, metric)


def random_run(qrels, doc_ids, rng, depth=150):
    """Random rankings that contain some of each query's judged documents at random ranks."""
    run = {}
    for qid, judged in qrels.items():
        picks = list(rng.choice(doc_ids, size=depth, replace=False))
        for doc in judged:
            if rng.random() < 0.7:
                picks.insert(int(rng.integers(0, 40)), doc)
        run[qid] = list(dict.fromkeys(picks))
    return run


def test_graded_synthetic_qrels_match_trec_eval():
    rng = np.random.default_rng(7)
    doc_ids = [f"d{i}" for i in range(400)]
    qrels = {
        f"q{i}": {
            str(d): int(rng.integers(0, 4)) for d in rng.choice(doc_ids, size=8, replace=False)
        }
        for i in range(60)
    }
    assert_same(random_run(qrels, doc_ids, rng), qrels)


@pytest.mark.slow
def test_scifact_random_and_bm25_runs_match_trec_eval(shared_data: Path):
    from rag.encoders.bm25 import BM25Index
    from rag.eval.beir import load_beir
    from rag.eval.runner import whole_units

    ds = load_beir(shared_data / "scifact", "test")
    doc_ids = list(ds.corpus)
    assert_same(random_run(ds.qrels, doc_ids, np.random.default_rng(3)), ds.qrels)

    units = whole_units(ds)
    bm25 = BM25Index().index(units.texts)
    qids = list(ds.queries)
    indices, _ = bm25.search([ds.queries[q] for q in qids], 100)
    run = {
        q: [units.doc_ids[i] for i in row if i >= 0] for q, row in zip(qids, indices, strict=True)
    }
    assert_same(run, ds.qrels)
