"""The roles of the system: one required method each; the base class supplies the rest."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rag.types import Chunk, Document, Hit

if TYPE_CHECKING:
    import numpy as np


class Chunker(ABC):
    """Cuts a Document into Chunks that carry offsets and a context span."""

    @abstractmethod
    def chunk(self, document: Document) -> list[Chunk]: ...

    def chunk_many(self, documents: Iterable[Document]) -> list[Chunk]:
        return [c for d in documents for c in self.chunk(d)]


class Encoder(ABC):
    """Turns texts into L2-normalised float32 vectors; queries and documents may differ.

    Subclasses implement ``_embed(texts, role)``; ``role`` is ``"query"`` or ``"document"`` so
    that model-specific prefixes ("query: " / "passage: ") are applied in one place.
    """

    name: str = "encoder"
    dim: int = 0

    @abstractmethod
    def _embed(
        self, texts: Sequence[str], role: str, *, batch_size: int, show_progress: bool
    ) -> np.ndarray: ...

    def embed_documents(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False
    ) -> np.ndarray:
        return self._embed(texts, "document", batch_size=batch_size, show_progress=show_progress)

    def embed_queries(
        self, texts: Sequence[str], *, batch_size: int = 32, show_progress: bool = False
    ) -> np.ndarray:
        return self._embed(texts, "query", batch_size=batch_size, show_progress=show_progress)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_queries([text])[0]


class Retriever(ABC):
    """Answers a query with ranked Hits."""

    name: str = "retriever"

    @abstractmethod
    def retrieve(self, query: str, k: int = 10) -> list[Hit]: ...

    def retrieve_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        return [self.retrieve(q, k) for q in queries]


class VectorStore(ABC):
    """Holds chunks with one vector each (for one encoder) and finds the nearest ones.

    Vectors are L2-normalised float32, so the score is cosine similarity (higher is better).
    ``add`` is an upsert keyed by ``Chunk.id``: adding the same chunk twice stores it once.
    """

    @abstractmethod
    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None: ...

    @abstractmethod
    def search(self, vector: np.ndarray, k: int = 10) -> list[tuple[Chunk, float]]: ...

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None: ...

    @abstractmethod
    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are stored (lets an interrupted ingest resume without re-embedding)."""

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def get(self, ids: Sequence[str]) -> list[Chunk]:
        """The stored chunks for ``ids``, in that order, skipping unknown ids."""

    def search_many(self, vectors: np.ndarray, k: int = 10) -> list[list[tuple[Chunk, float]]]:
        return [self.search(v, k) for v in vectors]
