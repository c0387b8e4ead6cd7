"""Documents ranked by their best chunk, over any retriever.

A document scores the best score of its retrieved chunks (max-pooling, the "MaxP" of Dai &
Callan, "Deeper Text Understanding for IR with Contextual Neural Language Modeling", SIGIR
2019): the chunked-document protocol of BEIR-style evaluation, where chunks are indexed and
whole documents are judged. Results are plain runs, ``{doc_id: score}`` best first (the form
:mod:`rag.retrieval.fusion` and ranx take), so document rankings of several retrievers fuse
with the product's fusion.

The top ``k`` documents are exact once the chunks retrieved hold ``k`` documents that each score
above the last chunk retrieved (no unseen document can beat them), or when the retriever has no
more chunks; ``k * chunks_per_document`` chunks always suffice (they hold ``k`` distinct
documents when no document has more chunks). The ranker asks for ``k`` chunks, then twice as
many for the queries not settled yet, up to that bound; ``max_depth`` caps it (e.g. at the
store's size).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.base import Retriever, Store
from rag.types import Hit


def best_per_document(hits: Sequence[Hit], k: int | None = None) -> dict[str, float]:
    """``{doc_id: its best hit's score}``, highest first; equal scores keep the order of those
    best hits in ``hits`` (for hits sorted best first: the order documents first appear in);
    cut to ``k`` documents when given."""
    best: dict[str, tuple[float, int]] = {}  # doc -> (best score, position of its first best)
    for position, hit in enumerate(hits):
        score = float(hit.score)
        doc = hit.chunk.doc_id
        if doc not in best or score > best[doc][0]:
            best[doc] = (score, position)
    order = sorted(best, key=lambda doc: (-best[doc][0], best[doc][1]))
    if k is not None:
        order = order[:k]
    return {doc: best[doc][0] for doc in order}


class DocumentRanker:
    """Ranks documents by their best chunk's score under ``retriever``.

    ``chunks_per_document`` is the most chunks any document has in the index (1 when a document
    is one chunk); ``max_depth`` the most chunks to ask for (``None``: no cap).
    """

    def __init__(
        self,
        retriever: Retriever,
        *,
        chunks_per_document: int = 1,
        max_depth: int | None = None,
        name: str | None = None,
    ) -> None:
        if chunks_per_document < 1:
            raise ValueError(f"chunks_per_document must be at least 1, got {chunks_per_document}")
        if max_depth is not None and max_depth < 0:
            raise ValueError(f"max_depth must be >= 0 or None, got {max_depth}")
        self.retriever = retriever
        self.chunks_per_document = chunks_per_document
        self.max_depth = max_depth
        self.name = name or retriever.name

    @classmethod
    def over(
        cls,
        encoder: Any,
        store: Store,
        *,
        chunks_per_document: int = 1,
        name: str | None = None,
    ) -> DocumentRanker:
        """A ranker over ``store`` searched with ``encoder``'s query embeddings (at most the
        whole store is asked for)."""
        from rag.retrieval.store_retriever import StoreRetriever

        return cls(
            StoreRetriever(encoder, store, name=name),
            chunks_per_document=chunks_per_document,
            max_depth=store.count(),
            name=name,
        )

    def depth(self, k: int) -> int:
        """How many chunks to ask for so that the top ``k`` documents are exact."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        depth = k * self.chunks_per_document
        return depth if self.max_depth is None else min(depth, self.max_depth)

    def rank(self, query: str, k: int = 10) -> dict[str, float]:
        return self.rank_many([query], k)[0]

    def rank_many(self, queries: Sequence[str], k: int = 10) -> list[dict[str, float]]:
        """One plain run ``{doc_id: score}`` (at most ``k`` documents, best first) per query.

        Queries start at depth ``k`` and are asked again twice as deep until their top ``k``
        documents are settled (each scores above the last chunk retrieved, or the retriever
        ran out of chunks), at most :meth:`depth` deep: for an exact store the result equals
        one search at the full depth, at a fraction of the cost when chunks of the best
        documents crowd the top of the list.
        """
        queries = list(queries)
        cap = self.depth(k)
        if cap == 0:
            return [{} for _ in queries]
        out: list[dict[str, float]] = [{} for _ in queries]
        pending = list(range(len(queries)))
        depth = min(k, cap)
        while pending:
            found = self.retriever.retrieve_many([queries[i] for i in pending], depth)
            unsettled = []
            for i, hits in zip(pending, found, strict=True):
                out[i] = best_per_document(hits, k)
                if depth < cap and not _settled(out[i], hits, k, depth):
                    unsettled.append(i)
            pending, depth = unsettled, min(cap, 2 * depth)
        return out


def _settled(docs: dict[str, float], hits: Sequence[Hit], k: int, depth: int) -> bool:
    """Whether deeper hits cannot change the top ``k`` documents: the retriever returned fewer
    than asked (there are no more), or the ``k``-th document scores above the last hit (a
    document not seen yet scores at most that)."""
    if len(hits) < depth:
        return True
    return len(docs) >= k and list(docs.values())[k - 1] > float(hits[-1].score)
