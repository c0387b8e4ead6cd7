"""Confidence metrics against values worked out by hand (natural logs; ``L = ln 2``).

Fixture: V = 4, two steps.
  step 1: p = (1/2, 1/4, 1/8, 1/8), chosen token 0 (log p = -L)
  step 2: p = (1/4, 1/4, 1/4, 1/4), chosen token 2 (log p = -2L)

  H1 = 1/2 L + 1/4 (2L) + 2 * 1/8 (3L) = 1.75 L          H2 = ln 4 = 2L
  S1 = 1/4 + 1/16 + 2/64 = 11/32                         S2 = 4/16 = 1/4
  KL(U||p1) = -ln 4 - 1/4 (-L - 2L - 3L - 3L) = 0.25 L  KL(U||p2) = 0

  avg_logprob = (-L - 2L) / 2 = -1.5 L
  gini        = (11/32 + 1/4) / 2 = 19/64
  entropy     = -(1.75 L + 2 L) / 2 = -1.875 L
  perplexity  = -exp(1.875 L) = -2 ** 1.875
  self_cert.  = (0.25 L + 0) / 2 = 0.125 L
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rag import confidence as C
from rag.generation import EchoGenerator, Generation, TokenStep

L = math.log(2)
P1 = np.array([1 / 2, 1 / 4, 1 / 8, 1 / 8])
P2 = np.full(4, 1 / 4)
EXPECTED = {
    "avg_logprob": -1.5 * L,
    "gini": 19 / 64,
    "entropy": -1.875 * L,
    "perplexity": -(2**1.875),
    "self_certainty": 0.125 * L,
}


def exact_step(p: np.ndarray, chosen: int) -> TokenStep:
    lp = np.log(p)
    stats = C.distribution_stats(lp)
    return TokenStep(
        token=f"t{chosen}",
        token_id=chosen,
        logprob=float(lp[chosen]),
        vocab_size=len(p),
        entropy=stats.entropy,
        sum_sq=stats.sum_sq,
        kl_uniform=stats.kl_uniform,
    )


def topk_step(p: np.ndarray, chosen: int, k: int, vocab_size: int | None) -> TokenStep:
    """What an OpenAI-style server reports: the chosen token and the top-k, no full distribution."""
    order = np.argsort(-p, kind="stable")[:k]
    return TokenStep(
        token=f"t{chosen}",
        token_id=None,
        logprob=float(np.log(p[chosen])),
        top_tokens=tuple(f"t{i}" for i in order),
        top_logprobs=np.log(p[order]).astype(np.float32),
        vocab_size=vocab_size,
    )


def test_distribution_stats_by_hand():
    s1 = C.distribution_stats(np.log(P1))
    assert s1.entropy == pytest.approx(1.75 * L)
    assert s1.sum_sq == pytest.approx(11 / 32)
    assert s1.kl_uniform == pytest.approx(0.25 * L)
    s2 = C.distribution_stats(np.log(P2))
    assert (s2.entropy, s2.sum_sq, s2.kl_uniform) == pytest.approx((2 * L, 1 / 4, 0.0), abs=1e-12)
    both = C.distribution_stats(np.log(np.stack([P1, P2])))
    assert both.entropy == pytest.approx([1.75 * L, 2 * L])
    assert both.kl_uniform == pytest.approx([0.25 * L, 0.0], abs=1e-12)


def test_masked_tokens_count_as_absent():
    # -inf entries (masked tokens) add nothing, and V for KL(U||p) counts finite entries only.
    s = C.distribution_stats(np.array([math.log(0.5), math.log(0.5), -math.inf]))
    assert (s.entropy, s.sum_sq, s.kl_uniform) == pytest.approx((L, 0.5, 0.0), abs=1e-12)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_metrics_by_hand_on_exact_steps(name):
    steps = [exact_step(P1, 0), exact_step(P2, 2)]
    assert C.get_metric(name)(steps) == pytest.approx(EXPECTED[name])


def test_metrics_by_hand_through_a_generation():
    gen = EchoGenerator("Paris France", distributions=np.stack([P1, P2])).generate("q")
    # the echo fake picks each row's argmax: token 0 in both rows, so avg_logprob = (-L - 2L)/2
    assert gen.exact
    assert C.score_all(gen) == pytest.approx(EXPECTED)


def test_self_certainty_matches_the_papers_formula():
    # Kang et al. (arXiv 2502.18581): -1/(nV) sum_i sum_j log(V p_ij), written out directly.
    rng = np.random.default_rng(0)
    dists = rng.dirichlet(np.full(50, 0.3), size=7)
    n, v = dists.shape
    direct = -np.sum(np.log(v * dists)) / (n * v)
    steps = [exact_step(p, int(np.argmax(p))) for p in dists]
    assert C.self_certainty(steps) == pytest.approx(direct)
    entropy_direct = -np.mean(-np.sum(dists * np.log(dists), axis=1))
    assert C.entropy(steps) == pytest.approx(entropy_direct)
    assert C.perplexity(steps) == pytest.approx(-math.exp(-entropy_direct))


def test_topk_approximation_is_exact_when_the_tail_is_uniform():
    # top-2 of P1 leaves 1/4 for 2 tokens -> 1/8 each, which is the truth.
    steps = [topk_step(P1, 0, k=2, vocab_size=4), topk_step(P2, 2, k=2, vocab_size=4)]
    assert not steps[0].exact
    assert C.score_all(steps) == pytest.approx(EXPECTED)


def test_topk_approximation_by_hand_with_a_skewed_tail():
    # p = (0.6, 0.2, 0.15, 0.05); known top-2, V = 4 -> tail 0.2 spread as 0.1, 0.1
    p = np.array([0.6, 0.2, 0.15, 0.05])
    s = C.approx_stats(np.log(p[:2]), 4)
    h = -(0.6 * math.log(0.6) + 0.2 * math.log(0.2) + 0.2 * math.log(0.1))
    assert s.entropy == pytest.approx(h)  # 1.0889
    assert s.sum_sq == pytest.approx(0.36 + 0.04 + 0.01 + 0.01)
    kl = -math.log(4) - (math.log(0.6) + math.log(0.2) + 2 * math.log(0.1)) / 4
    assert s.kl_uniform == pytest.approx(kl)  # 0.2951
    # a uniform tail errs towards less confidence: more entropy, less sum of squares and KL
    true = C.distribution_stats(np.log(p))
    assert s.entropy > true.entropy
    assert s.sum_sq < true.sum_sq
    assert s.kl_uniform < true.kl_uniform


def test_topk_approximation_adds_the_chosen_token_when_outside_the_top_k():
    # sampled token 3 (p = 1/8) is not in the top-1 list; both are known -> tail 3/8 over 2 tokens
    step = topk_step(P1, 3, k=1, vocab_size=4)
    s = C.step_stats(step)
    assert s == pytest.approx(C.approx_stats([math.log(1 / 2), math.log(1 / 8)], 4))
    assert s.sum_sq == pytest.approx(1 / 4 + 1 / 64 + 2 * (3 / 16) ** 2)


def test_topk_tail_mass_is_floored():
    # a server rounding to top-2 that sums to 1 would make KL(U||p) infinite without the floor
    s = C.approx_stats([math.log(0.5), math.log(0.5)], 1000)
    q = C.TAIL_MASS_FLOOR / 998
    assert s.kl_uniform == pytest.approx(
        -math.log(1000) - (2 * math.log(0.5) + 998 * math.log(q)) / 1000
    )
    assert math.isfinite(s.kl_uniform)


def test_vocab_size_used_for_the_approximation():
    unknown = topk_step(P1, 0, k=2, vocab_size=None)
    assert C.entropy([unknown]) == pytest.approx(
        C.entropy([unknown], vocab_size=C.DEFAULT_VOCAB_SIZE)
    )
    assert C.entropy([unknown], vocab_size=4) == pytest.approx(-1.75 * L)
    # the step's own vocab_size wins over the argument
    known = topk_step(P1, 0, k=2, vocab_size=4)
    assert C.entropy([known], vocab_size=1000) == pytest.approx(-1.75 * L)
    with pytest.raises(ValueError, match="smaller than"):
        C.approx_stats(np.log(P1[:3]), 2)


def test_every_metric_prefers_the_more_confident_answer():
    sure = EchoGenerator("Paris is the capital", confidence=0.9).generate("q")
    unsure = EchoGenerator("Paris is the capital", confidence=0.3).generate("q")
    for name, metric in C.METRICS.items():
        assert metric(sure) > metric(unsure), name


def test_empty_generation_is_refused():
    empty = Generation(text="", steps=[], finish_reason="stop", model="m")
    for metric in C.METRICS.values():
        with pytest.raises(ValueError, match="without token steps"):
            metric(empty)


def test_registry_names_the_choices():
    assert set(C.METRICS) == {"avg_logprob", "gini", "entropy", "perplexity", "self_certainty"}
    with pytest.raises(ValueError, match="self_certainty"):
        C.get_metric("certainty")
