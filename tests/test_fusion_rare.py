"""A strong match that only BM25 finds survives the default fusion (issue 15, item 7).

BM25 lists only chunks holding a query term, so a rare word's list is short: before, it was
normalised against its own one or two scores (a list of one counted for nothing) and the match
sank below every dense hit. Now the chunks such a list leaves out score 0 in its background,
and the list weighs more the fewer chunks it holds.
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


def test_a_dense_encoder_does_not_reorder_a_rare_terms_few_matches() -> None:
    """Only three chunks hold the query's word; BM25 ranks ``a`` first by a little and the
    dense encoder, which cannot read the rare word, prefers ``c`` by a lot. The rarity weight
    keeps BM25's order at the top; without it the dense encoder's order wins."""
    from dataclasses import replace

    from rag.retrieval.combine import DEFAULT_FUSION

    dense = {"c": 0.62, "b": 0.55, **dense_run(), "a": 0.31}
    runs = {"minilm": dense, "bm25": {"a": 2.4, "b": 2.3, "c": 2.2}}
    top = list(fuse(runs, "default", k=3, depth=100, lexical={"bm25"}))
    assert top[0] == "a"
    unweighted = replace(DEFAULT_FUSION, rare_weight=0.0)
    assert list(fuse(runs, unweighted, k=3, depth=100, lexical={"bm25"}))[0] == "c"


def test_rare_weight_is_recorded_and_checked() -> None:
    import pytest

    from rag.retrieval.combine import DEFAULT_FUSION, FusionConfig

    assert FusionConfig.from_json(DEFAULT_FUSION.to_json()) == DEFAULT_FUSION
    with pytest.raises(ValueError, match="rare_weight"):
        FusionConfig("combsum-zscore", rare_weight=-1.0)
