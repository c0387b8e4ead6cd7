"""FusionRetriever: concurrent querying, the fusion configs, calibration, and an index's fusion."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest

from rag.base import Retriever
from rag.retrieval.calibration import Calibration, calibrate
from rag.retrieval.multi import (
    DEFAULT_FUSION,
    FusionConfig,
    FusionRetriever,
    background_stats,
    fuse,
    parse_fusion,
)
from rag.retrieval.normalize import ScoreStats
from rag.types import Chunk, Hit


def chunk(cid: str) -> Chunk:
    return Chunk(id=cid, doc_id=f"doc-{cid}", text=f"text of {cid}", start=0, end=9)


class ListRetriever(Retriever):
    """Returns fixed (chunk id, score) pairs, best first, whatever the query."""

    def __init__(self, name: str, pairs: Sequence[tuple[str, float]]) -> None:
        self.name = name
        self.pairs = list(pairs)
        self.calls: list[int] = []

    def retrieve(self, query: str, k: int = 10) -> list[Hit]:
        self.calls.append(k)
        return [
            Hit(chunk(cid), score, rank, self.name)
            for rank, (cid, score) in enumerate(self.pairs[:k], start=1)
        ]


# Two encoders on different scales: a cosine model and a BM25-like one.
DENSE = [("a", 0.9), ("b", 0.8), ("c", 0.5)]
LEXICAL = [("b", 12.0), ("d", 6.0), ("a", 3.0)]


def zscores(values: list[float]) -> dict[int, float]:
    arr = np.asarray(values)
    return dict(enumerate(((arr - arr.mean()) / arr.std()).tolist()))


def test_candidates_zscore_sum_by_hand() -> None:
    retriever = FusionRetriever(
        [ListRetriever("dense", DENSE), ListRetriever("bm25", LEXICAL)],
        FusionConfig("combsum-zscore", missing="min"),
    )
    hits = retriever.retrieve("q", k=4)
    zd, zl = zscores([0.9, 0.8, 0.5]), zscores([12.0, 6.0, 3.0])
    expected = {
        "a": zd[0] + zl[2],
        "b": zd[1] + zl[0],
        "c": zd[2] + min(zl.values()),  # missing from bm25: credited with its cut-off
        "d": min(zd.values()) + zl[1],
    }
    assert [h.chunk.id for h in hits] == sorted(expected, key=lambda c: -expected[c])
    for h in hits:
        assert h.score == pytest.approx(expected[h.chunk.id])
        assert h.source == "fusion:combsum-zscore"
    assert [h.rank for h in hits] == [1, 2, 3, 4]
    b = next(h for h in hits if h.chunk.id == "b")
    assert (b.components["dense"].score, b.components["dense"].rank) == (0.8, 2)
    assert (b.components["bm25"].score, b.components["bm25"].rank) == (12.0, 1)
    assert set(next(h for h in hits if h.chunk.id == "c").components) == {"dense"}


def test_background_statistics_leave_out_the_top_hits() -> None:
    hits = ListRetriever("x", [("a", 10.0), ("b", 2.0), ("c", 1.0), ("d", 0.0)]).retrieve("q")
    stats = background_stats(hits, skip=1)
    assert stats is not None
    assert (stats.mean, stats.std) == pytest.approx((1.0, np.std([2.0, 1.0, 0.0])))
    assert background_stats(hits, skip=3) is None  # one score left: no spread to measure
    runs = {"x": hits}
    fused = fuse(runs, FusionConfig("combsum-zscore", stats="background", skip=1), k=None)
    assert fused[0].score == pytest.approx((10.0 - 1.0) / np.std([2.0, 1.0, 0.0]))
    # with too few hits for a background the candidates' own statistics are used
    small = {"x": hits[:2]}
    assert fuse(small, FusionConfig("combsum-zscore", stats="background"))[0].score == 1.0


def test_weights_apply_by_name_and_unknown_names_are_ignored() -> None:
    runs = {
        "dense": ListRetriever("dense", DENSE).retrieve("q"),
        "bm25": ListRetriever("bm25", LEXICAL).retrieve("q"),
    }
    only_dense = fuse(runs, FusionConfig("rrf", weights={"bm25": 0.0, "other": 3.0}))
    assert [h.chunk.id for h in only_dense][:3] == ["a", "b", "c"]
    only_bm25 = fuse(runs, FusionConfig("rrf", weights={"dense": 0.0}, k_rrf=1))
    assert [h.chunk.id for h in only_bm25][:3] == ["b", "d", "a"]
    assert only_bm25[0].score == pytest.approx(1 / 2)


def test_calibration_statistics_put_queries_on_one_scale() -> None:
    dense, bm25 = ListRetriever("dense", DENSE), ListRetriever("bm25", LEXICAL)
    calib = calibrate([dense, bm25], ["q1", "q2"], depth=3)
    assert calib.stats["bm25"].mean == pytest.approx(7.0)
    assert calib.num_queries == 2 and calib.depth == 3
    retriever = FusionRetriever(
        [dense, bm25], FusionConfig("combsum-zscore", stats="calibration"), calibration=calib
    )
    top = retriever.retrieve("q", k=1)[0]
    d, b = calib.stats["dense"], calib.stats["bm25"]
    assert top.chunk.id == "b"
    assert top.score == pytest.approx((0.8 - d.mean) / d.std + (12.0 - b.mean) / b.std)
    with pytest.raises(ValueError, match="calibration"):
        FusionRetriever([dense, bm25], "combsum-zscore@calibration")
    with pytest.raises(ValueError, match="no statistics"):
        fuse({"dense": dense.retrieve("q")}, "combsum-zscore@calibration", calibration={})


def test_calibration_round_trips_through_json(tmp_path) -> None:
    calib = Calibration({"m": ScoreStats(0.1, 0.2, -0.3, 0.9)}, num_queries=5, depth=None)
    calib.save(tmp_path / "calibration.json")
    assert Calibration.load(tmp_path / "calibration.json") == calib


def test_parse_fusion_names_and_errors() -> None:
    assert parse_fusion("default") == DEFAULT_FUSION
    assert parse_fusion("rrf") == FusionConfig("rrf")
    assert parse_fusion("mixture@calibration").stats == "calibration"
    assert parse_fusion("combsum-zscore@corpus").missing == "min"
    assert parse_fusion("combsum-zscore").missing is None
    assert parse_fusion("combsum-minmax@background").label == "combsum-minmax@background"
    with pytest.raises(ValueError, match="unknown fusion"):
        parse_fusion("combsum-zcore")
    with pytest.raises(ValueError, match="statistics source"):
        parse_fusion("combsum-zscore@everything")
    with pytest.raises(ValueError, match="takes no statistics"):
        parse_fusion("rrf@background")
    with pytest.raises(ValueError, match="no weights"):
        FusionConfig("mixture", weights={"a": 2.0})
    assert FusionConfig.from_json(DEFAULT_FUSION.to_json()) == DEFAULT_FUSION


class BarrierRetriever(ListRetriever):
    """Blocks until every encoder of the fusion is inside ``retrieve`` at the same time."""

    def __init__(self, name: str, pairs: Sequence[tuple[str, float]], barrier) -> None:
        super().__init__(name, pairs)
        self.barrier = barrier

    def retrieve_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        self.barrier.wait(timeout=10)  # raises BrokenBarrierError if the calls are sequential
        return super().retrieve_many(queries, k)


def test_encoders_are_queried_concurrently_for_the_candidate_depth() -> None:
    barrier = threading.Barrier(3)
    parts = [BarrierRetriever(f"e{i}", DENSE, barrier) for i in range(3)]
    retriever = FusionRetriever(parts, "default", candidates=50)
    assert retriever.name == "fusion:default"
    hits = retriever.retrieve_many(["q1", "q2"], k=2)
    assert [len(h) for h in hits] == [2, 2]
    assert all(p.calls == [50, 50] for p in parts)
    assert retriever.retrieve("q", k=80) and parts[0].calls[-1] == 80  # depth covers k
    retriever.close()


def test_default_fusion_on_names_it_has_no_prior_for() -> None:
    retriever = FusionRetriever([ListRetriever("dense", DENSE), ListRetriever("bm25", LEXICAL)])
    hits = retriever.retrieve("q", k=10)
    assert {h.chunk.id for h in hits} == {"a", "b", "c", "d"}
    assert hits[0].chunk.id == "b"  # first in bm25, second in dense
    with pytest.raises(ValueError, match="unique"):
        FusionRetriever([ListRetriever("x", DENSE), ListRetriever("x", LEXICAL)])
    with pytest.raises(ValueError, match="evaluation"):
        FusionRetriever([ListRetriever("x", DENSE)], "combsum-zscore@corpus")
