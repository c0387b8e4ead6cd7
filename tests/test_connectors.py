"""Connectors on small files built here: structure, offsets, and honest errors."""

from __future__ import annotations

import gzip
import hashlib
import sys
from pathlib import Path

import pytest
from fixtures_docs import make_docx, make_pdf, raw_pdf

from connectors.directory import (
    CONNECTORS,
    detect_format,
    get,
    load_directory,
    load_file,
)
from rag.types import Document, IngestError


def check_spans(doc: Document) -> None:
    """The promise every connector keeps: ordered, non-overlapping, non-empty spans in text."""
    assert doc.spans, doc.id
    previous_end = 0
    for span in doc.spans:
        assert previous_end <= span.start < span.end <= len(doc.text)
        piece = doc.text[span.start : span.end]
        assert piece.strip() and piece == piece.strip()
        previous_end = span.end
    # every non-whitespace character lies in some span
    covered = sum(s.end - s.start for s in doc.spans)
    assert len("".join(doc.text.split())) <= covered


def load(path: Path) -> Document:
    item = load_file(path)
    assert isinstance(item, Document), item
    check_spans(item)
    return item


def error(path: Path) -> str:
    item = load_file(path)
    assert isinstance(item, IngestError), item
    return item.reason


def sections(doc: Document) -> list[tuple[str, ...]]:
    return [s.section for s in doc.spans]


def text_of(doc: Document, section: tuple[str, ...]) -> str:
    return "\n".join(doc.text[s.start : s.end] for s in doc.spans if s.section == section)


# -- Markdown ---------------------------------------------------------------------------------

MARKDOWN = """\
---
title: Front matter
---
Intro before any heading.

# Guide

Some text.

```bash
# not a heading, a shell comment
ls
```

~~~~
## still code
~~~~

Setext Section
--------------

    # indented code, not a heading

### Deep *emphasis* [link](http://example.com) {#anchor}

- a list item
---

Another Top
===========

Closing words.
"""


def test_markdown_headings_fences_and_offsets(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_bytes(MARKDOWN.encode("utf-8"))
    doc = load(path)
    assert doc.text == MARKDOWN  # raw text kept, so offsets index the file
    assert doc.title == "Guide"
    assert doc.metadata["format"] == "markdown"
    assert sections(doc) == [
        (),
        ("Guide",),
        ("Guide", "Setext Section"),
        ("Guide", "Setext Section", "Deep emphasis link"),
        ("Another Top",),
    ]
    guide = text_of(doc, ("Guide",))
    assert guide.startswith("# Guide") and "# not a heading" in guide and "## still code" in guide
    assert text_of(doc, ("Guide", "Setext Section")).startswith("Setext Section\n---")
    assert "# indented code" in text_of(doc, ("Guide", "Setext Section"))
    # "- a list item" followed by --- is a list and a rule, not a heading
    assert "- a list item\n---" in text_of(doc, ("Guide", "Setext Section", "Deep emphasis link"))
    assert text_of(doc, ("Another Top",)) == "Another Top\n===========\n\nClosing words."


def test_markdown_bom_and_no_headings(tmp_path: Path) -> None:
    path = tmp_path / "notes.markdown"
    path.write_bytes(b"\xef\xbb\xbfjust a line\n")
    doc = load(path)
    assert doc.text == "just a line\n" and doc.title == "notes"
    assert sections(doc) == [()]


def test_markdown_that_is_binary_is_an_error(tmp_path: Path) -> None:
    png = tmp_path / "image.md"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    assert error(png) == "binary file (PNG image)"
    nul = tmp_path / "data.md"
    nul.write_bytes(b"# Title\n\x00\x01\x02 binary payload")
    assert error(nul).startswith("binary file")


# -- HTML -------------------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html><head><title>Bird Guide</title><style>p { color: red }</style>
<script>var tracking = "SCRIPT_TEXT";</script></head>
<body>
<header><p>SITE BANNER</p></header>
<nav><a href="/">NAV LINK</a></nav>
<main>
  <article>
    <header><h1>Owls</h1></header>
    <p>Owls   hunt
       at <b>night</b>.</p>
    <noscript>NOSCRIPT TEXT</noscript>
    <h2>Barn owl</h2>
    <p>Heart-shaped face.<br>Pale feathers.</p>
    <table><tr><th>Name</th><th>Weight</th></tr><tr><td>Barn</td><td>0.5 kg</td></tr></table>
    <pre>  keep   this
    spacing</pre>
    <aside>ASIDE TEXT</aside>
    <h3>Calls</h3><p>Screeches.</p>
    <h2>Snowy owl</h2><ul><li>White</li><li>Arctic</li></ul>
  </article>
</main>
<footer>FOOTER TEXT</footer>
</body></html>"""


def test_html_main_text_headings_and_dropped_chrome(tmp_path: Path) -> None:
    path = tmp_path / "owls.html"
    path.write_text(HTML, "utf-8")
    doc = load(path)
    assert doc.title == "Bird Guide"
    for junk in ("SCRIPT_TEXT", "color", "SITE BANNER", "NAV LINK", "NOSCRIPT", "ASIDE", "FOOTER"):
        assert junk not in doc.text
    assert sections(doc) == [
        ("Owls",),
        ("Owls", "Barn owl"),
        ("Owls", "Barn owl", "Calls"),
        ("Owls", "Snowy owl"),
    ]
    assert text_of(doc, ("Owls",)) == "Owls\n\nOwls hunt at night."
    barn = text_of(doc, ("Owls", "Barn owl"))
    assert "Heart-shaped face.\nPale feathers." in barn
    assert "Name | Weight\nBarn | 0.5 kg" in barn
    assert "  keep   this\n    spacing" in barn
    assert text_of(doc, ("Owls", "Snowy owl")) == "Snowy owl\n\nWhite\nArctic"


def test_html_title_falls_back_to_h1_and_declared_charset_is_used(tmp_path: Path) -> None:
    page = '<html><head><meta charset="iso-8859-1"></head><body><h1>Caf\xe9</h1><p>cr\xe8me</p></body></html>'
    path = tmp_path / "cafe.htm"
    path.write_bytes(page.encode("latin-1"))
    doc = load(path)
    assert doc.title == "Café" and "crème" in doc.text
    assert sections(doc) == [("Café",)]


def test_html_is_sniffed_whatever_the_extension(tmp_path: Path) -> None:
    path = tmp_path / "page.txt"
    path.write_text("<!doctype html><html><body><h2>Hi</h2><p>there</p></body></html>", "utf-8")
    doc = load(path)
    assert doc.metadata["format"] == "html" and doc.text == "Hi\n\nthere"


# -- plain text -------------------------------------------------------------------------------


def test_text_utf8_with_bom_and_utf16(tmp_path: Path) -> None:
    bom = tmp_path / "bom.txt"
    bom.write_bytes("\ufeffZürich\n".encode())
    doc = load(bom)
    assert doc.text == "Zürich\n" and doc.spans[0].section == () and doc.spans[0].page is None
    assert doc.content_hash == hashlib.sha256(bom.read_bytes()).hexdigest()
    utf16 = tmp_path / "wide.txt"
    utf16.write_bytes("Grüße".encode("utf-16"))  # with BOM, so NUL bytes are expected
    assert load(utf16).text == "Grüße"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"  \n\t\n", "no text"),
        ("caf\xe9 cr\xe8me".encode("latin-1"), "not valid UTF-8 text"),
        (b"text\x00with\x00nuls", "binary file (contains NUL bytes)"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 20, "binary file (ELF executable)"),
        (bytes(range(1, 9)) * 100, "binary file (mostly control bytes)"),
    ],
)
def test_text_errors(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "file.txt"
    path.write_bytes(content)
    assert error(path).startswith(reason)


def test_gzipped_text_is_read_and_hashed_as_stored(tmp_path: Path) -> None:
    path = tmp_path / "manual.txt.gz"
    path.write_bytes(gzip.compress(b"Chapter one.\n"))
    doc = load(path)
    assert doc.text == "Chapter one.\n" and doc.metadata["format"] == "text"
    assert doc.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert doc.title == "manual"


# -- PDF --------------------------------------------------------------------------------------

PAGES = [
    ["Contents", "1 Birds", "2 Fish"],
    ["1 Birds", "Birds have feathers.", "1.1 Owls", "Owls hunt at night."],
    ["Owls also eat insects."],
    ["2 Fish", "Fish have gills."],
]
OUTLINE = [("Birds", 1, [("Owls", 1, [])]), ("Fish", 3, [])]


def test_pdf_pages_and_outline_sections(tmp_path: Path) -> None:
    path = tmp_path / "animals.pdf"
    path.write_bytes(make_pdf(PAGES, outline=OUTLINE, title="Animal Notes"))
    doc = load(path)
    assert doc.title == "Animal Notes"
    assert doc.metadata == {"format": "pdf", "pages": 4, "outline": True}
    got = [(s.page, s.section, doc.text[s.start : s.end].splitlines()[0]) for s in doc.spans]
    assert got == [
        (1, (), "Contents"),
        (2, ("Birds",), "1 Birds"),  # split inside page 2 where each title starts a line
        (2, ("Birds", "Owls"), "1.1 Owls"),
        (3, ("Birds", "Owls"), "Owls also eat insects."),  # a page belongs to the latest entry
        (4, ("Fish",), "2 Fish"),
    ]
    assert "Owls hunt at night." in doc.text[doc.spans[2].start : doc.spans[2].end]


def test_pdf_without_outline_has_one_span_per_page_and_skips_blank_pages(tmp_path: Path) -> None:
    path = tmp_path / "plain.pdf"
    path.write_bytes(make_pdf([["first page"], [], ["third page"]]))
    doc = load(path)
    assert [(s.page, s.section) for s in doc.spans] == [(1, ()), (3, ())]
    assert [doc.text[s.start : s.end] for s in doc.spans] == ["first page", "third page"]
    assert doc.title == "plain"


def test_pdf_image_only_encrypted_and_corrupt(tmp_path: Path) -> None:
    blank = tmp_path / "scan.pdf"
    blank.write_bytes(make_pdf([[], []]))
    assert "no text layer" in error(blank)

    locked = tmp_path / "locked.pdf"
    locked.write_bytes(make_pdf([["secret plans"]], user_password="hunter2"))
    reason = error(locked)
    assert "encrypted" in reason and "password" in reason

    # encrypted with an empty user password (restrictions only): readable
    restricted = tmp_path / "restricted.pdf"
    restricted.write_bytes(make_pdf([["open to all"]], user_password="", owner_password="x"))
    assert load(restricted).text.strip() == "open to all"

    data = make_pdf(PAGES)
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(data[: len(data) // 3])
    assert isinstance(load_file(truncated), IngestError)

    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"%PDF-1.7\n this is not a pdf body at all \n")
    assert error(garbage).startswith("invalid PDF")

    not_pdf = tmp_path / "notes.pdf"
    not_pdf.write_bytes(b"plain words, no PDF header")
    assert error(not_pdf).startswith("invalid PDF")


def test_pdf_named_txt_is_parsed_as_pdf(tmp_path: Path) -> None:
    path = tmp_path / "report.txt"
    path.write_bytes(raw_pdf([["Quarterly numbers"]]))
    doc = load(path)
    assert doc.metadata["format"] == "pdf" and doc.text.strip() == "Quarterly numbers"
    assert doc.spans[0].page == 1


def test_pdf_recovery_warnings_are_silenced_and_logger_restored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import io
    import logging

    from pypdf import PdfReader

    data = make_pdf(PAGES)
    start = data.rindex(b"startxref\n") + len(b"startxref\n")
    broken = data[:start] + b"9" + data[start:]  # a wrong xref offset pypdf recovers from
    caplog.set_level(logging.WARNING)
    PdfReader(io.BytesIO(broken)).pages[0].extract_text()
    assert any(r.name.startswith("pypdf") for r in caplog.records)  # pypdf does complain

    caplog.clear()
    path = tmp_path / "odd.pdf"
    path.write_bytes(broken)
    before = logging.getLogger("pypdf").level
    assert "Birds have feathers." in load(path).text
    assert not [r for r in caplog.records if r.name.startswith("pypdf")]
    assert logging.getLogger("pypdf").level == before


# -- DOCX -------------------------------------------------------------------------------------


def test_docx_headings_table_and_body_order(tmp_path: Path) -> None:
    path = tmp_path / "report.docx"
    path.write_bytes(make_docx())
    doc = load(path)
    assert doc.title == "Field Report"
    assert sections(doc) == [
        ("Field Report",),
        ("Field Report", "Introduction"),
        ("Field Report", "Introduction", "Measurements"),
        ("Field Report", "Conclusion"),
    ]
    measurements = text_of(doc, ("Field Report", "Introduction", "Measurements"))
    assert measurements == (
        "Measurements\n\nSite | Depth | pH\nNorth | 12 m | 7.1\nSouth | 9 m | 6.8\n\n"
        "Readings were taken at noon."
    )
    assert doc.metadata["tables"] == 1


def test_docx_is_sniffed_and_corrupt_docx_is_an_error(tmp_path: Path) -> None:
    renamed = tmp_path / "report.bin"
    renamed.write_bytes(make_docx())
    assert load(renamed).metadata["format"] == "docx"

    corrupt = tmp_path / "broken.docx"
    corrupt.write_bytes(make_docx()[:2000])
    assert error(corrupt).startswith("invalid DOCX")

    not_zip = tmp_path / "fake.docx"
    not_zip.write_bytes(b"I am not a zip archive")
    assert error(not_zip).startswith("invalid DOCX")

    import zipfile

    other_zip = tmp_path / "bundle.zip"
    with zipfile.ZipFile(other_zip, "w") as zf:
        zf.writestr("readme.txt", "hello")
    assert error(other_zip) == "binary file (zip archive, not a Word document)"


# -- directory loading, registry ------------------------------------------------------------


def make_tree(root: Path) -> None:
    (root / "b").mkdir(parents=True)
    (root / "a.md").write_text("# A\n\nalpha\n", "utf-8")
    (root / "b" / "c.txt").write_text("gamma\n", "utf-8")
    (root / "b" / "empty.txt").write_bytes(b"")
    (root / "b" / "z.pdf").write_bytes(raw_pdf([["zulu"]]))
    (root / ".hidden.md").write_text("# hidden\n", "utf-8")
    (root / ".git").mkdir()
    (root / ".git" / "config.txt").write_text("secret\n", "utf-8")
    big = "".join(f"line {i} of a big file\n" for i in range(300))[:5000]
    (root / "big.txt").write_text(big, "utf-8")  # varied text: "x" * 5000 is refused as garbage


def test_load_directory_order_ids_errors_and_hidden(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "docs"
    make_tree(root)
    monkeypatch.chdir(tmp_path)
    items = list(load_directory("docs", max_bytes=4096))
    ids = [i.id if isinstance(i, Document) else i.path for i in items]
    assert ids == [
        "a.md",
        "b/c.txt",
        str(root.resolve() / "b" / "empty.txt"),
        "b/z.pdf",
        str(root.resolve() / "big.txt"),
    ]
    assert items[2].reason == "empty file"
    assert items[4].reason == "file too large (5000 bytes > 4096 byte limit)"
    assert items[0].source == str(root.resolve() / "a.md")

    # the same ids from another working directory
    monkeypatch.chdir(root / "b")
    again = [i.id for i in load_directory(root, max_bytes=4096) if isinstance(i, Document)]
    assert again == ["a.md", "b/c.txt", "b/z.pdf"]


def test_load_directory_include_exclude(tmp_path: Path) -> None:
    make_tree(tmp_path)
    ids = lambda **kw: [i.id for i in load_directory(tmp_path, **kw) if isinstance(i, Document)]  # noqa: E731
    assert ids(include=["*.md"]) == ["a.md"]
    assert ids(include=["b/*"]) == ["b/c.txt", "b/z.pdf"]
    assert ids(include=["**/*.txt"], exclude=["big.txt"]) == ["b/c.txt"]
    assert ids(exclude=["b/**"]) == ["a.md", "big.txt"]


def test_unexpected_parser_exception_becomes_error_and_batch_goes_on(
    tmp_path: Path, monkeypatch
) -> None:
    make_tree(tmp_path)

    def broken_markdown(data: bytes, *, id: str, source: str) -> Document:
        raise RuntimeError("parser bug")

    monkeypatch.setitem(CONNECTORS, "markdown", broken_markdown)
    items = list(load_directory(tmp_path, include=["*.md", "*.txt"], exclude=["big.txt"]))
    # a clear reason, not the parser's words (those go to the debug log)
    assert isinstance(items[0], IngestError)
    assert items[0].reason == "damaged or unsupported Markdown file (its reader failed)"
    assert [i.id for i in items[1:] if isinstance(i, Document)] == ["b/c.txt"]


def test_load_file_id_is_the_path_as_given_and_format_can_be_forced(
    tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "page.md").write_text("<html><body><h1>T</h1></body></html>", "utf-8")
    monkeypatch.chdir(tmp_path)
    sniffed = load_file("page.md")
    assert sniffed.id == "page.md" and sniffed.metadata["format"] == "html"
    forced = load_file("page.md", format="markdown")
    assert forced.metadata["format"] == "markdown" and forced.text.startswith("<html>")


def test_registry_get_names_the_choices() -> None:
    assert get("pdf") is CONNECTORS["pdf"]
    with pytest.raises(ValueError, match="docx, html, markdown, pdf, text, unstructured"):
        get("rtf")
    with pytest.raises(ValueError, match="choose one of"):
        load_file(__file__, format="word")


def test_detect_format() -> None:
    assert detect_format(b"junk\n%PDF-1.4 ...", "a.md") == "pdf"
    assert detect_format(b'<?xml version="1.0"?>\n<html xmlns="x">', "a.txt") == "html"
    assert detect_format(b"# Title", "README.MD") == "markdown"
    assert detect_format(b"name,value\n", "LICENSE") == "text"


def test_unstructured_missing_extra_message(monkeypatch) -> None:
    from connectors.unstructured import require_unstructured

    monkeypatch.setitem(sys.modules, "unstructured", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "unstructured.partition", None)
    with pytest.raises(ImportError, match=r'pip install "situated-rag\[unstructured\]"'):
        require_unstructured()
    with pytest.raises(ImportError, match="situated-rag"):
        list(load_directory(Path(__file__).parent, format="unstructured"))
