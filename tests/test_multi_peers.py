"""The peers (LangChain EnsembleRetriever, LlamaIndex QueryFusionRetriever) run over our
retrievers fuse exactly our candidate lists, and agree with our own implementations of their
formulas."""

from __future__ import annotations

import numpy as np
import pytest

from rag.eval.peers import PEERS, StaticRetriever, make_peer
from rag.retrieval.fusion import relative_score, rrf
from rag.types import Chunk, Hit

pytestmark = pytest.mark.slow  # importing langchain-classic and llama_index takes seconds

pytest.importorskip("llama_index.core")
pytest.importorskip("langchain_core")


def random_lists(seed: int) -> dict[str, dict[str, list[Hit]]]:
    """Per encoder, per query id, 8 hits over a pool of 20 chunks on the encoder's own scale."""
    rng = np.random.default_rng(seed)
    chunks = [
        Chunk(id=f"c{i:02d}", doc_id=f"d{i}", text=f"t{i}", start=0, end=2) for i in range(20)
    ]
    out: dict[str, dict[str, list[Hit]]] = {}
    for name, scale in (("dense", 1.0), ("bm25", 20.0), ("static", 0.5)):
        out[name] = {}
        for q in ("q1", "q2"):
            ids = rng.choice(20, size=8, replace=False)
            scores = np.sort(rng.random(8) * scale)[::-1]
            out[name][q] = [
                Hit(chunks[i], float(s), r, name)
                for r, (i, s) in enumerate(zip(ids, scores, strict=True), start=1)
            ]
    return out


def non_increasing(values: list[float]) -> bool:
    return all(a >= b - 1e-12 for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize("seed", [0, 1])
def test_peers_fuse_our_lists_as_their_formulas_say(seed: int) -> None:
    lists = random_lists(seed)
    retrievers = [StaticRetriever(name, per_query) for name, per_query in lists.items()]
    peers = {name: make_peer(name, retrievers, k=10) for name in PEERS}
    for q in ("q1", "q2"):
        runs = {name: per_query[q] for name, per_query in lists.items()}
        ours_rrf = {h.chunk.id: h.score for h in rrf(runs, k_rrf=60)}
        lc = peers["peer:langchain-ensemble"](q)
        assert len(lc) == 10 and [h.rank for h in lc] == list(range(1, 11))
        assert non_increasing([ours_rrf[h.chunk.id] for h in lc])
        # the same Chunk objects come back, with their own ids
        assert all(h.chunk is runs_chunk(runs, h.chunk.id) for h in lc)

        li_rrf = peers["peer:llamaindex-reciprocal_rerank"](q)
        ours_59 = {h.chunk.id: h.score for h in rrf(runs, k_rrf=59)}  # LlamaIndex ranks from 0
        assert [h.score for h in li_rrf] == pytest.approx([ours_59[h.chunk.id] for h in li_rrf])

        li_rel = peers["peer:llamaindex-relative_score"](q)
        ours_rel = {h.chunk.id: h.score for h in relative_score(runs)}
        assert [h.score for h in li_rel] == pytest.approx([ours_rel[h.chunk.id] for h in li_rel])
        assert non_increasing([h.score for h in li_rel])

        li_dbsf = peers["peer:llamaindex-dist_based_score"](q)
        assert len(li_dbsf) == 10 and non_increasing([h.score for h in li_dbsf])


def runs_chunk(runs: dict[str, list[Hit]], cid: str) -> Chunk:
    return next(h.chunk for hits in runs.values() for h in hits if h.chunk.id == cid)


def test_unknown_peer_names_the_choices() -> None:
    with pytest.raises(ValueError, match="peer:langchain-ensemble"):
        make_peer("peer:haystack", [StaticRetriever("x", {})], k=5)
