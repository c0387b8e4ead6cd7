"""Small real documents built in tests: PDFs (text, outline, encryption) and DOCX files.

The PDF pages are written by hand (Helvetica text, one line per ``Tj``), then pypdf's public
writer adds outlines, metadata and encryption, so every fixture is a file a PDF reader opens.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

OutlineEntry = tuple[str, int, "Sequence[OutlineEntry]"]  # (title, 0-based page, children)


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def raw_pdf(pages: Sequence[Sequence[str]]) -> bytes:
    """A minimal valid PDF; each page shows its lines top-down (a page with no lines is blank)."""
    n = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n))
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    }
    for i, lines in enumerate(pages):
        page, content = 4 + 2 * i, 5 + 2 * i
        ops = ["BT", "/F1 12 Tf", "16 TL", "72 720 Td"]
        ops += [f"({_escape(line)}) Tj T*" for line in lines]
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1") if lines else b""
        objects[page] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content} 0 R >>"
        ).encode()
        objects[content] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, objects[num])
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for num in range(1, size):
        out += b"%010d 00000 n \n" % offsets[num]
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def make_pdf(
    pages: Sequence[Sequence[str]],
    *,
    outline: Sequence[OutlineEntry] = (),
    title: str | None = None,
    user_password: str | None = None,
    owner_password: str | None = None,
) -> bytes:
    from pypdf import PdfReader, PdfWriter

    raw = raw_pdf(pages)
    if not outline and title is None and user_password is None:
        return raw
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(raw)))

    def add(entries: Sequence[OutlineEntry], parent: object = None) -> None:
        for entry_title, page, children in entries:
            item = writer.add_outline_item(title=entry_title, page_number=page, parent=parent)
            add(children, item)

    add(outline)
    if title is not None:
        writer.add_metadata({"/Title": title})
    if user_password is not None:
        writer.encrypt(user_password, owner_password, algorithm="AES-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def make_docx() -> bytes:
    """A Word file: Title, headings, a paragraph, a 2x3 table with a merged cell, more text."""
    import docx

    document = docx.Document()
    document.core_properties.title = ""
    document.add_heading("Field Report", 0)
    document.add_heading("Introduction", 1)
    document.add_paragraph("The survey covered three valleys.")
    document.add_heading("Measurements", 2)
    table = document.add_table(rows=3, cols=3)
    values = [["Site", "Depth", "pH"], ["North", "12 m", "7.1"], ["South", "9 m", "6.8"]]
    for row, row_values in zip(table.rows, values, strict=True):
        for cell, value in zip(row.cells, row_values, strict=True):
            cell.text = value
    document.add_paragraph("Readings were taken at noon.")
    document.add_heading("Conclusion", 1)
    document.add_paragraph("All sites are within limits.")
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()
