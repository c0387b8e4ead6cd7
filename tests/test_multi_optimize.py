"""The fusion grid search: its vectorised scoring equals the real fusion + metrics, it finds the
weights the data calls for, and keeps the default unless the gain is significant."""

from __future__ import annotations

import numpy as np
import pytest

from rag.eval.metrics import evaluate
from rag.eval.optimize import optimize, paired_t
from rag.retrieval.multi import DEFAULT_FUSION, FusionConfig, fuse


def synthetic(seed: int, n_queries: int = 60, noise: float = 1.0):
    """Encoder 'good' ranks the relevant doc high; 'noisy' is random; 'mid' is in between."""
    rng = np.random.default_rng(seed)
    runs: dict[str, dict[str, dict[str, float]]] = {"good": {}, "noisy": {}, "mid": {}}
    qrels: dict[str, dict[str, int]] = {}
    for q in range(n_queries):
        qid = f"q{q}"
        docs = [f"d{q}-{i:02d}" for i in rng.permutation(30)]  # ties must not favour it
        relevant = docs[0]
        qrels[qid] = {relevant: 1}
        signal = np.zeros(30)
        signal[0] = 2.0
        for name, scale, amount in (("good", 1.0, 1.0), ("noisy", 10.0, 0.0), ("mid", 0.2, 0.4)):
            scores = scale * (amount * signal + noise * rng.normal(size=30))
            order = np.argsort(-scores)[:20]
            runs[name][qid] = {docs[i]: float(scores[i]) for i in order}
    return runs, qrels


def exact_ndcg(runs, qrels, config: FusionConfig) -> float:
    ranked = {q: list(fuse({n: runs[n][q] for n in runs}, config, k=10)) for q in qrels}
    return evaluate(ranked, qrels, ("ndcg@10",))["ndcg@10"]


def test_grid_finds_the_informative_encoder_and_scores_exactly() -> None:
    runs, qrels = synthetic(0)
    result = optimize(runs, qrels, min_t=0.0)
    weights = result.config.weights
    assert weights["noisy"] == 0.0  # pure noise is dropped
    assert weights["good"] >= weights["mid"]
    assert result.score == pytest.approx(exact_ndcg(runs, qrels, result.config), abs=1e-9)
    # every family's reported best equals the real fusion's score of that config
    for family in result.families[::5]:
        config = FusionConfig.from_json(family["config"])
        assert family["train_ndcg@10"] == pytest.approx(exact_ndcg(runs, qrels, config), abs=1e-9)
    assert result.evaluated == len(result.families) * 36  # 6 x 6 weights for encoders 2 and 3


def test_default_is_kept_unless_the_gain_is_significant() -> None:
    runs, qrels = synthetic(1)
    result = optimize(runs, qrels)  # 'noisy' at weight 1 in the default: a large, clear gain
    assert result.baseline is not None and not result.baseline["kept_baseline"]
    assert result.config != DEFAULT_FUSION
    identical = {"a": runs["good"], "b": runs["good"]}  # nothing to gain over the default
    kept = optimize(identical, qrels)
    assert kept.config == DEFAULT_FUSION and kept.baseline["kept_baseline"]
    assert kept.score == pytest.approx(exact_ndcg(identical, qrels, DEFAULT_FUSION), abs=1e-9)


def test_paired_t_and_errors() -> None:
    assert paired_t(np.zeros(3)) == 0.0
    assert paired_t(np.array([0.1, 0.1, 0.1])) == np.inf
    assert paired_t(np.array([1.0, 2.0, 3.0])) == pytest.approx(2.0 / (1.0 / np.sqrt(3)))
    runs, qrels = synthetic(2, n_queries=5)
    with pytest.raises(ValueError, match="two encoders"):
        optimize({"good": runs["good"]}, qrels)
