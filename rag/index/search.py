"""How an index folder builds its retrievers: one per encoder, or all of them fused.

Kept apart from :mod:`rag.index.folder` (the facade delegates here). Retrievers made here
resolve a filter's source globs against the index's own sources, so stores can push them down
(Chroma's ``$in``); the fused retriever's members return every copy, and de-duplication and MMR
happen once, after fusion. ``index`` is a :class:`rag.index.folder.Index` (typed ``Any``: naming
it here would tie the two modules in a cycle).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.retrieval.multi import FusionConfig, FusionRetriever
    from rag.retrieval.normalize import ScoreStats
    from rag.retrieval.store_retriever import StoreRetriever


def index_sources(index: Any) -> Iterator[str]:
    """The source path of every indexed document."""
    return (entry["source"] for entry in index.docstore.files.values())


def encoder_retriever(
    index: Any, encoder: str | None, *, dedup: bool, mmr: float | None
) -> StoreRetriever:
    from rag.index.snapshot import committed_store
    from rag.retrieval.store_retriever import StoreRetriever

    entry = index.config.entry(encoder or index.config.encoders[0].name)
    return StoreRetriever(
        index.query_encoder(entry),
        committed_store(index, entry.name),  # what the committed manifest names, refreshed
        name=entry.name,
        dedup=dedup,
        mmr=mmr,
        sources=lambda: index_sources(index),
    )


def fused_retriever(
    index: Any,
    fusion: str | FusionConfig,
    *,
    encoders: Sequence[str] | None,
    candidates: int,
    calibration: Mapping[str, ScoreStats] | None,
    calibration_queries: int,
    dedup: bool,
    mmr: float | None,
) -> FusionRetriever:
    from rag.index.snapshot import pin_runs
    from rag.retrieval.multi import FusionRetriever, parse_fusion

    names = list(encoders) if encoders is not None else index.config.names()
    retrievers = [encoder_retriever(index, name, dedup=False, mmr=None) for name in names]
    if parse_fusion(fusion).stats == "calibration" and calibration is None:
        from rag.retrieval.calibration import calibrate, pseudo_queries

        texts = [c.text for c in index.docstore.iter_chunks()]
        queries = pseudo_queries(texts, n=calibration_queries)
        calibration = calibrate(retrievers, queries, depth=candidates)
    fused = FusionRetriever(
        retrievers, fusion, candidates=candidates, calibration=calibration, dedup=dedup, mmr=mmr
    )
    return pin_runs(index, fused)  # all members under one committed manifest
