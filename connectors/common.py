"""What every connector shares: the connector signature, its error, and span building.

A connector is a plain function ``parse(data: bytes, *, id: str, source: str) -> Document`` that
raises :class:`ConnectorError` with a short human reason when the bytes cannot become a
Document. The loaders in :mod:`connectors.directory` turn that (and any unexpected exception)
into an :class:`rag.types.IngestError`, so one bad file never stops a batch.

Spans are built from "marks": positions where the section path or the page changes. Every
span is trimmed of surrounding whitespace and empty spans are dropped, so spans are ordered,
non-overlapping and non-empty, and together they cover every non-whitespace character of
``Document.text``.
"""

from __future__ import annotations

import codecs
import re
import zlib
from collections.abc import Iterable, Sequence
from pathlib import PurePath
from typing import Protocol

from rag.types import Document, Span, sha256_hex


class ConnectorError(Exception):
    """The file cannot become a Document; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MissingExtra(ImportError):
    """An optional backend is not installed; raised to the caller instead of per-file errors."""


class Connector(Protocol):
    def __call__(self, data: bytes, *, id: str, source: str) -> Document: ...


# (offset, section path, page): from ``offset`` on, text lies in ``section`` on ``page``.
Mark = tuple[int, tuple[str, ...], "int | None"]


def build_spans(text: str, marks: Iterable[Mark]) -> list[Span]:
    """Spans from change points; each region is trimmed of whitespace, empty ones dropped."""
    ordered = sorted(marks, key=lambda m: m[0])  # stable: a later mark at the same offset wins
    spans: list[Span] = []
    for i, (start, section, page) in enumerate(ordered):
        end = ordered[i + 1][0] if i + 1 < len(ordered) else len(text)
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            spans.append(Span(start, end, section, page))
    return spans


# Section paths are copied into every chunk: a "heading" of a megabyte (one huge line) would
# multiply the index, so titles are cut here.
MAX_TITLE_CHARS = 200


def short_title(title: str) -> str:
    """``title``, cut at a word boundary to :data:`MAX_TITLE_CHARS` (with "…") when longer."""
    if len(title) <= MAX_TITLE_CHARS:
        return title
    cut = title[: MAX_TITLE_CHARS - 1]
    space = cut.rfind(" ")
    return (
        cut[:space] if space > MAX_TITLE_CHARS // 2 else cut
    ).rstrip() + "\N{HORIZONTAL ELLIPSIS}"


def push_heading(stack: list[tuple[int, str]], level: int, title: str) -> tuple[str, ...]:
    """Update a heading stack in place for a heading of ``level``; return the new section path.

    A heading closes every open heading of the same or a deeper level, so skipped levels
    (h1 then h3) nest naturally and a later h2 replaces both.
    """
    while stack and stack[-1][0] >= level:
        stack.pop()
    stack.append((level, short_title(title)))
    return tuple(t for _, t in stack)


_WS = re.compile(r"\s+")


def collapse_ws(text: str) -> str:
    return _WS.sub(" ", text).strip()


def make_document(
    text: str,
    marks: Iterable[Mark],
    *,
    id: str,
    source: str,
    data: bytes,
    title: str | None,
    metadata: dict,
    empty_reason: str = "no text",
) -> Document:
    """Assemble a Document; a document without any non-whitespace text is an error."""
    spans = build_spans(text, marks)
    if not spans:
        raise ConnectorError(empty_reason)
    return Document(
        id=id,
        text=text,
        source=source,
        content_hash=sha256_hex(data),
        title=short_title(title) if title else None,
        spans=spans,
        metadata=metadata,
    )


def decode_text(data: bytes) -> str:
    """Decode UTF-8 (a BOM is dropped); UTF-16 only when a BOM declares it.

    No guessing of legacy encodings: a wrong guess silently corrupts the text that gets
    indexed, so anything else is reported as an error the user can fix (``iconv``).
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ConnectorError(f"not valid UTF-16 text (broken at byte {exc.start})") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConnectorError(
            f"not valid UTF-8 text (invalid byte at offset {exc.start}); convert it to UTF-8"
        ) from exc


FORMAT_NAMES = {"pdf": "PDF", "docx": "DOCX", "html": "HTML", "markdown": "Markdown"}


def explain(exc: BaseException, format: str) -> str:
    """A reason in words for an unexpected parser exception.

    Never the library's own message: codec, zlib, lxml or AttributeError text says nothing to
    the person who owns the file (the exception itself is logged at debug level by the loader).
    """
    kind = FORMAT_NAMES.get(format, format)
    if isinstance(exc, RecursionError):
        return f"{kind} structure nested too deeply to read"
    if isinstance(exc, MemoryError):
        return f"{kind} file too large to read in memory"
    if isinstance(exc, zlib.error):
        return f"damaged {kind} file (corrupt compressed data)"
    if isinstance(exc, UnicodeError):
        return f"damaged {kind} file (undecodable text)"
    names = {c.__name__ for c in type(exc).__mro__}
    if "LimitReachedError" in names:  # pypdf's own caps (streams, arrays, page tree)
        return f"{kind} file beyond its reader's safety limits (too large, deep or many parts)"
    if type(exc).__module__.split(".")[0] in {"lxml", "xml", "pyexpat"}:
        return f"damaged {kind} file (malformed XML)"
    return f"damaged or unsupported {kind} file (its reader failed)"


def stem(source: str) -> str:
    """A fallback title: the file name without its extensions."""
    name = PurePath(source).name  # this platform's separators: a POSIX name may hold "\\"
    return name.split(".", 1)[0] or name


class TextBuilder:
    """Accumulates extracted text with lazy block breaks and section/page marks.

    Breaks are emitted only before the next text, so the text never starts or ends with
    separators and consecutive breaks collapse (the larger wins).
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self.length = 0
        self._pending = 0
        self.marks: list[Mark] = []

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def document(
        self,
        title: str | None,
        metadata: dict,
        *,
        id: str,
        source: str,
        data: bytes,
        empty_reason: str = "no text",
    ) -> Document:
        """The Document of what was written (text before the first mark has no section)."""
        marks = [(0, (), None), *self.marks]
        return make_document(
            self.text,
            marks,
            id=id,
            source=source,
            data=data,
            title=title,
            metadata=metadata,
            empty_reason=empty_reason,
        )

    def brk(self, newlines: int = 1) -> None:
        self._pending = max(self._pending, newlines)

    def _last_char(self) -> str:
        return self._parts[-1][-1] if self._parts else "\n"

    def write(self, text: str) -> None:
        """Append ``text`` verbatim (after any pending break)."""
        if not text:
            return
        if self._pending and self._parts:
            if self._parts[-1].endswith(" "):  # no trailing space before a line break
                trimmed = self._parts[-1].rstrip(" ")
                self.length -= len(self._parts[-1]) - len(trimmed)
                self._parts[-1] = trimmed
            sep = "\n" * self._pending
            self._parts.append(sep)
            self.length += len(sep)
        self._pending = 0
        self._parts.append(text)
        self.length += len(text)

    def write_inline(self, text: str) -> None:
        """Append text with HTML-style whitespace collapsing."""
        text = _WS.sub(" ", text)
        at_line_start = self._pending or self._last_char() in "\n "
        if at_line_start:
            text = text.lstrip(" ")
        self.write(text)

    def mark(self, section: tuple[str, ...], page: int | None = None) -> None:
        self.marks.append((self.length, section, page))


def join_cells(cells: Sequence[str]) -> str:
    """One table row as text: cells separated by `` | `` (empty rows give "")."""
    cleaned = [collapse_ws(c) for c in cells]
    return " | ".join(cleaned).strip() if any(cleaned) else ""
