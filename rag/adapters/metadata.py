"""A hit's metadata in the frameworks' conventions: flat, scalar, and without ``None``.

LangChain's vector stores (Chroma among them) accept only str, int, float and bool values, and
LangChain's PDF loaders give ``page`` 0-based with the printed ``page_label`` beside it; so a
hit becomes one flat dict of scalars, with per-encoder components flattened to
``score_<encoder>`` and ``rank_<encoder>``. Keys whose value would be ``None`` are left out.
Both adapters (LangChain, LlamaIndex) use this dict; no framework is imported here.
"""

from __future__ import annotations

import json
from typing import Any

from rag.types import Hit, Span

Scalar = str | int | float | bool

# what the adapters hide from an LLM's view of a node: bookkeeping that only adds noise
INTERNAL_KEYS = frozenset(
    {
        "id",
        "chunk_id",
        "doc_id",
        "context",
        "score",
        "fused_score",
        "relevance",
        "rank",
        "retriever",
        "start_index",
        "end_index",
        "page",
        "duplicates",
        "context_start",
        "context_end",
        "content_hash",
        "format",
        "rag_spans",
    }
)
# a document's structure (sections, pages), carried by the LlamaIndex reader to the node parser
SPANS_KEY = "rag_spans"
# what an embedding of a node may see besides its text: only what says what the text is about
EMBED_KEYS = frozenset({"title", "section"})


def adapter_score(hit: Hit) -> float:
    """The score adapters give a hit: its relevance in [0, 1] (one scale for every query, so a
    fixed cut-off such as LlamaIndex's ``SimilarityPostprocessor`` works), else its own score."""
    return hit.score if hit.relevance is None else hit.relevance


def page_label(hit: Hit) -> str | None:
    """The printed page label: a connector's ``page_label`` where it recorded one, else the
    1-based page number (what a PDF without a /PageLabels entry prints)."""
    label = hit.chunk.metadata.get("page_label")
    if isinstance(label, str) and label:
        return label
    return None if hit.chunk.page is None else str(hit.chunk.page)


def hit_metadata(hit: Hit) -> dict[str, Scalar]:
    """Everything a caller needs to cite a hit (where it is, how it scored), as flat scalars."""
    c = hit.chunk
    meta: dict[str, Any] = {
        "source": c.source,
        "id": c.id,  # kept beside chunk_id: EnsembleRetriever(id_key="id") deduplicates on it
        "chunk_id": c.id,
        "doc_id": c.doc_id,
        "title": c.title,
        # the project numbers pages from 1; LangChain's PDF loaders from 0
        "page": None if c.page is None else c.page - 1,
        "page_label": page_label(hit),
        "section": " > ".join(c.section),
        "start_index": c.start,
        "end_index": c.end,
        "score": float(adapter_score(hit)),
        "fused_score": float(hit.score),
        "relevance": None if hit.relevance is None else float(hit.relevance),
        "rank": hit.rank,
        "retriever": hit.source,
        "context": c.context or None,
        "duplicates": len(hit.duplicates) or None,
    }
    for name, component in hit.components.items():
        meta[f"score_{name}"] = float(component.score)
        meta[f"rank_{name}"] = int(component.rank)
    return {key: value for key, value in meta.items() if value is not None}


def llm_excluded_keys(meta: dict[str, Scalar]) -> list[str]:
    """The keys an LLM need not read: internal ones and the per-encoder components."""
    return [key for key in meta if key in INTERNAL_KEYS or key.startswith(("score_", "rank_"))]


def embed_excluded_keys(meta: dict[str, Scalar]) -> list[str]:
    return [key for key in meta if key not in EMBED_KEYS]


def spans_to_json(spans: list[Span]) -> str:
    """Spans as one compact JSON string (a flat scalar, as framework metadata must be)."""
    return json.dumps(
        [[s.start, s.end, s.page, list(s.section)] for s in spans], separators=(",", ":")
    )


def spans_from_json(text: str) -> list[Span]:
    return [Span(int(a), int(b), tuple(sec), page) for a, b, page, sec in json.loads(text)]
