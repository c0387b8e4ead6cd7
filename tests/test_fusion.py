"""Fusion and normalisation maths against hand-computed values on three-document fixtures.

Fixture (two encoders over chunks a, b, c):

    e1: a 0.9 (rank 1), b 0.5 (rank 2), c 0.1 (rank 3)
    e2: b 0.8 (rank 1), c 0.6 (rank 2)            (a missing)

Hand-computed normalised scores:

    minmax  e1: a 1, b 0.5, c 0                     e2: b 1, c 0
    zscore  e1: mean 0.5, std sqrt(0.32/3) = 0.3265986; a +1.2247449 (= sqrt(1.5)), b 0,
                c -1.2247449                        e2: mean 0.7, std 0.1; b +1, c -1
    dbsf    (= 0.5 + z/6)  e1: a 0.7041241, b 0.5, c 0.2958759   e2: b 0.6666667, c 0.3333333
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest

from rag.retrieval.fusion import (
    FUSIONS,
    combmnz,
    combsum,
    dist_based_score,
    get_fusion,
    mixture_embedding,
    relative_score,
    rrf,
)
from rag.retrieval.normalize import (
    NORMALIZERS,
    ScoreStats,
    get_normalizer,
    norm_dbsf,
    norm_minmax,
    norm_none,
    norm_zscore,
    stats_from_matrix,
    stats_from_score_lists,
    stats_from_scores,
    stats_per_model,
)
from rag.types import Chunk, Hit, SourceScore

SQRT15 = 1.2247448713915890  # sqrt(1.5): |z| of a and c in e1


def chunk(cid: str) -> Chunk:
    return Chunk(id=cid, doc_id="doc", text=f"text {cid}", start=0, end=6)


def run(name: str, *pairs: tuple[str, float]) -> list[Hit]:
    """Hits ranked in the order given."""
    return [
        Hit(chunk=chunk(cid), score=score, rank=rank, source=name)
        for rank, (cid, score) in enumerate(pairs, start=1)
    ]


@pytest.fixture
def runs() -> dict[str, list[Hit]]:
    return {
        "e1": run("e1", ("a", 0.9), ("b", 0.5), ("c", 0.1)),
        "e2": run("e2", ("b", 0.8), ("c", 0.6)),
    }


def as_pairs(hits: list[Hit]) -> list[tuple[str, float]]:
    return [(h.chunk.id, h.score) for h in hits]


def assert_fused(hits: list[Hit], expected: list[tuple[str, float]]) -> None:
    assert [h.chunk.id for h in hits] == [cid for cid, _ in expected]
    assert [h.score for h in hits] == pytest.approx([s for _, s in expected], abs=1e-6)
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))


# --- normalisers ---------------------------------------------------------------------------


def test_normalisers_hand_values():
    s = np.array([0.9, 0.5, 0.1])
    assert norm_none(s).tolist() == pytest.approx([0.9, 0.5, 0.1])
    assert norm_minmax(s).tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert norm_zscore(s).tolist() == pytest.approx([SQRT15, 0.0, -SQRT15])
    assert norm_dbsf(s).tolist() == pytest.approx([0.7041241, 0.5, 0.2958759])
    assert norm_zscore(np.array([0.8, 0.6])).tolist() == pytest.approx([1.0, -1.0])


def test_normalisers_with_outside_stats():
    stats = ScoreStats(mean=0.2, std=0.1, min=0.0, max=0.5)
    s = np.array([0.4, 0.1, 0.8])
    assert norm_zscore(s, stats).tolist() == pytest.approx([2.0, -1.0, 6.0])
    # minmax stays linear (not clipped) beyond the reference range
    assert norm_minmax(s, stats).tolist() == pytest.approx([0.8, 0.2, 1.6])
    # dbsf: [0.2 - 0.3, 0.2 + 0.3] -> [0, 1], clipped
    assert norm_dbsf(np.array([0.8, -0.5, 0.35]), stats).tolist() == pytest.approx([1.0, 0.0, 0.75])


def test_normalisers_zero_variance_give_no_nan():
    const = np.array([0.3, 0.3, 0.3])  # np.std of this is ~5e-17, not 0
    assert norm_zscore(const).tolist() == [0.0, 0.0, 0.0]
    assert norm_minmax(const).tolist() == [1.0, 1.0, 1.0]
    assert norm_dbsf(const).tolist() == [1.0, 1.0, 1.0]
    assert norm_minmax(np.array([-0.2, -0.2])).tolist() == [0.0, 0.0]
    assert norm_zscore(np.array([0.7])).tolist() == [0.0]
    flat = ScoreStats(mean=0.5, std=0.0, min=0.5, max=0.5)
    for fn in (norm_zscore, norm_minmax, norm_dbsf):
        assert np.all(np.isfinite(fn(np.array([0.1, 0.9]), flat)))
    for fn in NORMALIZERS.values():
        assert fn(np.array([])).shape == (0,)


def test_stats_helpers():
    st = stats_from_scores([1.0, 2.0, 3.0, 4.0, 5.0])
    assert st == ScoreStats(mean=3.0, std=pytest.approx(math.sqrt(2.0)), min=1.0, max=5.0)
    pooled = stats_from_score_lists([np.array([1.0, 2.0]), [], np.array([3.0, 4.0, 5.0])])
    assert pooled.mean == pytest.approx(3.0)
    assert pooled.std == pytest.approx(math.sqrt(2.0))
    assert (pooled.min, pooled.max) == (1.0, 5.0)
    m = stats_from_matrix(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32))
    assert (m.mean, m.std, m.min, m.max) == pytest.approx((2.5, math.sqrt(1.25), 1.0, 4.0))
    per = stats_per_model({"e1": np.array([[0.0, 2.0]]), "e2": [np.array([1.0]), np.array([3.0])]})
    assert per["e1"] == ScoreStats(mean=1.0, std=1.0, min=0.0, max=2.0)
    assert per["e2"] == ScoreStats(mean=2.0, std=1.0, min=1.0, max=3.0)
    with pytest.raises(ValueError):
        stats_from_scores([])
    with pytest.raises(ValueError):
        stats_from_score_lists([[], []])
    with pytest.raises(ValueError):
        stats_from_scores([0.1, float("nan")])
    with pytest.raises(ValueError):
        stats_from_matrix(np.zeros(3))


def test_get_normalizer_names_choices():
    assert get_normalizer("dbsf") is norm_dbsf
    with pytest.raises(ValueError, match="minmax"):
        get_normalizer("min-max")


# --- fusion: hand-computed values ------------------------------------------------------------


def test_rrf_hand_values(runs):
    # a: 1/61; b: 1/62 + 1/61; c: 1/63 + 1/62
    assert_fused(
        rrf(runs),
        [("b", 0.0325224749), ("c", 0.0320020481), ("a", 0.0163934426)],
    )
    assert rrf(runs)[0].score == 1 / 62 + 1 / 61
    # k_rrf=0: a 1, b 1/2 + 1, c 1/3 + 1/2
    assert_fused(rrf(runs, k_rrf=0), [("b", 1.5), ("a", 1.0), ("c", 0.8333333)])


def test_combsum_hand_values(runs):
    assert_fused(combsum(runs, norm="minmax"), [("b", 1.5), ("a", 1.0), ("c", 0.0)])
    assert_fused(combsum(runs, norm="zscore"), [("a", SQRT15), ("b", 1.0), ("c", -2.2247449)])
    assert_fused(combsum(runs, norm="dbsf"), [("b", 1.1666667), ("a", 0.7041241), ("c", 0.6292092)])
    # raw scores: a 0.9, b 0.5 + 0.8, c 0.1 + 0.6
    assert_fused(combsum(runs, norm="none"), [("b", 1.3), ("a", 0.9), ("c", 0.7)])


def test_missing_min_credits_the_lists_lowest_score(runs):
    # a is absent from e2, whose lowest z-score is -1: a = sqrt(1.5) - 1 = 0.2247449
    assert_fused(
        combsum(runs, norm="zscore", missing="min"),
        [("b", 1.0), ("a", 0.2247449), ("c", -2.2247449)],
    )
    # with minmax the lowest normalised score is 0, so "min" equals "zero"
    assert as_pairs(combsum(runs, missing="min")) == as_pairs(combsum(runs))
    with pytest.raises(ValueError, match="missing"):
        combsum(runs, missing="mean")


def test_combmnz_hand_values(runs):
    # CombSUM times the number of lists: a x1, b x2, c x2
    assert_fused(combmnz(runs, norm="minmax"), [("b", 3.0), ("a", 1.0), ("c", 0.0)])
    assert_fused(combmnz(runs, norm="zscore"), [("b", 2.0), ("a", SQRT15), ("c", -4.4494897)])
    assert_fused(combmnz(runs, norm="dbsf"), [("b", 2.3333333), ("c", 1.2584184), ("a", 0.7041241)])


def test_mixture_embedding_hand_values(runs):
    # max of z-scores: a sqrt(1.5), b max(0, 1), c max(-sqrt(1.5), -1)
    assert_fused(mixture_embedding(runs), [("a", SQRT15), ("b", 1.0), ("c", -1.0)])
    assert_fused(
        mixture_embedding(runs, aggregate="sum"), [("a", SQRT15), ("b", 1.0), ("c", -2.2247449)]
    )
    # outside stats: e1 scores over the corpus have mean 0.3, std 0.2; e2 mean 0.7, std 0.05
    stats = {
        "e1": ScoreStats(mean=0.3, std=0.2, min=-0.1, max=0.9),
        "e2": ScoreStats(mean=0.7, std=0.05, min=0.5, max=0.8),
    }
    # z: e1 a 3, b 1, c -1; e2 b 2, c -2  -> a 3, b 2, c -1
    assert_fused(mixture_embedding(runs, stats=stats), [("a", 3.0), ("b", 2.0), ("c", -1.0)])
    with pytest.raises(ValueError, match="aggregate"):
        mixture_embedding(runs, aggregate="mean")


def test_relative_and_dist_based_hand_values(runs):
    # equal weights 1/2 each: half of CombSUM-minmax / CombSUM-dbsf
    assert_fused(relative_score(runs), [("b", 0.75), ("a", 0.5), ("c", 0.0)])
    assert_fused(dist_based_score(runs), [("b", 0.5833333), ("a", 0.3520621), ("c", 0.3146046)])


# --- fusion: behaviour -----------------------------------------------------------------------


def test_components_source_and_k(runs):
    fused = rrf(runs)
    by_id = {h.chunk.id: h for h in fused}
    assert by_id["b"].components == {"e1": SourceScore(0.5, 2), "e2": SourceScore(0.8, 1)}
    assert list(by_id["c"].components) == ["e1", "e2"]
    assert by_id["a"].components == {"e1": SourceScore(0.9, 1)}
    assert by_id["a"].chunk == chunk("a")
    assert {h.source for h in fused} == {"fusion:rrf"}
    assert [h.chunk.id for h in rrf(runs, k=2)] == ["b", "c"]
    assert rrf(runs, k=0) == []
    with pytest.raises(ValueError, match="k must"):
        rrf(runs, k=-1)


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_every_registered_fusion_keeps_components_and_names_itself(name, runs):
    fused = get_fusion(name)(runs, k=3)
    assert len(fused) == 3
    assert {h.source for h in fused} == {f"fusion:{name}"}
    assert [h.rank for h in fused] == [1, 2, 3]
    assert all(a.score >= b.score for a, b in pairwise(fused))
    by_id = {h.chunk.id: h.components for h in fused}
    assert by_id == {
        "a": {"e1": SourceScore(0.9, 1)},
        "b": {"e1": SourceScore(0.5, 2), "e2": SourceScore(0.8, 1)},
        "c": {"e1": SourceScore(0.1, 3), "e2": SourceScore(0.6, 2)},
    }


def test_registry_passes_options_and_names_choices(runs):
    assert get_fusion("rrf")(runs, k_rrf=0)[0].score == pytest.approx(1.5)
    stats = {"e2": ScoreStats(mean=0.7, std=0.05, min=0.5, max=0.8)}
    # e1 from its candidates (a sqrt(1.5), b 0, c -sqrt(1.5)), e2 given (b 2, c -2)
    assert_fused(
        get_fusion("combsum-zscore")(runs, stats=stats),
        [("b", 2.0), ("a", SQRT15), ("c", -3.2247449)],
    )
    with pytest.raises(ValueError, match="combsum-minmax"):
        get_fusion("combsum")


def test_weights_shift_the_order(runs):
    # e2 switched off: only e1's order is left
    assert [h.chunk.id for h in combsum(runs, weights={"e2": 0.0})] == ["a", "b", "c"]
    assert [h.chunk.id for h in rrf(runs, weights={"e2": 0.0})] == ["a", "b", "c"]
    # shares 3/4 and 1/4: a 0.75, b 0.75 * 0.5 + 0.25 = 0.625, c 0
    assert_fused(
        relative_score(runs, weights={"e1": 3.0, "e2": 1.0}),
        [("a", 0.75), ("b", 0.625), ("c", 0.0)],
    )
    # e2 weighted 3 in RRF: b 1/62 + 3/61, c 1/63 + 3/62, a 1/61
    assert_fused(
        rrf(runs, weights={"e2": 3.0}),
        [("b", 1 / 62 + 3 / 61), ("c", 1 / 63 + 3 / 62), ("a", 1 / 61)],
    )


def test_bad_weights_are_rejected(runs):
    with pytest.raises(ValueError, match="e3"):
        rrf(runs, weights={"e3": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        combsum(runs, weights={"e1": -1.0})
    with pytest.raises(ValueError, match="zero"):
        relative_score(runs, weights={"e1": 0.0, "e2": 0.0})


def test_ties_break_by_chunk_id_whatever_the_run_order():
    # p, q, r each hold ranks {1, 2, 7}, with the same scores there, in different runs: equal
    # terms whose float sum depends on the order of addition (1/61 + 1/62 + 1/67 does)
    def rotation(name: str, first: str, second: str, last: str) -> list[Hit]:
        fillers = [(f"{name}-f{i}", 0.7 - 0.1 * i) for i in range(4)]
        return run(name, (first, 0.9), (second, 0.8), *fillers, (last, 0.3))

    r1, r2, r3 = (
        rotation("r1", "q", "p", "r"),
        rotation("r2", "r", "q", "p"),
        rotation("r3", "p", "r", "q"),
    )
    for ordering in ({"r1": r1, "r2": r2, "r3": r3}, {"r3": r3, "r1": r1, "r2": r2}):
        for name, fn in FUSIONS.items():
            fused = fn(ordering, k=3)
            assert [h.chunk.id for h in fused] == ["p", "q", "r"], name
            assert len({h.score for h in fused}) == 1, name


def test_empty_runs_give_empty_list():
    for name, fn in FUSIONS.items():
        assert fn({}) == [], name
        assert fn({"e1": [], "e2": []}) == [], name


def test_single_run_minmax_preserves_order():
    rng = np.random.default_rng(7)
    scores = np.sort(rng.normal(0.4, 0.2, size=50))[::-1]
    hits = run("e1", *((f"c{i:02d}", float(s)) for i, s in enumerate(scores)))
    for name in ("combsum-minmax", "combmnz-minmax", "relative_score", "mixture"):
        fused = get_fusion(name)({"e1": hits})
        assert [h.chunk.id for h in fused] == [h.chunk.id for h in hits], name


def test_constant_list_fuses_without_nan():
    flat = {"e1": run("e1", ("b", 0.7), ("a", 0.7), ("c", 0.7))}
    for name, fn in FUSIONS.items():
        fused = fn(flat)
        assert all(math.isfinite(h.score) for h in fused), name
        # equal scores: score-based fusions tie and break by id; RRF still follows the ranks
        expected = ["b", "a", "c"] if name == "rrf" else ["a", "b", "c"]
        assert [h.chunk.id for h in fused] == expected, name
    assert [h.score for h in combsum(flat)] == [1.0, 1.0, 1.0]
    assert [h.score for h in mixture_embedding(flat)] == [0.0, 0.0, 0.0]


def test_duplicate_chunk_in_a_run_uses_its_first_entry():
    fused = rrf({"e1": [*run("e1", ("a", 0.9), ("b", 0.5)), Hit(chunk("a"), 0.1, 3, "e1")]})
    assert [(h.chunk.id, h.components["e1"]) for h in fused] == [
        ("a", SourceScore(0.9, 1)),
        ("b", SourceScore(0.5, 2)),
    ]


def test_invalid_hits_are_rejected(runs):
    with pytest.raises(ValueError, match="1-based"):
        rrf({"e1": [Hit(chunk("a"), 0.9, 0, "e1")]})
    with pytest.raises(ValueError, match="non-finite"):
        combsum({"e1": [Hit(chunk("a"), float("nan"), 1, "e1")]})
