"""The LangChain retriever class (imports langchain-core; :mod:`rag.adapters.langchain` loads it
on first use). A module-level class, so a retriever pickles when the wrapped one does."""

from __future__ import annotations

import asyncio
import copy
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

SEARCH_KWARGS = frozenset(
    {"k", "filter", "where", "min_score", "score_threshold", "lambda_mult", "fetch_k"}
)
# LangChain's VectorStoreRetriever search types, with its defaults for MMR
SEARCH_TYPES = ("similarity", "mmr", "similarity_score_threshold")
MMR_LAMBDA, MMR_FETCH_K = 0.5, 20


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

    ``search_type`` as on ``VectorStoreRetriever``: ``"similarity"``; ``"mmr"``, which re-ranks
    for diversity with ``lambda_mult`` (default 0.5; 1 keeps the ranking) among at least
    ``fetch_k`` candidates (default 20); ``"similarity_score_threshold"``, which needs
    ``score_threshold`` in ``search_kwargs``.
    """

    retriever: Any
    k: int = 4
    search_type: str = "similarity"
    search_kwargs: dict[str, Any] = Field(default_factory=dict)

    @field_validator("search_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in SEARCH_TYPES:
            raise ValueError(f"search_type {value!r} is not one of {', '.join(SEARCH_TYPES)}")
        return value

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

    def _searcher(self, options: dict[str, Any]) -> Any:
        """The wrapped retriever, or for MMR a shallow copy of it with MMR on (shared models
        and stores; the original stays as it was, so concurrent calls do not interfere)."""
        if self.search_type != "mmr":
            if "lambda_mult" in options or "fetch_k" in options:
                raise ValueError("lambda_mult and fetch_k need search_type='mmr'")
            return self.retriever
        if not hasattr(self.retriever, "mmr"):
            name = type(self.retriever).__name__
            raise ValueError(f"search_type='mmr' needs a retriever with MMR; {name} has none")
        searcher = copy.copy(self.retriever)
        searcher.mmr = float(options.get("lambda_mult", MMR_LAMBDA))
        if hasattr(searcher, "candidates"):  # a fused retriever: its candidate depth
            searcher.candidates = max(searcher.candidates, int(options.get("fetch_k", 0)))
        return searcher

    def _hits(self, query: str, options: dict[str, Any]) -> list[Hit]:
        k = int(options.get("k", self.k))
        if self.search_type == "mmr":
            options.setdefault("fetch_k", MMR_FETCH_K)
        searcher = self._searcher(options)
        where = options.get("where", options.get("filter"))
        if where is None:  # not every Retriever takes ``where``
            hits = searcher.retrieve(query, k=k)
        else:
            hits = searcher.retrieve(query, k=k, where=where)
        cut = options.get("min_score", options.get("score_threshold"))
        if self.search_type == "similarity_score_threshold" and cut is None:
            raise ValueError("search_type='similarity_score_threshold' needs a score_threshold")
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
