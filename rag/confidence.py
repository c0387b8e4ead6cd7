"""Confidence of a generated answer from its next-token distributions: pure functions.

Confident RAG ("Each to Their Own: Exploring the Optimal Embedding in RAG", Chen, Zhao & Chen,
arXiv 2507.17442, section 3.2) generates one answer per embedding model and keeps the answer the
LLM is most confident about. The metrics come from Kang, Zhao & Song, "Scalable Best-of-N
Selection for LLMs via Self-Certainty" (arXiv 2502.18581). For an answer of ``n`` tokens, with
``p_i`` the model's next-token distribution over a vocabulary of ``V`` tokens at step ``i`` and
``y_i`` the chosen token (natural logs throughout):

=================  ====================================================================
``avg_logprob``    ``1/n sum_i log p_i(y_i)``
``gini``           ``1/n sum_i sum_j p_i(j)^2``  (the complement of Gini impurity)
``entropy``        ``-1/n sum_i H(p_i)``, ``H(p) = -sum_j p(j) log p(j)`` (negated mean entropy)
``perplexity``     ``-exp(1/n sum_i H(p_i))``: distributional perplexity, *negated* (not
                   inverted), following the sign convention of Kang et al.; it ranks
                   answers exactly as ``entropy`` does
``self_certainty`` ``1/n sum_i KL(U || p_i) = -1/(nV) sum_i sum_j log(V p_i(j))``, the mean
                   KL divergence of each next-token distribution *from* the uniform
                   distribution U over the vocabulary (Kang et al., eq. for self-certainty)
=================  ====================================================================

Every metric is oriented so that **higher means more confident**, and takes a
:class:`~rag.types.Generation` or a sequence of its :class:`~rag.types.TokenStep`. This module
imports only :mod:`rag.types` (and numpy): the generation backends use it, never the reverse.

Exact versus approximated
-------------------------
Local backends (transformers, llama.cpp) see the full distribution and store its entropy, sum of
squares and KL(U || p) per step, so every metric is exact. ``avg_logprob`` is always exact.
Remote backends (OpenAI-compatible, LangChain) return only the top-k log-probs; then the other
three quantities are approximated per step by :func:`approx_stats`:

* the known tokens are the top-k plus the chosen token (when it is not among them);
* the remaining mass ``r = 1 - sum(known p)`` is assumed to be spread **uniformly** over the
  ``V - k`` other tokens (each gets ``r / (V - k)``);
* ``r`` is floored at :data:`TAIL_MASS_FLOOR` because servers round log-probs, so the top-k can
  appear to hold all the mass, which would make KL(U || p) infinite;
* ``V`` is the step's ``vocab_size``, else the ``vocab_size`` argument, else the assumed
  :data:`DEFAULT_VOCAB_SIZE`.

For the same known tokens and tail mass, a uniform tail gives the largest entropy and the
smallest sum of squares and KL(U || p) of any tail, so the approximation errs towards *less*
confidence; KL(U || p) is dominated by ``-log r`` for large ``V``. Approximated scores are comparable with each other (same backend, same ``k``) but not with
exact ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from rag.types import Generation, TokenStep

DEFAULT_VOCAB_SIZE = 128_000
"""Vocabulary size assumed when only top-k log-probs are known and no ``vocab_size`` is given
(the order of Llama-3's 128,256; GPT-4o's o200k and Qwen's 151k are larger, SmolLM2's 49,152
smaller)."""

TAIL_MASS_FLOOR = 1e-6
"""Smallest probability mass assumed outside the known top-k tokens (see the module docstring)."""


class DistributionStats(NamedTuple):
    """Summaries of one next-token distribution (or arrays of them, one per step)."""

    entropy: float
    sum_sq: float
    kl_uniform: float


def distribution_stats(logprobs: np.ndarray) -> DistributionStats:
    """Exact entropy, sum of squared probabilities and KL(U || p) of full distributions.

    ``logprobs`` holds natural-log probabilities over the whole vocabulary along its last axis
    (shape ``(V,)`` or ``(n, V)``; the result has the leading shape). Entries of ``-inf``
    (tokens a model masks out) are treated as absent: they add nothing to entropy and sum of
    squares, and ``V`` for KL(U || p) counts the finite entries only, as a masked token can never
    be emitted. KL(U || p) = sum_j (1/V) log((1/V) / p(j)) = -log V - (1/V) sum_j log p(j).
    """
    lp = np.asarray(logprobs, dtype=np.float64)
    finite = np.isfinite(lp)
    lp0 = np.where(finite, lp, 0.0)
    p = np.where(finite, np.exp(lp0), 0.0)
    entropy = -(p * lp0).sum(axis=-1)
    sum_sq = (p * p).sum(axis=-1)
    n_finite = finite.sum(axis=-1)
    kl = -np.log(n_finite) - lp0.sum(axis=-1) / n_finite
    if lp.ndim == 1:
        return DistributionStats(float(entropy), float(sum_sq), float(kl))
    return DistributionStats(entropy, sum_sq, kl)


def approx_stats(
    known_logprobs: Sequence[float] | np.ndarray, vocab_size: int
) -> DistributionStats:
    """Entropy, sum of squares and KL(U || p) estimated from the ``k`` known log-probs.

    The other ``V - k`` tokens share the remaining mass ``r = max(1 - sum p_known,
    TAIL_MASS_FLOOR)`` uniformly, each with ``q = r / (V - k)``:

    * ``H  = -sum_known p log p - r log q``
    * ``S  =  sum_known p^2 + r q``
    * ``KL = -log V - (sum_known log p + (V - k) log q) / V``

    When ``k >= V`` the known log-probs are the whole distribution and the values are exact.
    """
    lp = np.asarray(known_logprobs, dtype=np.float64)
    k = lp.shape[0]
    if k == 0:
        raise ValueError("approx_stats needs at least one known log-probability")
    if vocab_size < k:
        raise ValueError(f"vocab_size={vocab_size} is smaller than the {k} known tokens")
    if k == vocab_size:
        return distribution_stats(lp)
    p = np.exp(lp)
    rest = vocab_size - k
    r = max(1.0 - float(p.sum()), TAIL_MASS_FLOOR)
    log_q = math.log(r) - math.log(rest)
    entropy = float(-(p * lp).sum()) - r * log_q
    sum_sq = float((p * p).sum()) + r * r / rest
    kl = -math.log(vocab_size) - (float(lp.sum()) + rest * log_q) / vocab_size
    return DistributionStats(entropy, sum_sq, kl)


def _known_logprobs(step: TokenStep) -> np.ndarray:
    """The step's top-k log-probs, plus the chosen token's when it is not among them."""
    top = np.asarray(step.top_logprobs, dtype=np.float64)
    if step.top_ids is not None and step.token_id is not None:
        chosen_known = bool(np.any(np.asarray(step.top_ids) == step.token_id))
    else:
        chosen_known = step.token in step.top_tokens
    if chosen_known and top.size:
        return top
    return np.append(top, step.logprob)


def step_stats(step: TokenStep, vocab_size: int | None = None) -> DistributionStats:
    """Exact summaries when the step carries them, else :func:`approx_stats` from its top-k.

    ``V`` for the approximation: the step's ``vocab_size``, else ``vocab_size``, else
    :data:`DEFAULT_VOCAB_SIZE`.
    """
    if step.exact:
        return DistributionStats(step.entropy, step.sum_sq, step.kl_uniform)  # type: ignore[arg-type]
    v = step.vocab_size or vocab_size or DEFAULT_VOCAB_SIZE
    return approx_stats(_known_logprobs(step), v)


def _steps(generation: Generation | Sequence[TokenStep]) -> Sequence[TokenStep]:
    steps = getattr(generation, "steps", generation)  # a Generation, or its steps
    if not steps:
        raise ValueError(
            "cannot score a generation without token steps (empty answer, or a backend that "
            "returned no log-probs)"
        )
    return steps


def _mean_stat(
    generation: Generation | Sequence[TokenStep], field: str, vocab_size: int | None
) -> float:
    return float(np.mean([getattr(step_stats(s, vocab_size), field) for s in _steps(generation)]))


def avg_logprob(
    generation: Generation | Sequence[TokenStep], *, vocab_size: int | None = None
) -> float:
    """Mean log-probability of the chosen tokens, ``1/n sum_i log p_i(y_i)`` (always exact).

    ``vocab_size`` is accepted for a uniform metric signature and not used.
    """
    return float(np.mean([s.logprob for s in _steps(generation)]))


def gini(generation: Generation | Sequence[TokenStep], *, vocab_size: int | None = None) -> float:
    """Mean over tokens of the sum of squared probabilities, ``1/n sum_i sum_j p_i(j)^2``.

    1 for one-hot distributions, ``1/V`` for uniform ones; equals 1 minus the mean Gini impurity.
    """
    return _mean_stat(generation, "sum_sq", vocab_size)


def entropy(
    generation: Generation | Sequence[TokenStep], *, vocab_size: int | None = None
) -> float:
    """Negated mean entropy (nats), ``-1/n sum_i H(p_i)``: 0 for one-hot, ``-log V`` for uniform."""
    return -_mean_stat(generation, "entropy", vocab_size)


def perplexity(
    generation: Generation | Sequence[TokenStep], *, vocab_size: int | None = None
) -> float:
    """Negated distributional perplexity, ``-exp(1/n sum_i H(p_i))``, in ``[-V, -1]``.

    Negated rather than inverted, as in Kang et al. (arXiv 2502.18581); a monotone transform of
    :func:`entropy`, so both pick the same answer.
    """
    return -math.exp(_mean_stat(generation, "entropy", vocab_size))


def self_certainty(
    generation: Generation | Sequence[TokenStep], *, vocab_size: int | None = None
) -> float:
    """Self-certainty (Kang, Zhao & Song, arXiv 2502.18581): mean KL(U || p_i) over tokens.

    ``-1/(nV) sum_i sum_j log(V p_i(j))``; 0 for a uniform distribution, growing without bound as
    the distribution concentrates. The divergence is taken *from* the uniform distribution, so
    every low-probability token counts (unlike entropy, which tokens with tiny mass barely move).
    """
    return _mean_stat(generation, "kl_uniform", vocab_size)


Metric = Callable[..., float]

METRICS: dict[str, Metric] = {
    "avg_logprob": avg_logprob,
    "gini": gini,
    "entropy": entropy,
    "perplexity": perplexity,
    "self_certainty": self_certainty,
}


def get_metric(name: str) -> Metric:
    """The metric called ``name``; a ValueError lists the valid names otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise ValueError(
            f"unknown confidence metric {name!r}; choose one of: {', '.join(METRICS)}"
        ) from None


def score_all(
    generation: Generation | Sequence[TokenStep], *, vocab_size: int | None = None
) -> dict[str, float]:
    """Every metric in :data:`METRICS` for one generation (higher = more confident)."""
    return {name: fn(generation, vocab_size=vocab_size) for name, fn in METRICS.items()}
