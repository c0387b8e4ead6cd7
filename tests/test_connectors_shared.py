"""Connectors on the real files in ../shared/data/documents (skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_connectors import check_spans, error, load, sections, text_of

from connectors.directory import load_directory
from rag.types import Document, IngestError

# files.json gives no text-layer flag; these have images and no extractable text at all
IMAGE_ONLY = [
    "007-imagemagick-images_imagemagick-ASCII85Decode.pdf",
    "007-imagemagick-images_imagemagick-CCITTFaxDecode.pdf",
    "007-imagemagick-images_imagemagick-lzw.pdf",
    "019-grayscale-image_grayscale-image.pdf",
    "023-cmyk-image_cmyk-image.pdf",
]


@pytest.fixture(scope="module")
def docs(shared_data: Path) -> Path:
    return shared_data / "documents"


def test_password_pdf_is_reported_encrypted(docs: Path) -> None:
    pdf = docs / "pdf" / "005-libreoffice-writer-password_libreoffice-writer-password.pdf"
    manifest = json.loads((docs / "pdf" / "files.json").read_text("utf-8"))["data"]
    assert any(e["encrypted"] and "005-" in e["path"] for e in manifest)
    reason = error(pdf)
    assert "encrypted" in reason and "password" in reason


@pytest.mark.parametrize("name", IMAGE_ONLY)
def test_image_only_pdfs_have_no_text_layer(docs: Path, name: str) -> None:
    assert "no text layer" in error(docs / "pdf" / name)


def test_outline_pdf_gives_section_paths(docs: Path) -> None:
    doc = load(docs / "pdf" / "006-pdflatex-outline_pdflatex-outline.pdf")
    assert doc.metadata["pages"] == 4 and doc.metadata["outline"]
    assert doc.spans[0].section == () and doc.spans[0].page == 1  # the contents page
    on_page_2 = [
        (s.section, doc.text[s.start : s.end].split("\n")[0]) for s in doc.spans if s.page == 2
    ]
    assert on_page_2 == [
        (("Foo",), "1 Foo"),
        (("Bar",), "2 Bar"),
        (("Baz",), "3 Baz"),
        (("Foo",), "4 Foo"),
    ]
    assert {s.section for s in doc.spans} == {(), ("Foo",), ("Bar",), ("Baz",)}


def test_debian_reference_html_headings(docs: Path) -> None:
    doc = load(docs / "debian-reference" / "ch05.en.html")
    assert doc.title == "Chapter 5. Network setup"
    assert doc.metadata["headings"] == 16
    paths = sections(doc)
    assert paths[0] == ("Chapter 5. Network setup",)
    assert (
        "Chapter 5. Network setup",
        "5.1. The basic network infrastructure",
        "5.1.1. The hostname resolution",
    ) in paths
    assert "Prev" not in doc.text[:200]  # the DocBook navigation bar is dropped
    assert "network-manager | " in doc.text  # tables keep their cells


def test_release_notes_markdown_has_many_headings(docs: Path) -> None:
    doc = load(docs / "markdown" / "about_release-notes.md")
    assert doc.text == (docs / "markdown" / "about_release-notes.md").read_text("utf-8")
    assert doc.title == "Release Notes"
    # 177 lines start with '#'; two of them sit inside a ```markdown example block
    assert doc.metadata["headings"] == 175
    assert ("Release Notes", "Upgrading") in sections(doc)
    assert not any(p[-1] == "Heading producing an anchor" for p in sections(doc) if p)


def test_docx_table_between_paragraphs(docs: Path) -> None:
    doc = load(docs / "docx" / "blk-paras-and-tables.docx")
    assert doc.text.index("Lorem ipsum") < doc.text.index("Text before") < doc.text.index("Donec")
    assert "no text" in error(docs / "docx" / "tbl-having-tables.docx")  # only empty tables


@pytest.mark.slow
def test_geotopo_pdf_parses_117_pages(docs: Path) -> None:
    doc = load(docs / "pdf" / "009-pdflatex-geotopo__GeoTopo-komprimiert.pdf")
    assert doc.metadata["pages"] == 117
    assert doc.title == "Geometrie und Topologie"
    assert {s.page for s in doc.spans} <= set(range(1, 118)) and doc.spans[-1].page == 117
    chapter = ("1 Topologische Grundbegriffe", "1.2 Metrische Räume")
    assert text_of(doc, chapter).startswith("1.2 Metrische Räume")  # ligature-safe match


def test_load_directory_on_shared_documents(docs: Path) -> None:
    # the two big PDFs (~20 s of pypdf) are covered elsewhere
    items = list(load_directory(docs, exclude=["debian-reference.en.pdf", "*GeoTopo*", "*.html"]))
    documents = [i for i in items if isinstance(i, Document)]
    errors = {Path(i.path).name: i.reason for i in items if isinstance(i, IngestError)}
    for doc in documents:
        check_spans(doc)
    assert set(errors) == {
        *IMAGE_ONLY,
        "005-libreoffice-writer-password_libreoffice-writer-password.pdf",
        "sty-having-styles-part.docx",
        "tbl-having-tables.docx",
    }
    ids = [d.id for d in documents]
    assert ids == sorted(ids) and "debian-reference/debian-reference.en.txt.gz" in ids
    assert len(documents) == 54
