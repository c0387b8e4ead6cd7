"""Where: a filter on chunks by source glob, file type, page range and section prefix.

Plain data with pure methods, so that every layer (stores, retrievers, the CLI, an HTTP API)
shares one meaning. Every condition given must hold (AND); a key given twice narrows it:

- ``source=GLOB``: ``fnmatch`` on the chunk's source path, whole or from any folder down
  (``docs/*`` matches ``/srv/docs/a.md``; ``*`` crosses ``/``). Case-sensitive, like paths.
- ``type=KIND[,KIND...]``: the file type from the source's extension (``.gz`` dropped):
  ``html`` (``.htm``, ``.xhtml``), ``markdown`` (``md``), ``text`` (``txt``, or no extension),
  ``pdf``, ``docx``; any other extension stands for itself. Alternatives within one value OR.
- ``page=N``, ``N-M``, ``N-`` or ``-M``: pages (1-based, inclusive); chunks without a page fail.
- ``section=PREFIX``: some heading on the chunk's heading path starts with PREFIX, ignoring case
  (``A > B`` matches the path from one heading on, so ``Chapter 2 > 2.1`` works too).

:meth:`Where.resolve` turns the source and type conditions into the exact set of matching
sources of an index, which a store can push down (Chroma's ``$in``).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rag.types.documents import Chunk

KEYS = ("source", "type", "page", "section")
_KINDS = {
    "htm": "html",
    "xhtml": "html",
    "md": "markdown",
    "markdown": "markdown",
    "mdown": "markdown",
    "mkd": "markdown",
    "txt": "text",
    "": "text",
}


class FilterError(ValueError):
    """A malformed or unknown filter (its message names what is accepted)."""


def file_type(source: str) -> str:
    """The type of a source path: its extension as a kind (``"html"``, ``"pdf"``, ...)."""
    name = os.path.basename(source).lower().removesuffix(".gz")
    ext = name.rpartition(".")[2] if "." in name.lstrip(".") else ""
    return _KINDS.get(ext, ext)


def _kind(value: str) -> str:
    value = value.strip().lower().lstrip(".")
    return _KINDS.get(value, value)


def parse_pages(value: str) -> tuple[int | None, int | None]:
    """``"3"`` -> (3, 3), ``"3-5"`` -> (3, 5), ``"3-"`` -> (3, None), ``"-5"`` -> (None, 5)."""
    text = value.strip()
    lo_text, dash, hi_text = text.partition("-")
    try:
        lo = int(lo_text) if lo_text.strip() else None
        hi = (int(hi_text) if hi_text.strip() else None) if dash else lo
    except ValueError:
        raise FilterError(f"page must be N, N-M, N- or -M, got {value!r}") from None
    if (lo is None and hi is None) or any(p is not None and p < 1 for p in (lo, hi)):
        raise FilterError(f"page must be N, N-M, N- or -M with pages from 1, got {value!r}")
    if lo is not None and hi is not None and lo > hi:
        raise FilterError(f"page range {value!r} is empty (first page after last)")
    return lo, hi


@dataclass(frozen=True)
class Where:
    """Conditions a chunk must all meet (see the module docstring); empty: every chunk.

    ``types`` is ``None`` for no condition (an empty set, from contradictory types, matches
    nothing); ``pages`` is an inclusive ``(first, last)`` with ``None`` for an open end.
    ``resolved`` is set by :meth:`resolve`: the sources that meet the source and type conditions.
    """

    sources: tuple[str, ...] = ()
    types: frozenset[str] | None = None
    pages: tuple[int | None, int | None] | None = None
    sections: tuple[str, ...] = ()
    resolved: frozenset[str] | None = None

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def parse(cls, items: Iterable[str]) -> Where:
        """From ``KEY=VALUE`` strings (the CLI's ``--where``), AND-combined."""
        pairs = []
        for item in items:
            key, eq, value = item.partition("=")
            if not eq:
                raise FilterError(f"a filter is KEY=VALUE with KEY one of {KEYS}, got {item!r}")
            pairs.append((key, _unquote(value)))
        return cls.from_pairs(pairs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Where:
        """From a mapping such as a JSON body: ``{"source": "*.pdf", "page": "3-5"}``; a value
        may be a list (each item a condition, AND), and ``page`` an int or ``[first, last]``."""
        pairs: list[tuple[str, str]] = []
        for key, value in data.items():
            if key == "page" and isinstance(value, Sequence) and not isinstance(value, str):
                if len(value) != 2:
                    raise FilterError(f"page as a list is [first, last], got {value!r}")
                lo, hi = ("" if v is None else str(v) for v in value)
                pairs.append((key, f"{lo}-{hi}"))
                continue
            values = value if isinstance(value, list | tuple) else [value]
            for v in values:
                if not isinstance(v, str | int) or isinstance(v, bool):
                    raise FilterError(f"filter {key!r} takes a string, got {v!r}")
                pairs.append((key, str(v)))
        return cls.from_pairs(pairs)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> Where:
        where = cls()
        for key, value in pairs:
            where = where.narrowed(key.strip().lower(), value)
        return where

    @classmethod
    def coerce(cls, value: Where | Mapping[str, Any] | Sequence[str] | None) -> Where | None:
        """A Where from what callers pass (a Where, a dict, ``KEY=VALUE`` strings or None);
        ``None`` when there is no condition at all."""
        if value is None or isinstance(value, Where):
            where = value
        elif isinstance(value, Mapping):
            where = cls.from_dict(value)
        elif isinstance(value, str):
            where = cls.parse([value])
        else:
            where = cls.parse(value)
        return None if where is None or where.empty else where

    def narrowed(self, key: str, value: str) -> Where:
        """This filter with one more condition."""
        if key not in KEYS:
            raise FilterError(f"unknown filter key {key!r}; use one of {', '.join(KEYS)}")
        if not value.strip():
            raise FilterError(f"filter {key!r} needs a value")
        if key == "source":
            return replace(self, sources=(*self.sources, value.strip()), resolved=None)
        if key == "type":
            kinds = frozenset(_kind(v) for v in value.split(",") if v.strip())
            types = kinds if self.types is None else self.types & kinds
            return replace(self, types=types, resolved=None)
        if key == "page":
            lo, hi = parse_pages(value)
            if self.pages is not None:
                lo = _bound(max, lo, self.pages[0])
                hi = _bound(min, hi, self.pages[1])
            return replace(self, pages=(lo, hi))
        return replace(self, sections=(*self.sections, " ".join(value.split())))

    # -- meaning ----------------------------------------------------------------------------

    @property
    def empty(self) -> bool:
        return not (self.sources or self.sections) and self.types is None and self.pages is None

    @property
    def on_source(self) -> bool:
        """Whether a condition bears on the source (so :meth:`resolve` can push it down)."""
        return bool(self.sources) or self.types is not None

    def source_matches(self, source: str) -> bool:
        if self.resolved is not None:
            return source in self.resolved
        if self.types is not None and file_type(source) not in self.types:
            return False
        return all(_glob(source, g) for g in self.sources)

    def page_matches(self, page: int | None) -> bool:
        if self.pages is None:
            return True
        if page is None:
            return False
        lo, hi = self.pages
        return (lo is None or page >= lo) and (hi is None or page <= hi)

    def section_matches(self, section: Sequence[str]) -> bool:
        if not self.sections:
            return True
        paths = [" > ".join(section[i:]).casefold() for i in range(len(section))]
        return all(any(p.startswith(s.casefold()) for p in paths) for s in self.sections)

    def matches(self, chunk: Chunk) -> bool:
        """Whether ``chunk`` meets every condition."""
        return (
            self.source_matches(chunk.source)
            and self.page_matches(chunk.page)
            and self.section_matches(chunk.section)
        )

    def resolve(self, sources: Iterable[str]) -> Where:
        """This filter with ``resolved`` = the ``sources`` meeting its source and type
        conditions (unchanged when it has none)."""
        if not self.on_source:
            return self
        plain = replace(self, resolved=None)
        return replace(self, resolved=frozenset(s for s in sources if plain.source_matches(s)))

    def to_dict(self) -> dict[str, Any]:
        """The conditions as :meth:`from_dict` reads them back (``resolved`` left out)."""
        out: dict[str, Any] = {}
        if self.sources:
            out["source"] = list(self.sources)
        if self.types is not None:
            out["type"] = ",".join(sorted(self.types)) if self.types else []
        if self.pages is not None:
            out["page"] = list(self.pages)
        if self.sections:
            out["section"] = list(self.sections)
        return out


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _bound(pick: Any, a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else pick(a, b)


def _glob(source: str, pattern: str) -> bool:
    if fnmatch.fnmatchcase(source, pattern):
        return True
    return fnmatch.fnmatchcase(source, "*/" + pattern.lstrip("/")) and not pattern.startswith("/")
