"""Choosing among candidate answers by confidence, and abstaining below a threshold: pure
functions over :class:`~rag.types.Candidate` answers and the metrics of :mod:`rag.confidence`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rag.confidence import score_all
from rag.types import Candidate, Generation


def score_generation(generation: Generation) -> dict[str, float]:
    """Every confidence metric of ``generation``; empty when it has no token steps."""
    return score_all(generation) if generation.steps else {}


def candidate_score(candidate: Candidate, metric: str) -> float:
    """The candidate's score under ``metric``; ``-inf`` for an empty answer (nothing to keep).

    A non-empty answer without token distributions cannot be scored: a ValueError says so
    (the backend returned no log-probs).
    """
    if metric in candidate.confidence:
        return candidate.confidence[metric]
    if not candidate.text.strip():
        return -math.inf
    raise ValueError(
        f"candidate {candidate.name!r} has no token log-probabilities to score with {metric!r}; "
        "use a backend that returns them (transformers, llama.cpp, or a server with logprobs)"
    )


def select(scores: Sequence[float]) -> int:
    """Index of the highest score; ties go to the earliest (retriever order decides)."""
    if not scores:
        raise ValueError("no candidates to choose from")
    best = 0
    for i, s in enumerate(scores):
        if s > scores[best]:
            best = i
    return best


@dataclass(frozen=True)
class Choice:
    """The chosen candidate's index, its score (None: it could not be scored, or scored
    ``-inf``), and whether that score is below the abstention threshold."""

    index: int
    confidence: float | None
    abstained: bool


def choose(candidates: Sequence[Candidate], metric: str, threshold: float | None) -> Choice:
    """The most confident candidate under ``metric``; abstain when it scores below
    ``threshold`` (None: never abstain).

    A lone candidate with no threshold needs no choice, so it is kept even when it cannot be
    scored (an answer without log-probs is still an answer).
    """
    if len(candidates) == 1 and threshold is None:
        index, best = 0, candidates[0].confidence.get(metric, -math.inf)
    else:
        scores = [candidate_score(c, metric) for c in candidates]
        index = select(scores)
        best = scores[index]
    confidence = best if math.isfinite(best) else None
    abstained = threshold is not None and (confidence is None or best < threshold)
    return Choice(index, confidence, abstained)
