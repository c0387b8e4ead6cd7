"""Cross-check against LlamaIndex's own fusion code (``QueryFusionRetriever``'s private fusion
methods) on random runs: the same fused score per chunk, and the same order.

Correspondences: ``reciprocal_rerank`` counts ranks from 0, so it equals our ``rrf(k_rrf=59)``;
``simple`` (max of raw scores) equals ``mixture_embedding`` with identity statistics
(mean 0, std 1); ``dist_based_score`` does not clip, which cannot matter for lists of at most 10
hits (Samuelson's inequality), so those runs are kept that short.
"""

from __future__ import annotations

import numpy as np
import pytest

from rag.retrieval.fusion import dist_based_score, mixture_embedding, relative_score, rrf
from rag.retrieval.normalize import ScoreStats
from rag.types import Chunk, Hit

pytestmark = pytest.mark.slow  # importing llama_index.core takes several seconds

fusion_retriever = pytest.importorskip("llama_index.core.retrievers.fusion_retriever")
schema = pytest.importorskip("llama_index.core.schema")
llms = pytest.importorskip("llama_index.core.llms")

SEEDS = range(6)


def random_runs(seed: int, per_run: int) -> dict[str, list[tuple[str, float]]]:
    """Three encoders on different scales over a shared corpus of 40 chunks, best first."""
    rng = np.random.default_rng(seed)
    draws = [
        lambda n: rng.normal(0.5, 0.1, n),  # a cosine model
        lambda n: rng.normal(0.3, 0.05, n),  # a model with a narrow cosine range
        lambda n: rng.uniform(0.0, 20.0, n),  # BM25-like
    ]
    runs = {}
    for j, draw in enumerate(draws):
        ids = rng.choice(40, size=per_run, replace=False)
        scores = np.sort(draw(per_run))[::-1]
        runs[f"e{j}"] = [(f"c{i:02d}", float(s)) for i, s in zip(ids, scores, strict=True)]
    return runs


def to_hits(runs: dict[str, list[tuple[str, float]]]) -> dict[str, list[Hit]]:
    return {
        name: [
            Hit(Chunk(id=cid, doc_id="d", text=f"text of {cid}", start=0, end=1), s, rank, name)
            for rank, (cid, s) in enumerate(pairs, start=1)
        ]
        for name, pairs in runs.items()
    }


def to_llamaindex(runs: dict[str, list[tuple[str, float]]]) -> dict:
    # fresh nodes per call: LlamaIndex rewrites their scores in place
    return {
        ("query", j): [
            schema.NodeWithScore(node=schema.TextNode(text=f"text of {cid}", id_=cid), score=s)
            for cid, s in pairs
        ]
        for j, pairs in enumerate(runs.values())
    }


def retriever(weights: list[float] | None = None):
    return fusion_retriever.QueryFusionRetriever(
        [object(), object(), object()],  # never called: only the fusion methods are used
        llm=llms.MockLLM(),
        num_queries=1,
        retriever_weights=weights,
    )


def assert_same(ours: list[Hit], theirs: list) -> None:
    their_scores = {n.node.node_id: n.score for n in theirs}
    our_scores = {h.chunk.id: h.score for h in ours}
    assert our_scores.keys() == their_scores.keys()
    for cid, score in our_scores.items():
        assert score == pytest.approx(their_scores[cid], rel=1e-9, abs=1e-12), cid
    # LlamaIndex's order, with ties (up to rounding) broken by chunk id as ours are
    expected = sorted(their_scores, key=lambda cid: (-round(their_scores[cid], 9), cid))
    assert [h.chunk.id for h in ours] == expected


@pytest.mark.parametrize("seed", SEEDS)
def test_rrf_matches_reciprocal_rerank(seed):
    runs = random_runs(seed, per_run=30)
    theirs = retriever()._reciprocal_rerank_fusion(to_llamaindex(runs))
    assert_same(rrf(to_hits(runs), k_rrf=59), theirs)


@pytest.mark.parametrize("seed", SEEDS)
def test_relative_score_matches(seed):
    runs = random_runs(seed, per_run=30)
    weights = [float(w) for w in np.random.default_rng(100 + seed).uniform(0.1, 3.0, 3)]
    theirs = retriever(weights)._relative_score_fusion(to_llamaindex(runs))
    ours = relative_score(to_hits(runs), weights=dict(zip(runs, weights, strict=True)))
    assert_same(ours, theirs)
    assert_same(
        relative_score(to_hits(runs)), retriever()._relative_score_fusion(to_llamaindex(runs))
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_dist_based_score_matches(seed):
    runs = random_runs(seed, per_run=10)
    weights = [float(w) for w in np.random.default_rng(200 + seed).uniform(0.1, 3.0, 3)]
    theirs = retriever(weights)._relative_score_fusion(to_llamaindex(runs), dist_based=True)
    ours = dist_based_score(to_hits(runs), weights=dict(zip(runs, weights, strict=True)))
    assert_same(ours, theirs)


@pytest.mark.parametrize("seed", SEEDS)
def test_max_pooling_matches_simple_fusion(seed):
    runs = random_runs(seed, per_run=30)
    identity = dict.fromkeys(runs, ScoreStats(mean=0.0, std=1.0, min=0.0, max=0.0))
    theirs = retriever()._simple_fusion(to_llamaindex(runs))
    assert_same(mixture_embedding(to_hits(runs), stats=identity), theirs)


def test_constant_list_matches():
    runs = {"e0": [("c01", 0.4), ("c02", 0.4)], "e1": [("c02", 0.9), ("c03", 0.1)]}
    assert_same(
        relative_score(to_hits(runs)), retriever([1, 1])._relative_score_fusion(to_llamaindex(runs))
    )
    assert_same(
        dist_based_score(to_hits(runs)),
        retriever([1, 1])._relative_score_fusion(to_llamaindex(runs), dist_based=True),
    )
