"""A LangChain ``BaseRetriever`` over any of our Retrievers (thin; LangChain imported lazily).

from rag.adapters.langchain import as_langchain_retriever
lc = as_langchain_retriever(Index(".rag_index").retriever(), k=5)
lc.invoke("how do I configure a theme?")  # -> list[langchain_core.documents.Document]
as_langchain_retriever(retriever, search_kwargs={"k": 3, "filter": {"type": "pdf"}, "min_score": 0.5})

Metadata follows LangChain's conventions (:mod:`rag.adapters.metadata`): ``source``,
``start_index``/``end_index``, ``page`` (0-based) and ``page_label``, ``section``, ``score``
(relevance where fitted), ``fused_score``, ``chunk_id``, ``doc_id``, ``score_<encoder>`` and
``rank_<encoder>``; flat scalars only, so vector stores such as Chroma accept them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag.adapters.metadata import adapter_score, hit_metadata
from rag.types import Hit

if TYPE_CHECKING:
    import os

    from langchain_core.documents import Document as LCDocument
    from langchain_core.embeddings import Embeddings
    from langchain_core.retrievers import BaseRetriever

    from rag.adapters.langchain_embeddings import RagEmbeddings
    from rag.adapters.langchain_vectorstore import RagVectorStore
    from rag.base import Encoder, Retriever, Store

__all__ = [
    "adapter_score",
    "as_langchain_embeddings",
    "as_langchain_vectorstore",
    "as_langchain_retriever",
    "hit_metadata",
    "langchain_retriever_class",
    "to_langchain_document",
]


def langchain_retriever_class() -> type[BaseRetriever]:
    """The pydantic model class (imported on first use so LangChain stays an optional import)."""
    try:
        from rag.adapters.langchain_retriever import RagLangChainRetriever
    except ImportError as exc:
        raise ImportError(
            'the LangChain adapter needs langchain-core: pip install "situated-rag[langchain]"'
        ) from exc
    return RagLangChainRetriever


def to_langchain_document(hit: Hit) -> LCDocument:
    langchain_retriever_class()  # the friendly ImportError when LangChain is missing
    from rag.adapters.langchain_retriever import to_langchain_document as convert

    return convert(hit)


def as_langchain_retriever(
    retriever: Retriever,
    k: int = 4,
    *,
    search_type: str = "similarity",
    search_kwargs: dict[str, Any] | None = None,
) -> BaseRetriever:
    """``retriever`` as a LangChain retriever; ``search_type`` ``"similarity"``, ``"mmr"`` or
    ``"similarity_score_threshold"``; ``search_kwargs``: ``k``, ``filter``/``where``,
    ``min_score``/``score_threshold``, ``lambda_mult`` and ``fetch_k`` for MMR (see
    :class:`rag.adapters.langchain_retriever.RagLangChainRetriever`)."""
    return langchain_retriever_class()(
        retriever=retriever, k=k, search_type=search_type, search_kwargs=search_kwargs or {}
    )


def as_langchain_embeddings(
    encoder: Encoder | str | os.PathLike[str], **options: Any
) -> RagEmbeddings:
    """A dense encoder (or its registered name, e.g. ``"minilm"``) as LangChain ``Embeddings``;
    ``options``: ``device``, ``batch_size`` (see :mod:`rag.adapters.langchain_embeddings`)."""
    langchain_retriever_class()  # the friendly ImportError when LangChain is missing
    from rag.adapters.langchain_embeddings import RagEmbeddings

    return RagEmbeddings(encoder, **options)


def as_langchain_vectorstore(
    embedding: Embeddings, store: Store | None = None, **options: Any
) -> RagVectorStore:
    """A dense store (default: an in-memory ``MemoryStore``) as a LangChain ``VectorStore``
    embedding its texts with ``embedding`` (see :mod:`rag.adapters.langchain_vectorstore`)."""
    langchain_retriever_class()
    from rag.adapters.langchain_vectorstore import RagVectorStore

    return RagVectorStore(embedding, store, **options)
