"""Answer-quality metrics for short-answer QA: pure functions over strings and scores.

* :func:`normalize_answer`: lower case, punctuation and the articles a/an/the removed, white
  space collapsed -- the normalisation of the SQuAD v1.1 and HotpotQA evaluation scripts
  (Rajpurkar et al., 2016, arXiv:1606.05250; Yang et al., 2018, arXiv:1809.09600).
* :func:`contains_answer`: the normalised gold answer occurs in the normalised prediction as a
  whole run of tokens ("answer containment"; generative models answer in sentences, so exact
  match would under-count correct answers). Token runs, not substrings: gold "no" is not found
  in "not".
* :func:`token_f1`: the HotpotQA script's token F1 (a yes/no/noanswer prediction or gold scores
  0 unless both agree).
* :func:`auroc`: the probability that a random correct answer has a higher confidence than a
  random wrong one (ties count one half): the Mann-Whitney U statistic over ``n_pos * n_neg``.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)
_CITATION = re.compile(r"\[\s*\d+(?:\s*[,;-]\s*\d+)*\s*\]")
_YES_NO = ("yes", "no", "noanswer")


def normalize_answer(text: str) -> str:
    """SQuAD/HotpotQA normalisation; citation markers like ``[1]`` are dropped first."""
    text = _CITATION.sub(" ", text).lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def contains_answer(prediction: str, gold: str) -> bool:
    """Whether the normalised ``gold`` tokens appear consecutively in the normalised prediction.

    An empty normalised gold answer is never contained (it would match everything).
    """
    want = normalize_answer(gold).split()
    have = normalize_answer(prediction).split()
    if not want:
        return False
    n = len(want)
    return any(have[i : i + n] == want for i in range(len(have) - n + 1))


def token_f1(prediction: str, gold: str) -> float:
    """Harmonic mean of token precision and recall after normalisation (HotpotQA script)."""
    pred = normalize_answer(prediction)
    ref = normalize_answer(gold)
    if (pred in _YES_NO or ref in _YES_NO) and pred != ref:
        return 0.0
    pred_tokens, ref_tokens = pred.split(), ref.split()
    common = Counter(pred_tokens) & Counter(ref_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(prediction: str, golds: Sequence[str]) -> tuple[bool, float]:
    """(containment, F1) of the best-matching gold answer when a question has several."""
    if not golds:
        raise ValueError("a question needs at least one gold answer")
    return (
        any(contains_answer(prediction, g) for g in golds),
        max(token_f1(prediction, g) for g in golds),
    )


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve of ``scores`` at separating ``True`` from ``False`` labels.

    Equals ``P(score_pos > score_neg) + P(score_pos == score_neg) / 2`` over all pairs, computed
    from mid-ranks (ties share their average rank). NaN when either class is empty, where the
    area is undefined. 0.5 is chance; 1.0 ranks every correct answer above every wrong one.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError("scores and labels must be 1-D and of the same length")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # mid-ranks over runs of tied scores
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))
