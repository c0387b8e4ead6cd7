"""A Where filter as Chroma's metadata ``where`` clause, or as SQL (what a database checks itself).

Chroma compares flat metadata exactly: a resolved source set becomes ``$in`` and a page range
``$gte``/``$lte``. Globs not resolved against an index's sources, types and section prefixes
cannot be said in Chroma's terms; the store checks those on over-fetched candidates.
"""

from __future__ import annotations

from collections.abc import Callable
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


def sql_where(
    where: Where | None, encode: Callable[[str], str] = str
) -> tuple[str | None, list[Any]]:
    """The SQL condition (psycopg ``%s`` placeholders) for what of ``where`` SQL checks: resolved
    sources as ``source = ANY(...)`` (each written as ``encode`` stores it), pages as a range;
    with its parameters, or ``None`` when nothing can match."""
    if where is None:
        return "TRUE", []
    parts, params = ["TRUE"], []
    if where.resolved is not None:
        if not where.resolved:
            return None, []
        parts.append("source = ANY(%s)")
        params.append([encode(s) for s in sorted(where.resolved)])
    if where.pages is not None:
        lo, hi = where.pages
        if lo is not None and hi is not None:
            parts.append("page BETWEEN %s AND %s")
            params += [lo, hi]
        elif lo is not None:
            parts.append("page >= %s")
            params.append(lo)
        else:
            parts.append("page <= %s")
            params.append(hi)
    return " AND ".join(parts), params
