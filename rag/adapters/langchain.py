"""A LangChain ``BaseRetriever`` over any of our Retrievers (thin; LangChain imported lazily).

from rag.adapters.langchain import as_langchain_retriever
lc = as_langchain_retriever(Index(".rag_index").retriever(), k=5)
lc.invoke("how do I configure a theme?")  # -> list[langchain_core.documents.Document]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag.types import Hit

if TYPE_CHECKING:
    from langchain_core.documents import Document as LCDocument
    from langchain_core.retrievers import BaseRetriever

    from rag.base import Retriever


def adapter_score(hit: Hit) -> float:
    """The score adapters give a hit: its relevance in [0, 1] (one scale for every query, so a
    fixed cut-off such as LlamaIndex's ``SimilarityPostprocessor`` works), else its own score."""
    return hit.score if hit.relevance is None else hit.relevance


def hit_metadata(hit: Hit) -> dict[str, Any]:
    """Everything a caller needs to cite a hit: where it is and how it scored."""
    c = hit.chunk
    meta: dict[str, Any] = {
        "id": c.id,
        "doc_id": c.doc_id,
        "source": c.source,
        "title": c.title,
        "page": c.page,
        "section": " > ".join(c.section),
        "start": c.start,
        "end": c.end,
        "score": adapter_score(hit),
        "fused_score": hit.score,
        "relevance": hit.relevance,
        "rank": hit.rank,
        "retriever": hit.source,
    }
    if hit.components:
        meta["components"] = {
            name: {"score": s.score, "rank": s.rank} for name, s in hit.components.items()
        }
    return meta


def to_langchain_document(hit: Hit) -> LCDocument:
    from langchain_core.documents import Document as LCDocument

    return LCDocument(page_content=hit.chunk.text, metadata=hit_metadata(hit), id=hit.chunk.id)


def _retriever_class() -> type[BaseRetriever]:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.retrievers import BaseRetriever

    class RagLangChainRetriever(BaseRetriever):
        """LangChain view of a ``rag`` retriever; ``k`` can be set here or per ``invoke``."""

        retriever: Any
        k: int = 4

        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
        ) -> list[LCDocument]:
            k = int(kwargs.get("k", self.k))
            return [to_langchain_document(h) for h in self.retriever.retrieve(query, k=k)]

    return RagLangChainRetriever


_CLASS: type[BaseRetriever] | None = None


def langchain_retriever_class() -> type[BaseRetriever]:
    """The pydantic model class (created on first use so LangChain stays an optional import)."""
    global _CLASS
    if _CLASS is None:
        try:
            _CLASS = _retriever_class()
        except ImportError as exc:
            raise ImportError(
                'the LangChain adapter needs langchain-core: pip install "situated-rag[langchain]"'
            ) from exc
    return _CLASS


def as_langchain_retriever(retriever: Retriever, k: int = 4) -> BaseRetriever:
    return langchain_retriever_class()(retriever=retriever, k=k)
