"""Fusion over plain runs (``{name: {id: score}}``, the form ranx uses): hand-computed values on
the three-document fixture of ``test_fusion.py``, and the same results as the Hit form.

    e1: a 0.9 (rank 1), b 0.5 (rank 2), c 0.1 (rank 3)
    e2: b 0.8 (rank 1), c 0.6 (rank 2)            (a missing)
"""

from __future__ import annotations

import math

import pytest

from rag.retrieval.calibration import calibrate_runs
from rag.retrieval.fusion import FUSIONS, combsum, get_fusion, is_plain, mixture_embedding, rrf
from rag.retrieval.multi import DEFAULT_FUSION, FusionConfig, background_stats, fuse
from rag.retrieval.normalize import ScoreStats
from rag.types import Chunk, Hit

SQRT15 = math.sqrt(1.5)  # |z| of a and c in e1
PLAIN = {"e1": {"a": 0.9, "b": 0.5, "c": 0.1}, "e2": {"b": 0.8, "c": 0.6}}


def as_hits(runs: dict[str, dict[str, float]]) -> dict[str, list[Hit]]:
    def chunk(cid: str) -> Chunk:
        return Chunk(id=cid, doc_id=f"doc-{cid}", text=cid, start=0, end=len(cid))

    return {
        name: [Hit(chunk(i), s, rank, name) for rank, (i, s) in enumerate(run.items(), start=1)]
        for name, run in runs.items()
    }


def as_plain(hits: list[Hit]) -> dict[str, float]:
    return {h.chunk.id: h.score for h in hits}


def test_rrf_by_hand_returns_a_plain_run_best_first() -> None:
    fused = rrf(PLAIN)
    assert isinstance(fused, dict)
    assert list(fused) == ["b", "c", "a"]
    assert fused == pytest.approx({"b": 1 / 61 + 1 / 62, "c": 1 / 62 + 1 / 63, "a": 1 / 61})
    assert list(rrf(PLAIN, k=2)) == ["b", "c"]


def test_combsum_minmax_and_zscore_by_hand() -> None:
    minmax = combsum(PLAIN, norm="minmax")
    assert list(minmax) == ["b", "a", "c"]
    assert minmax == pytest.approx({"b": 1.5, "a": 1.0, "c": 0.0})
    # z-scores, a missing from e2 credited with e2's lowest z (-1)
    zscore = combsum(PLAIN, norm="zscore", missing="min")
    assert list(zscore) == ["b", "a", "c"]
    assert zscore == pytest.approx({"b": 1.0, "a": SQRT15 - 1.0, "c": -SQRT15 - 1.0})


def test_mixture_max_by_hand() -> None:
    fused = mixture_embedding(PLAIN)
    assert list(fused) == ["a", "b", "c"]
    assert fused == pytest.approx({"a": SQRT15, "b": 1.0, "c": -1.0})


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_every_fusion_gives_the_hit_forms_scores_and_order(name: str) -> None:
    plain = get_fusion(name)(PLAIN)
    hits = get_fusion(name)(as_hits(PLAIN))
    assert list(plain.items()) == list(as_plain(hits).items())  # bit for bit, same order


def test_ties_break_by_ascending_id_as_for_hits() -> None:
    runs = {"x": {"b": 1.0, "a": 0.5}, "y": {"a": 1.0, "b": 0.5}}
    assert list(rrf(runs)) == ["a", "b"] == [h.chunk.id for h in rrf(as_hits(runs))]


def test_multi_fuse_default_calibration_and_corpus_on_plain_runs() -> None:
    runs = {"e1": {f"d{i}": 1.0 - i / 10 for i in range(8)}, "e2": {"d3": 5.0, "d9": 1.0}}
    for config in (DEFAULT_FUSION, FusionConfig("combsum-zscore", stats="background", skip=2)):
        plain = fuse(runs, config, k=5)
        assert list(plain.items()) == list(as_plain(fuse(as_hits(runs), config, k=5)).items())
    stats = {"e1": ScoreStats(0.5, 0.2, 0.0, 1.0), "e2": ScoreStats(2.0, 1.0, 0.0, 5.0)}
    calibrated = fuse(runs, "combsum-zscore@calibration", calibration=stats)
    assert calibrated["d3"] == pytest.approx((0.7 - 0.5) / 0.2 + (5.0 - 2.0) / 1.0)
    corpus = fuse(runs, "mixture@corpus", corpus_stats=stats.__getitem__)
    assert list(corpus)[0] == "d3" and corpus["d3"] == pytest.approx(3.0)


def test_background_stats_and_calibration_read_plain_runs() -> None:
    run = {"a": 10.0, "b": 2.0, "c": 1.0, "d": 0.0}
    stats = background_stats(run, skip=1)
    assert stats is not None and (stats.mean, stats.min, stats.max) == (1.0, 0.0, 2.0)
    assert background_stats(run, skip=3) is None
    calibration = calibrate_runs({"m": [run, {"e": 4.0}]}, depth=4)
    assert calibration.num_queries == 2 and calibration.stats["m"].mean == pytest.approx(17 / 5)
    with pytest.raises(ValueError, match="one ranking per query"):
        calibrate_runs({"m": [run], "n": [run, run]}, depth=4)


def test_forms_cannot_be_mixed_and_empty_runs_stay_plain() -> None:
    with pytest.raises(ValueError, match="not both"):
        rrf({"e1": PLAIN["e1"], "e2": as_hits(PLAIN)["e2"]})
    assert is_plain(PLAIN) and not is_plain(as_hits(PLAIN)) and not is_plain({})
    assert rrf({"e1": {}, "e2": {}}) == {}
    assert combsum({}) == []
