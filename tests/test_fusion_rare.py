"""A strong match that only BM25 finds survives the default fusion (issue 15, item 7).

BM25 lists only chunks holding a query term, so a rare word's list is short: before, it was
normalised against its own one or two scores (a list of one counted for nothing) and the match
sank below every dense hit. Now the chunks such a list leaves out score 0 in its background.
"""

from __future__ import annotations

from rag.retrieval.multi import exhausted_stats, fuse


def dense_run(n: int = 100) -> dict[str, float]:
    return {f"d{i}": 0.6 - i * 0.003 for i in range(n)}


def test_a_lone_bm25_match_tops_the_fused_list() -> None:
    runs = {"minilm": dense_run(), "bm25": {"rare": 7.5}}
    fused = fuse(runs, "default", k=10, depth=100, lexical={"bm25"})
    assert next(iter(fused)) == "rare"
    # without knowing the list is exhausted, the lone match is buried (the old behaviour)
    assert "rare" not in list(fuse(runs, "default", k=10))[:5]


def test_two_rare_matches_both_lead() -> None:
    runs = {"minilm": {**dense_run(), "b": 0.2}, "bm25": {"a": 6.1, "b": 5.9, "x": 0.8}}
    top = list(fuse(runs, "default", k=3, depth=100, lexical={"bm25"}))
    assert set(top[:2]) == {"a", "b"}


def test_a_full_list_is_fused_as_before() -> None:
    bm25 = {f"d{i}": 10.0 - i * 0.05 for i in range(100)}
    runs = {"minilm": dense_run(), "bm25": bm25}
    assert fuse(runs, "default", k=20, depth=100, lexical={"bm25"}) == fuse(runs, "default", k=20)


def test_dense_lists_are_not_padded() -> None:
    runs = {"minilm": dense_run(30), "bm25": {f"d{i}": 3.0 - i * 0.1 for i in range(30)}}
    plain = fuse(runs, "default", k=10)
    assert fuse(runs, "default", k=10, depth=100, lexical=()) == plain


def test_exhausted_stats_pad_with_zeros() -> None:
    stats = exhausted_stats({"a": 4.0}, depth=100, skip=5)
    assert stats is not None
    assert stats.max == 4.0 and stats.min == 0.0 and abs(stats.mean - 0.04) < 1e-9
    assert exhausted_stats({"a": 0.0}, depth=10, skip=5) is None
