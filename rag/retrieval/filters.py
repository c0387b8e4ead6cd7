"""Filters for retrieval: :class:`~rag.types.filters.Where` and how retrievers take one.

``Where`` lives with the plain data types (stores apply it too, and stores sit below this
layer); this module is where callers find it: ``Where.parse(["source=*.pdf", "page=3-5"])``,
``Where.from_dict({"type": "html"})``, ``where.matches(chunk)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from rag.types.filters import KEYS, FilterError, Where, file_type, parse_pages

# What ``where=`` accepts: a Where, a {key: value} mapping, KEY=VALUE strings, or None.
WhereLike = Where | Mapping[str, Any] | Sequence[str] | None

__all__ = [
    "KEYS",
    "FilterError",
    "Where",
    "WhereLike",
    "file_type",
    "parse_pages",
    "resolve_where",
]


def resolve_where(
    where: WhereLike, sources: Callable[[], Iterable[str]] | None = None
) -> Where | None:
    """``where`` as a Where (``None`` for no condition), its source and type conditions
    resolved against ``sources()`` (an index's sources) when given and not yet resolved."""
    found = Where.coerce(where)
    if found is None or sources is None or found.resolved is not None or not found.on_source:
        return found
    return found.resolve(sources())
