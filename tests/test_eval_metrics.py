"""Ranking metrics against values computed by hand on three-document fixtures."""

from __future__ import annotations

import math

import pytest

from rag.eval.metrics import (
    evaluate,
    ndcg_at_k,
    parse_metric,
    per_query_scores,
    recall_at_k,
    reciprocal_rank_at_k,
)

# d1 highly relevant (2), d2 relevant (1), d3 judged not relevant (0).
GRADED = {"d1": 2, "d2": 1, "d3": 0}


def test_ndcg_graded_hand_computed():
    # ranking d3, d1, d2: DCG = 0/log2(2) + 2/log2(3) + 1/log2(4) = 1.261860 + 0.5 = 1.761860
    # ideal d1, d2:      IDCG = 2/log2(2) + 1/log2(3) = 2 + 0.630930 = 2.630930
    assert ndcg_at_k(["d3", "d1", "d2"], GRADED, 3) == pytest.approx(1.761860 / 2.630930, abs=1e-6)
    assert ndcg_at_k(["d3", "d1", "d2"], GRADED, 3) == pytest.approx(0.669672, abs=1e-6)
    # cut at 2: DCG = 2/log2(3) = 1.261860; the ideal is cut at 2 too (2.630930)
    assert ndcg_at_k(["d3", "d1", "d2"], GRADED, 2) == pytest.approx(0.479625, abs=1e-6)
    # cut at 1: only d3 (gain 0); ideal 2
    assert ndcg_at_k(["d3", "d1", "d2"], GRADED, 1) == 0.0


def test_ndcg_gain_is_linear_not_exponential():
    # d2 first: DCG = 1 + 2/log2(3) = 2.261860; with 2**rel - 1 gains it would be
    # (1 + 3/log2(3)) / (3 + 1/log2(3)) = 0.797; linear (trec_eval) gives 0.859719.
    assert ndcg_at_k(["d2", "d1"], GRADED, 10) == pytest.approx(2.261860 / 2.630930, abs=1e-6)


def test_perfect_and_empty_rankings():
    assert ndcg_at_k(["d1", "d2", "d3"], GRADED, 10) == pytest.approx(1.0)
    assert ndcg_at_k([], GRADED, 10) == 0.0
    assert recall_at_k([], GRADED, 10) == 0.0
    assert reciprocal_rank_at_k([], GRADED, 10) == 0.0


def test_unjudged_documents_count_as_not_relevant():
    # x (unjudged), d2: DCG = 1/log2(3) = 0.630930
    assert ndcg_at_k(["x", "d2"], GRADED, 10) == pytest.approx(0.630930 / 2.630930, abs=1e-6)


def test_recall_counts_only_positive_grades():
    assert recall_at_k(["d3", "d1", "d2"], GRADED, 2) == 0.5  # d1 of {d1, d2}
    assert recall_at_k(["d3", "d1", "d2"], GRADED, 3) == 1.0
    assert recall_at_k(["d3"], GRADED, 10) == 0.0


def test_reciprocal_rank_within_cutoff():
    assert reciprocal_rank_at_k(["d3", "x", "d2"], GRADED, 10) == pytest.approx(1 / 3)
    assert reciprocal_rank_at_k(["d3", "x", "d2"], GRADED, 2) == 0.0
    assert reciprocal_rank_at_k(["d1"], GRADED, 1) == 1.0


def test_repeated_id_counts_once_at_its_first_rank():
    # d1, d1, d2 is read as d1, d2: perfect
    assert ndcg_at_k(["d1", "d1", "d2"], GRADED, 3) == pytest.approx(1.0)
    assert recall_at_k(["d1", "d1", "d2"], GRADED, 2) == 1.0


def test_query_without_relevant_documents_scores_zero():
    assert ndcg_at_k(["d3"], {"d3": 0}, 10) == 0.0
    assert recall_at_k(["d3"], {"d3": 0}, 10) == 0.0


def test_evaluate_averages_over_qrels_queries_and_missing_query_scores_zero():
    qrels = {"q1": GRADED, "q2": {"d2": 1}, "q3": {"d1": 1}}
    run = {"q1": ["d3", "d1", "d2"], "q2": ["d1", "d2"], "q_unjudged": ["d1"]}  # no q3
    scores = evaluate(run, qrels, ["ndcg@10", "recall@1", "mrr@10"])
    q1 = 1.761860 / 2.630930
    q2 = 1 / math.log2(3)  # d2 at rank 2, ideal 1
    assert scores["ndcg@10"] == pytest.approx((q1 + q2 + 0.0) / 3, abs=1e-6)
    assert scores["recall@1"] == pytest.approx(0.0)
    assert scores["mrr@10"] == pytest.approx((1 / 2 + 1 / 2 + 0) / 3)
    per_query = per_query_scores(run, qrels, ["mrr@10"])
    assert set(per_query) == {"q1", "q2", "q3"}  # unjudged query ignored, missing one scored
    assert per_query["q3"]["mrr@10"] == 0.0


def test_ignore_identical_ids_only_when_asked():
    qrels = {"q1": {"d1": 1}}
    run = {"q1": ["q1", "d1"]}
    assert evaluate(run, qrels, ["mrr@10"])["mrr@10"] == 0.5
    assert evaluate(run, qrels, ["mrr@10"], ignore_identical_ids=True)["mrr@10"] == 1.0


def test_evaluate_with_no_queries_is_zero():
    assert evaluate({}, {}, ["ndcg@10"]) == {"ndcg@10": 0.0}


@pytest.mark.parametrize("spec", ["ndcg", "ndcg@", "ndcg@0", "map@10", "recall@x"])
def test_parse_metric_rejects_bad_specs_and_names_valid_ones(spec):
    with pytest.raises(ValueError, match="ndcg@K"):
        parse_metric(spec)


def test_parse_metric():
    fn, k = parse_metric("recall@100")
    assert fn is recall_at_k and k == 100
