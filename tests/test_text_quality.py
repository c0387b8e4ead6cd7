"""Text that reads like the document (issue 13): PDF word spacing, running headers and footers,
page labels; numbered headings in plain text; very short chunks joined to a neighbour."""

from __future__ import annotations

import io

import pytest
from fixtures_docs import raw_pdf

from connectors.pdf import parse_pdf
from connectors.pdf_pages import strip_running_lines
from connectors.pdf_spacing import Respacer, looks_glued
from connectors.text import parse_text
from rag.chunking import get_chunker
from rag.tokens import count_tokens
from rag.types import Document, Span


def check_chunks(doc: Document, chunks: list, limit: int) -> None:
    for c in chunks:
        assert c.text == doc.text[c.start : c.end]
        assert doc.text[c.context_start : c.context_end] == c.context
        assert c.context_start <= c.start and c.end <= c.context_end
        assert count_tokens(c.text) <= limit


# -- PDF: running headers and footers, page labels ---------------------------------------------

BODY = [
    ["Glaciers move slowly down the valley.", "Ice flows under its own weight."],
    ["Moraines mark where the ice stood.", "Meltwater carves channels in the rock."],
    ["Crevasses open where the glacier bends.", "Snow turns to firn, then to ice."],
    ["The snout retreats in warm summers.", "Cold winters let it advance again."],
]


def furnished(pages: list[list[str]]) -> list[list[str]]:
    """Each page with a running header (its number inside) and a page-number footer."""
    return [
        [f"Field Guide {i}/ {len(pages)}", *lines, f"- {i} -"] for i, lines in enumerate(pages, 1)
    ]


def test_running_header_and_footer_leave_the_text_for_metadata() -> None:
    doc = parse_pdf(raw_pdf(furnished(BODY)), id="g.pdf", source="g.pdf")
    assert "Field Guide" not in doc.text and "- 2 -" not in doc.text
    assert doc.metadata["running_header"] == "Field Guide 1/ 4"
    assert doc.metadata["running_footer"] == "- 1 -"
    for lines in BODY:  # every body line stays, on its page
        for line in lines:
            assert line in doc.text
    assert [s.page for s in doc.spans] == [1, 2, 3, 4]
    assert doc.text[doc.spans[0].start :].startswith("Glaciers move")
    chunks = get_chunker(max_tokens=16).chunk(doc)
    check_chunks(doc, chunks, 16)
    assert not any("Field Guide" in c.text for c in chunks)


def test_lines_that_do_not_repeat_on_most_pages_stay() -> None:
    pages = [
        "Intro\nText one.",
        "Intro\nText two.",
        "Other\nText three.",
        "Else\nText four.",
        "X\nY.",
    ]
    out, found = strip_running_lines(pages)
    assert out == pages and found == {}  # "Intro" on 2 of 5 pages is no running header
    assert strip_running_lines(pages[:2]) == (pages[:2], {})  # two pages say nothing
    only = ["Draft", "Draft", "Draft"]  # nothing but the repeated line: keep it as the text
    assert strip_running_lines(only) == (only, {})


def test_roman_and_arabic_page_numbers_count_as_one_header() -> None:
    words = ["ice", "snow", "rock", "melt", "firn"]
    pages = [f"Manual {n}\n{w}" for n, w in zip(["i", "ii", "1", "2", "3"], words, strict=True)]
    out, found = strip_running_lines(pages, ["i", "ii", "1", "2", "3"])
    assert out == words and found == {"running_header": "Manual i"}


def test_printed_page_labels_beside_physical_pages() -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(raw_pdf(BODY))))
    writer.set_page_label(0, 1, "/r")  # i, ii
    writer.set_page_label(2, 3, "/D", start=1)  # 1, 2
    buf = io.BytesIO()
    writer.write(buf)
    doc = parse_pdf(buf.getvalue(), id="l.pdf", source="l.pdf")
    assert doc.metadata["page_labels"] == ["i", "ii", "1", "2"]
    chunks = get_chunker(max_tokens=12).chunk(doc)
    assert {(c.page, c.metadata["page_label"]) for c in chunks} == {
        (1, "i"),
        (2, "ii"),
        (3, "1"),
        (4, "2"),
    }
    plain = parse_pdf(raw_pdf(BODY), id="p.pdf", source="p.pdf")  # labels = numbers: none kept
    assert "page_labels" not in plain.metadata
    assert all("page_label" not in c.metadata for c in get_chunker().chunk(plain))


# -- PDF: word spacing --------------------------------------------------------------------------

SPACED = [
    "Each line of the file starts with an address and is followed by the host name.",
    "The system uses the address of the host when no other name is found on the network.",
    "For a system with a permanent address, that address should be used here instead.",
    "Avahi provides a framework for service discovery on the local network.",
    "Each host on the network has an IP address and a name.",
]
GLUED = [
    "Eachlineofthefilestartswithanaddressandisfollowedbythehostname.",
    "Forasystemwithapermanentaddress,thataddressshouldbeusedhereinstead.",
    "ThesystemusestheaddressofthehostwhennoothernameisfoundonthenetworkbyAvahi.",
]


def glued_pages() -> list[str]:
    return ["\n".join(SPACED + GLUED)] * 12


def test_glued_text_is_detected_and_respaced() -> None:
    pages = glued_pages()
    assert looks_glued(pages)
    assert not looks_glued(["\n".join(SPACED)] * 12)  # spaced prose is left as it is
    respacer = Respacer(pages)
    fixed = respacer.respace("\n".join(GLUED))
    assert fixed.splitlines() == [
        "Each line of the file starts with an address and is followed by the host name.",
        "For a system with a permanent address,that address should be used here instead.",
        "The system uses the address of the host when no other name is found on the network by "
        "Avahi.",
    ]
    assert respacer.respace("\n".join(SPACED)) == "\n".join(SPACED)  # spaced lines unchanged


def test_respacing_keeps_names_and_case_shapes() -> None:
    respacer = Respacer(glued_pages())
    assert respacer.split("Avahi") == "Avahi"  # a name the vocabulary lacks is not cut up
    assert respacer.split("thehostAvahi") == "the host Avahi"  # a capital after a small letter
    assert respacer.split("IPaddress") == "IP address"  # no word is cased like this
    assert respacer.respace("mdns ofa") == "mdns of a"


def test_glued_pdf_is_respaced_with_exact_offsets() -> None:
    lines = SPACED + GLUED
    doc = parse_pdf(raw_pdf([lines] * 12), id="s.pdf", source="s.pdf")
    assert doc.metadata["respaced"] is True
    assert "Each line of the file starts with an address" in doc.text
    assert "Eachline" not in doc.text
    check_chunks(doc, get_chunker(max_tokens=24).chunk(doc), 24)
    normal = parse_pdf(raw_pdf(BODY), id="n.pdf", source="n.pdf")
    assert "respaced" not in normal.metadata


# -- plain text: numbered headings --------------------------------------------------------------

MANUAL = """Field Manual

Chapter 1. Getting started

    Read this first.

1.1. Installing packages

    Use the package manager:
    1. Update the lists
    2. Install the package

1.2 Removing packages

    Steps, one paragraph each:

    1. Stop the service.

    2. Remove the package.

Chapter 2

2. Network setup

    The network is set up at boot.

2023 was the year of the rewrite

5

A.1 Tables

    Tables of the appendix.
"""


def section_of(doc: Document, needle: str) -> tuple[str, ...]:
    offset = doc.text.index(needle)
    span = doc.span_at(offset)
    assert span is not None
    return span.section


def test_numbered_headings_become_nested_sections() -> None:
    doc = parse_text(MANUAL.encode(), id="m.txt", source="m.txt")
    assert section_of(doc, "Field Manual") == ()
    assert section_of(doc, "Read this first") == ("Chapter 1. Getting started",)
    assert section_of(doc, "Use the package manager") == (
        "Chapter 1. Getting started",
        "1.1. Installing packages",
    )
    assert section_of(doc, "Steps, one") == ("Chapter 1. Getting started", "1.2 Removing packages")
    assert section_of(doc, "The network is set up") == ("2. Network setup",)
    assert section_of(doc, "Tables of the appendix") == ("2. Network setup", "A.1 Tables")
    chunks = get_chunker(max_tokens=32).chunk(doc)
    check_chunks(doc, chunks, 32)
    assert any(c.section[-1:] == ("1.1. Installing packages",) for c in chunks)


def test_numbered_list_items_and_stray_numbers_are_not_headings() -> None:
    doc = parse_text(MANUAL.encode(), id="m.txt", source="m.txt")
    titles = {s.section[-1] for s in doc.spans if s.section}
    assert titles == {
        "Chapter 1. Getting started",
        "1.1. Installing packages",
        "1.2 Removing packages",
        "Chapter 2",
        "2. Network setup",
        "A.1 Tables",
    }
    # items inside a paragraph (lines next to them) or ending with a period, a year opening a
    # sentence and a bare page number are no headings
    for text in ["1. Update the lists", "1. Stop the service.", "2023 was", "\n5\n"]:
        assert not any(doc.text[s.start :].startswith(text.strip()) for s in doc.spans[1:])


def test_text_without_numbered_headings_has_one_section() -> None:
    doc = parse_text(b"Just a note.\n\nAnother paragraph.\n", id="n.txt", source="n.txt")
    assert [s.section for s in doc.spans] == [()]


# -- chunking: very short chunks join a neighbour ----------------------------------------------


def outlined(text: str, heads: list[tuple[str, tuple[str, ...]]]) -> Document:
    """``text`` with a span per (heading line, section path), from where the line starts."""
    starts = [text.index(line) for line, _ in heads]
    spans = [
        Span(a, b, section)
        for a, b, (_, section) in zip(starts, [*starts[1:], len(text)], heads, strict=True)
    ]
    return Document("d", text, "d", "h", spans=spans)


LONG = "Sentences of the section follow here one by one. " * 12


def test_heading_only_section_joins_its_first_subsection() -> None:
    text = f"2. Packages\n\n2.1. Sources\n\nThe sources list names the archives.\n\n{LONG}"
    doc = outlined(
        text, [("2. Packages", ("2. Packages",)), ("2.1. Sources", ("2. Packages", "2.1. Sources"))]
    )
    before = get_chunker(max_tokens=64, min_chars=0).chunk(doc)
    assert before[0].text == "2. Packages"  # the heading alone
    after = get_chunker(max_tokens=64).chunk(doc)
    check_chunks(doc, after, 64)
    first = after[0]
    assert first.text.startswith("2. Packages\n\n2.1. Sources\n\nThe sources list")
    assert first.section == ("2. Packages", "2.1. Sources") and first.start == 0
    assert all(len(c.text) >= 60 for c in after[:-1])
    assert "".join(c.text for c in after).replace(" ", "").replace("\n", "") == text.replace(
        " ", ""
    ).replace("\n", "")


def test_short_chunk_never_goes_over_the_limit() -> None:
    # the heading and the full chunk after it together are over the limit: both stay
    text = "Short heading\n\n" + "word " * 63 + "end"
    doc = Document("d", text, "d", "h", spans=[Span(0, len(text))])
    chunker = get_chunker("token", max_tokens=64)
    plain = get_chunker("token", max_tokens=64, min_chars=0).chunk(doc)
    chunks = chunker.chunk(doc)
    check_chunks(doc, chunks, 64)
    assert all(c.metadata["tokens"] <= 64 for c in chunks)
    assert len(chunks) == len(plain) == 2  # nothing could be joined


def test_short_last_chunk_of_a_section_joins_the_one_before_not_a_sibling() -> None:
    text = f"3.1 First\n\n{LONG}\n\nA short tail.\n\n3.2 Second\n\n{LONG}"
    doc = outlined(text, [("3.1 First", ("3.1 First",)), ("3.2 Second", ("3.2 Second",))])
    chunks = get_chunker(max_tokens=128).chunk(doc)
    check_chunks(doc, chunks, 128)
    tail = next(c for c in chunks if "A short tail." in c.text)
    assert tail.section == ("3.1 First",) and len(tail.text) > 60
    assert not any(c.section == ("3.2 Second",) and "A short tail" in c.text for c in chunks)


@pytest.mark.parametrize("name", ["token", "sentence", "recursive"])
def test_every_chunker_joins_with_exact_offsets(name: str) -> None:
    heads: list[tuple[str, tuple[str, ...]]] = []
    parts = []
    for i in range(1, 9):  # a chapter heading alone, then its first section's text
        chapter, section = f"{i}. Part {i}", f"{i}.1 Body of part {i}"
        parts += [chapter, section + "\n\n" + "A sentence of the body. " * (i % 4 + 3)]
        heads += [(chapter, (chapter,)), (section, (chapter, section))]
    doc = outlined("\n\n".join(parts), heads)
    chunks = get_chunker(name, max_tokens=64).chunk(doc)
    check_chunks(doc, chunks, 64)
    plain = get_chunker(name, max_tokens=64, min_chars=0).chunk(doc)
    assert sum(len(c.text) < 60 for c in plain) >= 8  # every chapter heading alone
    assert all(len(c.text) >= 60 for c in chunks)
    assert [c.section for c in chunks] == [h[1] for h in heads[1::2]]
    assert [c.start for c in chunks] == [doc.text.index(h[0]) for h in heads[::2]]


def test_min_chars_is_validated() -> None:
    with pytest.raises(ValueError, match="min_chars"):
        get_chunker(min_chars=-1)
