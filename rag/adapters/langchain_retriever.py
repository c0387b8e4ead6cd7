"""The LangChain retriever class (imports langchain-core; :mod:`rag.adapters.langchain` loads it
on first use). A module-level class, so a retriever pickles when the wrapped one does."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field, field_validator

from rag.adapters.metadata import adapter_score, hit_metadata
from rag.types import Hit

SEARCH_KWARGS = frozenset({"k", "filter", "where", "min_score", "score_threshold"})


def to_langchain_document(hit: Hit) -> Document:
    return Document(page_content=hit.chunk.text, metadata=hit_metadata(hit), id=hit.chunk.id)


def check_search_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    unknown = set(options) - SEARCH_KWARGS
    if unknown:  # an ignored option would silently change nothing
        raise ValueError(
            f"unknown search option(s) {sorted(unknown)}; known: {sorted(SEARCH_KWARGS)}"
        )
    if "filter" in options and "where" in options:
        raise ValueError("give 'filter' or 'where', not both (they are the same filter)")
    return options


class RagLangChainRetriever(BaseRetriever):
    """LangChain view of a ``rag`` retriever.

    ``search_kwargs`` (as on LangChain's ``VectorStoreRetriever``), overridable per ``invoke``:
    ``k``; ``filter`` or ``where``, a filter the wrapped retriever takes as ``where=`` (e.g.
    ``{"type": "pdf", "source": "*.md", "page": "3-5", "section": "Intro"}``, pages 1-based as
    the project numbers them); ``min_score`` (alias ``score_threshold``), which drops documents
    whose ``metadata["score"]`` (the relevance in [0, 1] where the index fitted one) is lower.
    """

    retriever: Any
    k: int = 4
    search_kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("search_kwargs")
    @classmethod
    def _known_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_search_kwargs(dict(value))

    def _options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        call = check_search_kwargs(dict(kwargs))
        if "filter" in call or "where" in call:  # a call's filter replaces the default one
            options = {
                key: v for key, v in self.search_kwargs.items() if key not in ("filter", "where")
            }
        else:
            options = dict(self.search_kwargs)
        options.update(call)
        return options

    def _hits(self, query: str, options: dict[str, Any]) -> list[Hit]:
        k = int(options.get("k", self.k))
        where = options.get("where", options.get("filter"))
        if where is None:  # not every Retriever takes ``where``
            hits = self.retriever.retrieve(query, k=k)
        else:
            hits = self.retriever.retrieve(query, k=k, where=where)
        cut = options.get("min_score", options.get("score_threshold"))
        if cut is not None:
            hits = [h for h in hits if adapter_score(h) >= float(cut)]
        return hits

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return [to_langchain_document(h) for h in self._hits(query, self._options(kwargs))]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        # retrieval is CPU-bound and blocking: keep it off the event loop
        hits = await asyncio.to_thread(self._hits, query, self._options(kwargs))
        return [to_langchain_document(h) for h in hits]
