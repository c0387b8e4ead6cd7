"""PDF connector (pypdf): text per page, 1-based page numbers, outline titles as sections.

``Document.text`` is the extracted text of the pages that have any, joined by a blank line.
Where pypdf lost the word spaces of a document, they are put back
(:mod:`connectors.pdf_spacing`); running headers and footers are moved from the page text to
``metadata`` (``running_header``, ``running_footer``), and printed page labels, where they
differ from the physical numbers, are kept as ``metadata["page_labels"]``
(:mod:`connectors.pdf_pages`).
When the file has an outline (bookmarks), each entry resolves to a page; a page's text belongs
to the latest entry at or before it, and nested entries give the section path. Where an
entry's title can be found at the start of a line of its page, the section starts there
instead of at the top of the page, so a page holding several headings is split between them.
"""

from __future__ import annotations

import io
import logging
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from connectors.common import (
    ConnectorError,
    Mark,
    collapse_ws,
    explain,
    make_document,
    short_title,
    stem,
)
from connectors.pdf_pages import page_labels, strip_running_lines
from connectors.pdf_spacing import Respacer, looks_glued
from rag.types import Document

PAGE_SEPARATOR = "\n\n"


@contextmanager
def quiet_pypdf() -> Iterator[None]:
    """pypdf logs a warning for every recoverable oddity of real-world files; keep errors only.

    Only pypdf's own logger is touched, and its level is restored afterwards.
    """
    logger = logging.getLogger("pypdf")
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)


def parse_pdf(data: bytes, *, id: str, source: str) -> Document:
    with quiet_pypdf():
        reader = _open(data)
        pages, failed = _page_texts(reader)
        outline = _outline(reader)
        title = _metadata_title(reader)
        labels = page_labels(reader, len(pages))
    respaced = looks_glued(pages)
    if respaced:
        respacer = Respacer(pages)
        pages = [respacer.respace(p) for p in pages]
    pages, running = strip_running_lines(pages, labels)
    if not any(t.strip() for t in pages):
        if failed and len(failed) == len(pages):
            raise ConnectorError(f"text extraction failed on every page ({failed[0][1]})")
        raise ConnectorError(
            f"no text layer: none of its {len(pages)} page(s) has extractable text "
            "(scanned or image-only; needs OCR)"
        )

    parts: list[str] = []
    marks: list[Mark] = []
    offset = 0
    by_page: dict[int, list[tuple[tuple[str, ...], str]]] = {}
    for path, page_index in outline:
        by_page.setdefault(page_index, []).append((path, path[-1]))
    current: tuple[str, ...] = ()
    for index, page_text in enumerate(pages):
        entries = by_page.get(index, [])
        if not page_text.strip():
            if entries:
                current = entries[-1][0]
            continue
        if parts:
            parts.append(PAGE_SEPARATOR)
            offset += len(PAGE_SEPARATOR)
        marks.append((offset, current, index + 1))
        cursor = 0
        matcher = _PageMatcher(page_text) if entries else None
        for path, heading in entries:
            found = matcher.find(heading) if matcher else None
            if found is not None:
                cursor = found
            marks.append((offset + cursor, path, index + 1))
            current = path
        parts.append(page_text)
        offset += len(page_text)

    metadata: dict[str, Any] = {"format": "pdf", "pages": len(pages), "outline": bool(outline)}
    metadata.update(running)
    if labels:
        metadata["page_labels"] = labels
    if respaced:
        metadata["respaced"] = True
    if failed:
        metadata["failed_pages"] = [p for p, _ in failed]
    return make_document(
        "".join(parts),
        marks,
        id=id,
        source=source,
        data=data,
        title=title or stem(source),
        metadata=metadata,
    )


def _open(data: bytes) -> Any:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
    except DependencyError as exc:
        raise ConnectorError(f"encrypted PDF: cannot decrypt ({exc})") from exc
    except PdfReadError as exc:
        raise ConnectorError(f"invalid PDF: {exc}") from exc
    if reader.is_encrypted:
        # Many PDFs are encrypted with an empty user password (printing/copying restrictions
        # only); they open without asking anyone for a password.
        try:
            opened = reader.decrypt("")
        except Exception as exc:  # e.g. DependencyError: an AES file without `cryptography`
            raise ConnectorError(f"encrypted PDF: cannot decrypt ({exc})") from exc
        if not opened:
            raise ConnectorError("encrypted PDF: a password is needed to open it")
    try:
        count = len(reader.pages)
    except PdfReadError as exc:
        raise ConnectorError(f"invalid PDF: {exc}") from exc
    if count == 0:
        raise ConnectorError("invalid PDF: it has no pages")
    return reader


def _page_texts(reader: Any) -> tuple[list[str], list[tuple[int, str]]]:
    texts: list[str] = []
    failed: list[tuple[int, str]] = []
    for number, page in enumerate(reader.pages, start=1):
        try:
            # NUL is never text (broken font maps produce it); it must not reach the index
            texts.append((page.extract_text() or "").replace("\x00", ""))
        except Exception as exc:  # one broken content stream should not lose the other pages
            texts.append("")
            failed.append((number, f"page {number}: {explain(exc, 'pdf')}"))
    return texts, failed


def _outline(reader: Any) -> list[tuple[tuple[str, ...], int]]:
    """Outline entries as (section path, 0-based page), sorted by page (stable)."""
    entries: list[tuple[tuple[str, ...], int]] = []

    def walk(items: list, parents: tuple[str, ...]) -> None:
        last: tuple[str, ...] | None = None
        for item in items:
            if isinstance(item, list):  # the children of the entry just before it
                walk(item, last if last is not None else parents)
                continue
            title = short_title(collapse_ws(str(getattr(item, "title", "") or "")))
            last = (*parents, title) if title else parents
            if not title:
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:  # external or broken destination: keep the title for children
                page = None
            if page is not None and page >= 0:
                entries.append((last, page))

    try:
        walk(reader.outline, ())
    except Exception:  # a broken outline is not a reason to lose the text
        return []
    entries.sort(key=lambda e: e[1])
    return entries


_NUMBERING = r"(?:(?:\d+|[A-Z]|[IVXLC]+)(?:\.\d+)*\.?[ \t]+)?"


class _PageMatcher:
    """Finds outline titles at line starts of one page's text, in order.

    Both sides are compared in NFKC form, since extracted text often keeps typographic
    ligatures ("ﬁ") that outline titles spell out; matches map back to original offsets.
    """

    def __init__(self, page_text: str) -> None:
        folded: list[str] = []
        self.origin: list[int] = []
        for i, ch in enumerate(page_text):
            for c in unicodedata.normalize("NFKC", ch) if ord(ch) > 127 else ch:
                folded.append(c)
                self.origin.append(i)
        self.origin.append(len(page_text))
        self.folded = "".join(folded)
        self.pos = 0  # in folded coordinates; the next title is searched after the last match

    def find(self, title: str) -> int | None:
        """Original offset of ``title`` (after optional numbering) at a line start, or None."""
        words = unicodedata.normalize("NFKC", title).split()
        if not words:
            return None
        # \s* between words: pypdf sometimes drops the spaces of tightly set text
        body = r"\s*".join(re.escape(w) for w in words)
        pattern = r"(?m)^[ \t]*" + _NUMBERING + body + r"(?!\w)"
        # with a start position, ^ still only matches at real line starts
        match = re.compile(pattern).search(self.folded, self.pos)
        if match is None:
            return None
        self.pos = match.start() + 1
        return self.origin[match.start()]


def _metadata_title(reader: Any) -> str | None:
    try:
        meta = reader.metadata
        title = collapse_ws(str(meta.title)) if meta is not None and meta.title else ""
    except Exception:
        return None
    # producers write placeholders such as "untitled"; the file name says more
    return title if title and title.lower() not in {"untitled", "untitled document"} else None
