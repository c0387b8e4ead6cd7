"""Dense retrieval: embed the query with one encoder, search that encoder's store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rag.base import Encoder, Retriever, Store
from rag.types import Hit

if TYPE_CHECKING:
    from rag.encoders.situated import SituatedEncoder


class DenseRetriever(Retriever):
    def __init__(
        self, encoder: Encoder | SituatedEncoder, store: Store, *, name: str | None = None
    ) -> None:
        self.encoder = encoder
        self.store = store
        self.name = name or encoder.name

    def retrieve(self, query: str, k: int = 10) -> list[Hit]:
        return self.retrieve_many([query], k)[0]

    def retrieve_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        if not queries:
            return []
        vectors = self.encoder.embed_queries(list(queries))
        return [
            [
                Hit(chunk=chunk, score=float(score), rank=rank, source=self.name)
                for rank, (chunk, score) in enumerate(found, start=1)
            ]
            for found in self.store.search_many(vectors, k)
        ]
