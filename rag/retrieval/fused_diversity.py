"""The fused retriever's top ``k`` with de-duplication and MMR (kept apart from multi.py).

Filters go into every member retriever (each filters in its store, before fusion); copies are
collapsed and MMR applied once, over the fused candidates; while fewer than ``k`` hits remain
and a member returned all it was asked for, the members are asked again, four times deeper.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rag.retrieval.diversity import diversify, overfetch
from rag.retrieval.store_retriever import hit_vectors
from rag.types import Hit


def fused_top(fusion: Any, queries: Sequence[str], k: int, where: Any) -> list[list[Hit]]:
    """``fusion.retrieve_many(queries, k, where=where)`` for a FusionRetriever ``fusion``."""
    depth = max(overfetch(k, fusion.dedup, fusion.mmr), fusion.candidates)
    per_retriever = fusion.retrieve_runs(queries, depth, where=where)
    out = []
    for i, query in enumerate(queries):
        runs = {name: lists[i] for name, lists in per_retriever.items()}
        out.append(_top(fusion, query, runs, k, depth, where))
    return out


def _top(
    fusion: Any, query: str, runs: Mapping[str, Sequence[Hit]], k: int, depth: int, where: Any
) -> list[Hit]:
    from rag.types.filters import Where

    filtered = Where.coerce(where) is not None
    if not fusion.dedup and fusion.mmr is None:
        return fusion.fuse_runs(runs, k, depth=depth, filtered=filtered)
    while True:
        fused = fusion.fuse_runs(runs, None, depth=depth, filtered=filtered)
        hits = diversify(
            fused,
            k,
            dedup=fusion.dedup,
            mmr_lambda=fusion.mmr,
            threshold=fusion.threshold,
            vectors=member_vectors(fusion.retrievers, fused) if fusion.mmr is not None else None,
        )
        if len(hits) >= k or all(len(r) < depth for r in runs.values()):
            return hits
        depth *= 4
        deeper = fusion.retrieve_runs([query], depth, where=where)
        runs = {name: lists[0] for name, lists in deeper.items()}


def member_vectors(
    retrievers: Sequence[Any], hits: Sequence[Hit]
) -> Mapping[str, np.ndarray] | None:
    """Dense vectors of ``hits`` from the first retriever whose store returns them all."""
    for r in retrievers:
        store = getattr(r, "store", None)
        found = hit_vectors(store, hits) if store is not None else None
        if found is not None and len(found) == len(hits):
            return found
    return None
