"""A retriever over one (encoder, store) pair: dense and lexical alike.

The encoder turns queries into what its store searches (vectors for a dense store, term lists
for a lexical one), so one class serves every encoder an index holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.base import Retriever, Store
from rag.types import Hit


class StoreRetriever(Retriever):
    """Embeds queries with ``encoder`` (an Encoder or a situated encoder) and searches ``store``."""

    def __init__(self, encoder: Any, store: Store, *, name: str | None = None) -> None:
        self.encoder = encoder
        self.store = store
        self.name = name or encoder.name

    def retrieve(self, query: str, k: int = 10) -> list[Hit]:
        return self.retrieve_many([query], k)[0]

    def retrieve_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        if not queries:
            return []
        embedded = self.encoder.embed_queries(list(queries))
        return [
            [
                Hit(chunk=chunk, score=float(score), rank=rank, source=self.name)
                for rank, (chunk, score) in enumerate(found, start=1)
            ]
            for found in self.store.search_many(embedded, k)
        ]
