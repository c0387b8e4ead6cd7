"""DOCX connector (python-docx): body paragraphs and tables in document order.

Paragraphs styled ``Title`` (level 0) or ``Heading N`` (level N), directly or through the
style they are based on, open sections. Tables become one line per row with cells separated
by `` | ``; a cell spanning several grid columns appears once. Blocks are separated by a blank
line. Page headers/footers, comments and footnotes are not part of the body and are left out.
The title is the core property ``title``, else the first ``Title`` paragraph, else the first
heading.
"""

from __future__ import annotations

import io
import re
from typing import Any

from connectors.common import (
    ConnectorError,
    TextBuilder,
    collapse_ws,
    join_cells,
    push_heading,
    stem,
)
from rag.types import Document

_HEADING_STYLE = re.compile(r"^heading ([1-9])$", re.IGNORECASE)


def parse_docx(data: bytes, *, id: str, source: str) -> Document:
    doc = _open(data)
    if doc.element.body is None:  # python-docx would fail on it with an AttributeError
        raise ConnectorError("invalid DOCX: the document has no body (w:body is missing)")
    out = TextBuilder()
    stack: list[tuple[int, str]] = []
    headings: list[tuple[int, str]] = []
    tables = 0
    levels: dict[str | None, int | None] = {}  # per style id: resolving a style costs ~2 ms
    for block in doc.iter_inner_content():
        if hasattr(block, "rows"):  # Table
            rows = [row for row in (_render_row(r) for r in block.rows) if row]
            if rows:
                tables += 1
                out.brk(2)
                out.write("\n".join(rows))
                out.brk(2)
            continue
        text = block.text.strip()
        if not text:
            continue
        style_id = block._p.style  # the w:pStyle id, None for the default style
        if style_id not in levels:
            levels[style_id] = heading_level(block)
        level = levels[style_id]
        out.brk(2)
        if level is not None:
            title = collapse_ws(text)
            headings.append((level, title))
            out.mark(push_heading(stack, level, title))
        out.write(text)
    core_title = ""
    try:
        core_title = collapse_ws(doc.core_properties.title or "")
    except Exception:  # malformed core properties should not lose the body
        core_title = ""
    title = core_title or next((t for lvl, t in headings if lvl == 0), None)
    title = title or (headings[0][1] if headings else stem(source))
    return out.document(
        id=id,
        source=source,
        data=data,
        title=title,
        metadata={"format": "docx", "headings": len(headings), "tables": tables},
        empty_reason="no text (the document body is empty)",
    )


def _open(data: bytes) -> Any:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from lxml import etree

    try:
        return docx.Document(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ConnectorError(f"invalid DOCX: damaged or not a zip archive ({exc})") from exc
    except PackageNotFoundError as exc:
        raise ConnectorError(f"invalid DOCX: {exc}") from exc
    except KeyError as exc:  # a zip without the parts a Word document needs
        named = re.search(r"named '([^']+)'", str(exc))  # zipfile: "There is no item named 'x'"
        part = named.group(1) if named else "a part a Word document needs"
        raise ConnectorError(f"invalid DOCX: missing part {part}") from exc
    except ValueError as exc:  # e.g. a .docm/.dotx content type python-docx refuses
        raise ConnectorError(f"invalid DOCX: {exc}") from exc
    except etree.XMLSyntaxError as exc:  # lxml's message names parser internals, not the file
        raise ConnectorError("invalid DOCX: a part of it is malformed XML") from exc


def heading_level(paragraph: Any) -> int | None:
    """0 for Title, N for Heading N (also through base styles), else None."""
    style = paragraph.style
    seen = 0
    while style is not None and seen < 10:  # base-style chains are short; guard against cycles
        name = (style.name or "").strip()
        if name.lower() == "title":
            return 0
        m = _HEADING_STYLE.match(name)
        if m:
            return int(m.group(1))
        style = style.base_style
        seen += 1
    return None


def _render_row(row: Any) -> str:
    cells: list[Any] = []
    for cell in row.cells:
        if cells and cell is cells[-1]:  # python-docx repeats a merged cell per grid column
            continue
        cells.append(cell)
    return join_cells([_cell_text(c) for c in cells])


def _cell_text(cell: Any) -> str:
    parts: list[str] = []
    for block in cell.iter_inner_content():
        if hasattr(block, "rows"):  # nested table, flattened
            parts.append("; ".join(r for r in (_render_row(r) for r in block.rows) if r))
        else:
            parts.append(block.text)
    return " ".join(p for p in parts if p.strip())
