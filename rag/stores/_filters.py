"""A Where filter as Chroma's metadata ``where`` clause (what Chroma can check itself).

Chroma compares flat metadata exactly: a resolved source set becomes ``$in`` and a page range
``$gte``/``$lte``. Globs not resolved against an index's sources, types and section prefixes
cannot be said in Chroma's terms; the store checks those on over-fetched candidates.
"""

from __future__ import annotations

from typing import Any

from rag.types.filters import Where


def chroma_where(where: Where) -> dict[str, Any] | None:
    """The Chroma clause for what of ``where`` Chroma can check, or None when nothing."""
    parts: list[dict[str, Any]] = []
    if where.resolved is not None:
        parts.append({"source": {"$in": sorted(where.resolved)}})
    if where.pages is not None:
        lo, hi = where.pages
        if lo is not None:
            parts.append({"page": {"$gte": lo}})
        if hi is not None:
            parts.append({"page": {"$lte": hi}})
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def fully_pushed(where: Where) -> bool:
    """Whether :func:`chroma_where` says all of ``where`` (no check left for the store)."""
    return (where.resolved is not None or not where.on_source) and not where.sections
