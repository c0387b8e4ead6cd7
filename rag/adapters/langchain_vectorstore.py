"""A LangChain ``VectorStore`` over one of our dense stores (imports langchain-core;
:mod:`rag.adapters.langchain` loads it on first use).

from rag.adapters.langchain import as_langchain_vectorstore
vs = as_langchain_vectorstore(as_langchain_embeddings("minilm"))   # a MemoryStore
vs = as_langchain_vectorstore(emb, ChromaStore(".chroma", "notes"))  # or any dense Store
vs.add_texts(["Paris is in France"], [{"source": "geo.md"}], ids=["p1"])
vs.similarity_search_with_score("capital of France", k=1, filter={"source": "geo.md"})

Each text becomes one :class:`rag.types.Chunk`: its id is the given id (else a uuid4), its
``doc_id`` and ``source`` the metadata's ``source`` when it is a string (else the id), its page
the metadata's 0-based ``page`` plus one (our chunks count pages from 1), and the metadata is kept
whole in ``Chunk.metadata`` (plain JSON, refused at ``add`` time when it would not come back
equal), so a Document comes back exactly as it went in. Vectors are L2-normalised before they are
stored (the Store contract), so scores are cosine similarities, higher is better;
``similarity_search_with_relevance_scores`` maps them to [0, 1].

``filter`` is a dict (metadata equality on every key) or a callable on a Document; it is
applied over candidates fetched ``fetch_factor`` times ``k`` at a time (more until ``k`` match
or the store is exhausted), so ``k`` come back when ``k`` match. ``where`` (a
:class:`rag.types.filters.Where`, or a dict for ``Where.from_dict``: source glob, file type,
1-based pages, section) is pushed down to the store.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from rag.base import Store
from rag.types import Chunk
from rag.types.filters import Where

Filter = Mapping[str, Any] | Callable[[Document], bool]
WhereLike = Where | Mapping[str, Any] | Sequence[str]  # what Where.coerce takes


def _normalised(vectors: Any) -> np.ndarray:
    matrix = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def to_chunk(text: str, metadata: Mapping[str, Any], id: str) -> Chunk:
    """One LangChain text and its metadata as a Chunk (see the module docstring)."""
    source = metadata.get("source")
    page = metadata.get("page")
    return Chunk(
        id=id,
        doc_id=source if isinstance(source, str) and source else id,
        text=text,
        start=0,
        end=len(text),
        source=source if isinstance(source, str) else "",
        page=page + 1 if isinstance(page, int) and not isinstance(page, bool) else None,
        context=text,
        context_end=len(text),
        metadata=copy.deepcopy(dict(metadata)),  # the caller's later edits stay theirs
    )


def to_document(chunk: Chunk) -> Document:
    return Document(page_content=chunk.text, metadata=copy.deepcopy(chunk.metadata), id=chunk.id)


def _matcher(filter: Filter | None) -> Callable[[Document], bool] | None:
    if filter is None or callable(filter):
        return filter
    if not isinstance(filter, Mapping):
        raise TypeError(f"filter must be a dict or a callable, got {type(filter).__name__}")
    wanted = dict(filter)
    return lambda doc: all(
        key in doc.metadata and doc.metadata[key] == v for key, v in wanted.items()
    )


class RagVectorStore(VectorStore):
    """LangChain view of a dense :class:`rag.base.Store` (default: an in-memory
    :class:`rag.stores.MemoryStore`), with ``embedding`` turning its texts into vectors."""

    def __init__(
        self, embedding: Embeddings, store: Store | None = None, *, fetch_factor: int = 4
    ) -> None:
        if store is None:
            from rag.stores.memory import MemoryStore

            store = MemoryStore()
        if store.kind != "dense":
            raise ValueError(
                f"{type(store).__name__} is a {store.kind} store; a VectorStore needs a dense one"
            )
        if fetch_factor < 1:
            raise ValueError(f"fetch_factor must be at least 1, got {fetch_factor}")
        self.store = store
        self.embedding = embedding
        self.fetch_factor = fetch_factor

    @property
    def embeddings(self) -> Embeddings:
        return self.embedding

    # -- writing -------------------------------------------------------------------------------

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str | None] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        texts = list(texts)
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValueError(f"got {len(metadatas)} metadatas for {len(texts)} texts")
        if ids is not None and len(ids) != len(texts):
            raise ValueError(f"got {len(ids)} ids for {len(texts)} texts")
        if not texts:
            return []
        given = ids if ids is not None else [None] * len(texts)
        keys = [str(i) if i else str(uuid.uuid4()) for i in given]
        metas = metadatas if metadatas is not None else [{} for _ in texts]
        chunks = [to_chunk(t, m or {}, i) for t, m, i in zip(texts, metas, keys, strict=True)]
        self.store.add(chunks, _normalised(self.embedding.embed_documents(texts)))
        return keys

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete ``ids`` (unknown ones are ignored); ``None`` deletes everything."""
        self.store.delete(self.store.ids() if ids is None else list(ids))
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return [to_document(c) for c in self.store.get(list(ids))]

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        store: Store | None = None,
        **kwargs: Any,
    ) -> RagVectorStore:
        vectorstore = cls(embedding, store, **kwargs)
        vectorstore.add_texts(texts, metadatas, ids=ids)
        return vectorstore

    # -- searching -----------------------------------------------------------------------------

    def _search(
        self, vector: Any, k: int, filter: Filter | None, where: WhereLike | None
    ) -> list[tuple[Chunk, float]]:
        n = self.store.count()
        if k < 1 or n == 0:
            return []
        query, where = _normalised(vector)[0], Where.coerce(where)
        keep = _matcher(filter)
        if keep is None:
            return self.store.search(query, min(k, n), where=where)
        fetch = min(n, k * self.fetch_factor)
        while True:
            found = self.store.search(query, fetch, where=where)
            matched = [(c, s) for c, s in found if keep(to_document(c))]
            if len(matched) >= k or fetch >= n or len(found) < fetch:
                return matched[:k]
            fetch = min(n, fetch * self.fetch_factor * 2)

    def similarity_search_with_score_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        *,
        filter: Filter | None = None,
        where: WhereLike | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """The ``k`` best Documents for a query vector with their cosine similarity."""
        return [(to_document(c), s) for c, s in self._search(embedding, k, filter, where)]

    def similarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        *,
        filter: Filter | None = None,
        where: WhereLike | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        hits = self.similarity_search_with_score_by_vector(embedding, k, filter=filter, where=where)
        return [doc for doc, _ in hits]

    def similarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        *,
        filter: Filter | None = None,
        where: WhereLike | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        vector = self.embedding.embed_query(query)
        return self.similarity_search_with_score_by_vector(vector, k, filter=filter, where=where)

    def similarity_search(
        self,
        query: str,
        k: int = 4,
        *,
        filter: Filter | None = None,
        where: WhereLike | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        hits = self.similarity_search_with_score(query, k, filter=filter, where=where)
        return [doc for doc, _ in hits]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Cosine similarity in [-1, 1] as a relevance in [0, 1]."""
        return lambda score: min(1.0, max(0.0, (1.0 + score) / 2.0))

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        *,
        filter: Filter | None = None,
        where: WhereLike | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        candidates = self._search(embedding, max(fetch_k, k), filter, where)
        if not candidates:
            return []
        chunks = [c for c, _ in candidates]
        stored = getattr(self.store, "vectors", None)
        found = stored([c.id for c in chunks]) if stored is not None else {}
        if len(found) < len(chunks):  # a store that cannot give its vectors back: re-embed
            texts = [c.text for c in chunks]
            vectors = self.embedding.embed_documents(texts)
            found = dict(zip([c.id for c in chunks], vectors, strict=True))
        matrix = _normalised([found[c.id] for c in chunks])
        picked = maximal_marginal_relevance(
            _normalised(embedding)[0], matrix, lambda_mult=lambda_mult, k=min(k, len(chunks))
        )
        return [to_document(chunks[i]) for i in picked]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        *,
        filter: Filter | None = None,
        where: WhereLike | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        return self.max_marginal_relevance_search_by_vector(
            self.embedding.embed_query(query),
            k,
            fetch_k,
            lambda_mult,
            filter=filter,
            where=where,
        )
