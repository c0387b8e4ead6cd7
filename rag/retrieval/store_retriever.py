"""A retriever over one (encoder, store) pair: dense and lexical alike.

The encoder turns queries into what its store searches (vectors for a dense store, term lists
for a lexical one), so one class serves every encoder an index holds. A filter (``where=``) is
applied inside the store before its top k; de-duplication and MMR work on over-fetched
candidates, fetching more while fewer than ``k`` distinct hits remain and the store has more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from rag.base import Retriever, Store
from rag.retrieval.diversity import THRESHOLD, diversify, overfetch
from rag.retrieval.filters import WhereLike, resolve_where
from rag.types import Hit
from rag.types.filters import Where

Sources = Callable[[], Iterable[str]]


class StoreRetriever(Retriever):
    """Embeds queries with ``encoder`` (an Encoder or a situated encoder) and searches ``store``.

    ``dedup`` collapses near-identical chunks into one hit (``Hit.duplicates``); ``mmr`` is the
    MMR lambda for diverse results (None: off). ``sources`` lists the index's sources, against
    which a filter's globs are resolved so that a store can push them down.
    """

    relevance: Callable[..., list[Hit]] | None = None  # fills Hit.relevance (set by an Index)

    def __init__(
        self,
        encoder: Any,
        store: Store,
        *,
        name: str | None = None,
        dedup: bool = False,
        mmr: float | None = None,
        threshold: float = THRESHOLD,
        sources: Sources | None = None,
    ) -> None:
        self.encoder = encoder
        self.store = store
        self.name = name or encoder.name
        self.dedup, self.mmr, self.threshold = dedup, mmr, threshold
        self.sources = sources

    def retrieve(self, query: str, k: int = 10, *, where: WhereLike = None) -> list[Hit]:
        return self.retrieve_many([query], k, where=where)[0]

    def retrieve_many(
        self, queries: Sequence[str], k: int = 10, *, where: WhereLike = None
    ) -> list[list[Hit]]:
        if not queries:
            return []
        embedded = self.encoder.embed_queries(list(queries))
        found = resolve_where(where, self.sources)
        if found is not None and found.resolved is not None and not found.resolved:
            return [[] for _ in queries]  # no source matches
        if not self.dedup and self.mmr is None:
            return [self._hits(f) for f in self._search(embedded, k, found)]
        depth = overfetch(k, self.dedup, self.mmr)
        out = []
        for i, first in enumerate(self._search(embedded, depth, found)):
            out.append(self._diverse(embedded[i : i + 1], first, k, depth, found))
        return out

    def _diverse(
        self,
        query: Any,
        found: list[tuple[Any, float]],
        k: int,
        depth: int,
        where: Where | None,
    ) -> list[Hit]:
        while True:
            hits = self._hits(found)
            chosen = diversify(
                hits,
                k,
                dedup=self.dedup,
                mmr_lambda=self.mmr,
                threshold=self.threshold,
                vectors=self._vectors(hits),
            )
            if len(chosen) >= k or len(found) < depth or depth >= self.store.count():
                return chosen
            depth *= 4
            found = self._search(query, depth, where)[0]

    def _search(self, embedded: Any, k: int, where: Where | None) -> list[list[Any]]:
        if where is None:
            return self.store.search_many(embedded, k)
        return self.store.search_many(embedded, k, where=where)  # type: ignore[call-arg]

    def _hits(self, found: Sequence[tuple[Any, float]]) -> list[Hit]:
        hits = [
            Hit(chunk=chunk, score=float(score), rank=rank, source=self.name)
            for rank, (chunk, score) in enumerate(found, start=1)
        ]
        return hits if self.relevance is None else self.relevance(hits)

    def _vectors(self, hits: Sequence[Hit]) -> Mapping[str, np.ndarray] | None:
        return hit_vectors(self.store, hits) if self.mmr is not None else None


def hit_vectors(store: Store, hits: Sequence[Hit]) -> Mapping[str, np.ndarray] | None:
    """The stored vectors of ``hits`` when ``store`` can return them (dense stores), else None."""
    if not hasattr(store, "vectors"):  # a wrapper (the index's committed view): its store's
        store = getattr(store, "store", store)
    get = getattr(store, "vectors", None)
    if get is None or store.kind != "dense" or not hits:
        return None
    return get([h.chunk.id for h in hits])
