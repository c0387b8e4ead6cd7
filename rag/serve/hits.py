"""Hits and answers as the JSON the HTTP API returns (plain dicts; no framework types)."""

from __future__ import annotations

from typing import Any

from rag.types import Chunk, Hit


def chunk_place(chunk: Chunk) -> dict[str, Any]:
    """Where a chunk lies: its source, section path and page (None when the format has none)."""
    return {"source": chunk.source, "section": list(chunk.section), "page": chunk.page}


def hit_json(hit: Hit, *, context: bool = True) -> dict[str, Any]:
    """One hit: place, text, fused score, relevance in [0, 1] where the index computes one,
    each encoder's score and rank, and (``context``) the context window with the chunk's
    offsets inside it, so a page can highlight the chunk where it sits."""
    chunk = hit.chunk
    row: dict[str, Any] = {
        "rank": hit.rank,
        "chunk_id": chunk.id,
        "doc_id": chunk.doc_id,
        **chunk_place(chunk),
        "title": chunk.title,
        "start": chunk.start,
        "end": chunk.end,
        "text": chunk.text,
        "score": float(hit.score),
        "relevance": _optional_float(getattr(hit, "relevance", None)),
        "retriever": hit.source,
        "components": {
            name: {"score": float(c.score), "rank": c.rank} for name, c in hit.components.items()
        },
        "duplicates": [chunk_place(c) for c in getattr(hit, "duplicates", ())],
    }
    if context:
        row["context"] = context_json(chunk)
    return row


def context_json(chunk: Chunk) -> dict[str, Any]:
    """The chunk's context window and where the chunk sits in it (``mark_start:mark_end``).

    A chunk stored without a context window gets its own text as the context."""
    if not chunk.context:
        return {"text": chunk.text, "mark_start": 0, "mark_end": len(chunk.text)}
    start = max(0, chunk.start - chunk.context_start)
    end = min(len(chunk.context), max(start, chunk.end - chunk.context_start))
    return {"text": chunk.context, "mark_start": start, "mark_end": end}


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
