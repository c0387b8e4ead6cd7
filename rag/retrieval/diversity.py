"""De-duplication and diversity over ranked hits (pure functions over plain data).

The same passage often sits in several copies of one manual (its HTML, PDF and plain-text
exports): same words, different whitespace, punctuation, hyphenation and markup residue, and
chunk boundaries a little apart. :func:`collapse` keeps the best-ranked copy and lists the others
in ``Hit.duplicates``; :func:`mmr` re-ranks for diversity. Texts are compared as sets of
character shingles after case-folding and dropping everything but letters and digits, spaces
included: PDF text layers often lose the spaces between words ("configurationof sudo(8)as
follows"), which breaks word shingles but not these. Cheap for one query's candidates (about
0.1 ms per chunk to shingle, cached by text; microseconds per comparison).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache

import numpy as np

from rag.types import Chunk, Hit

SHINGLE = 9  # characters: longer than most words, so a shared shingle is rarely chance
# Pairs in the top 20 of ten queries over the Debian reference (HTML, PDF, text copies): 1,744
# below 0.4, 65 in 0.4-0.8 (chunks overlapping in part: their boundaries differ), 91 at 0.8 or
# more (copies; 43 of them at 1.0). benchmarks/dedup_documents.py prints these figures.
THRESHOLD = 0.8
_ALNUM = re.compile(r"[^\W_]+")
Shingles = frozenset[str]


def normalise(text: str) -> str:
    """Lower-cased letters and digits only (punctuation, markup and spacing dropped)."""
    return "".join(_ALNUM.findall(text.casefold()))


@lru_cache(maxsize=16384)
def shingles(text: str, n: int = SHINGLE) -> Shingles:
    """The set of ``n``-character windows of the normalised text (all of it when shorter)."""
    s = normalise(text)
    if len(s) <= n:
        return frozenset([s]) if s else frozenset()
    return frozenset(s[i : i + n] for i in range(len(s) - n + 1))


def resemblance(a: Shingles, b: Shingles) -> float:
    """How much of the smaller shingle set the other holds (the overlap coefficient).

    Jaccard (Broder 1997) would punish copies whose chunk boundaries differ; the overlap
    coefficient keeps them together while two different passages still share few shingles.
    The smaller set counts as at least half the larger: a heading or a one-line chunk that a
    long chunk merely contains is not a copy of it.
    """
    if not a or not b:
        return 1.0 if a == b else 0.0
    return len(a & b) / max(min(len(a), len(b)), max(len(a), len(b)) / 2)


def jaccard(a: Shingles, b: Shingles) -> float:
    """``|a & b| / |a | b|`` (1.0 for two empty sets)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def near_duplicates(a: str, b: str, threshold: float = THRESHOLD) -> bool:
    """Whether two texts are copies of one passage (:func:`resemblance` >= ``threshold``)."""
    return resemblance(shingles(a), shingles(b)) >= threshold


def collapse(hits: Sequence[Hit], k: int | None = None, threshold: float = THRESHOLD) -> list[Hit]:
    """The hits with near-duplicates folded into the best-ranked copy (its ``duplicates``,
    best first), re-ranked from 1 and cut to ``k`` distinct hits; copies of kept hits are
    still gathered after the cut, down to :func:`overfetch` candidates."""
    kept: list[Hit] = []
    sets: list[Shingles] = []
    groups: list[list[Chunk]] = []
    seen: set[str] = set()
    for n, hit in enumerate(hits):
        if k is not None and len(kept) >= k and n >= overfetch(k, True, None):
            break
        if hit.chunk.id in seen:
            continue
        seen.add(hit.chunk.id)
        found = shingles(hit.chunk.text)
        owner = next((i for i, s in enumerate(sets) if resemblance(found, s) >= threshold), None)
        if owner is not None:
            groups[owner] += [hit.chunk, *hit.duplicates]
        elif k is None or len(kept) < k:
            kept.append(hit)
            sets.append(found)
            groups.append(list(hit.duplicates))
    return [
        replace(h, rank=rank, duplicates=tuple(g))
        for rank, (h, g) in enumerate(zip(kept, groups, strict=True), start=1)
    ]


Similarity = Callable[[int, int], float]


def shingle_similarity(hits: Sequence[Hit]) -> Similarity:
    sets = [shingles(h.chunk.text) for h in hits]
    return lambda i, j: jaccard(sets[i], sets[j])


def vector_similarity(hits: Sequence[Hit], vectors: Mapping[str, np.ndarray]) -> Similarity:
    """Cosine similarity of the hits' (unit) vectors, keyed by chunk id."""
    matrix = np.stack([np.asarray(vectors[h.chunk.id], dtype=np.float32) for h in hits])
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = matrix / np.where(norms == 0, 1.0, norms)
    table = (matrix @ matrix.T).tolist()
    return lambda i, j: table[i][j]


def mmr(
    hits: Sequence[Hit],
    k: int,
    lam: float = 0.5,
    *,
    vectors: Mapping[str, np.ndarray] | None = None,
) -> list[Hit]:
    """Maximal Marginal Relevance (Carbonell & Goldstein, "The use of MMR, diversity-based
    reranking for reordering documents and producing summaries", SIGIR 1998): pick, one at a
    time, the hit maximising ``lam * relevance - (1 - lam) * max similarity to those picked``.

    Relevance is the hit's score min-max scaled over ``hits`` (fused scores have no fixed
    scale); similarity is the cosine of ``vectors`` (chunk id -> vector) when every hit has
    one, else the Jaccard resemblance of word shingles. ``lam=1`` keeps the order.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"the MMR lambda must lie in [0, 1], got {lam}")
    if not hits or k < 1:
        return []
    scores = np.asarray([h.score for h in hits], dtype=np.float64)
    spread = float(scores.max() - scores.min())
    relevance = (scores - scores.min()) / spread if spread > 0 else np.ones(len(hits))
    if vectors is not None and all(h.chunk.id in vectors for h in hits):
        similarity = vector_similarity(hits, vectors)
    else:
        similarity = shingle_similarity(hits)
    left = list(range(len(hits)))
    closest = [0.0] * len(hits)  # per hit: its highest similarity to a picked one
    picked: list[int] = []
    while left and len(picked) < k:
        best = max(left, key=lambda i: (lam * relevance[i] - (1 - lam) * closest[i], -i))
        picked.append(best)
        left.remove(best)
        for i in left:
            closest[i] = max(closest[i], similarity(i, best))
    return [replace(hits[i], rank=rank) for rank, i in enumerate(picked, start=1)]


def diversify(
    hits: Sequence[Hit],
    k: int,
    *,
    dedup: bool = True,
    mmr_lambda: float | None = None,
    threshold: float = THRESHOLD,
    vectors: Mapping[str, np.ndarray] | None = None,
) -> list[Hit]:
    """The top ``k`` of ranked ``hits``: copies collapsed (``dedup``), then re-ranked by MMR
    when ``mmr_lambda`` is given; plain truncation with neither."""
    out = list(hits)
    if dedup:
        out = collapse(out, None if mmr_lambda is not None else k, threshold)
    if mmr_lambda is not None:
        return mmr(out, k, mmr_lambda, vectors=vectors)
    return [h if h.rank == r else replace(h, rank=r) for r, h in enumerate(out[:k], start=1)]


def overfetch(k: int, dedup: bool, mmr_lambda: float | None) -> int:
    """How many candidates to ask for so that ``k`` distinct (or diverse) hits remain."""
    if not dedup and mmr_lambda is None:
        return k
    return max(4 * k, k + 20)
