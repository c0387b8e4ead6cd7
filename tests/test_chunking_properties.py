"""Property tests: every chunker, on random texts and random section spans, keeps its promises."""

from __future__ import annotations

from bisect import bisect_right
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunking import CHUNKERS, get_chunker, split_sentences
from rag.chunking.offsets import token_starts
from rag.tokens import count_tokens, get_encoding
from rag.types import Document, Span, sha256_hex

SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

any_char = st.characters(exclude_categories=("Cs",))  # no lone surrogates (not valid UTF-8)
words = st.sampled_from(
    [
        "The",
        "cat",
        "sat.",
        "Mr.",
        "e.g.",
        "Fig.",
        "3.14",
        "et al.",
        "U.S.",
        "!",
        "?",
        "...",
        '"Oh!"',
        "(see",
        "ref.)",
        "—",
        "naïve",
        "Straße",
        "東京は大きい。",
        "😀",
        "👩‍👩‍👧",
        "\u200b",
        "<|endoftext|>",
        "- item",
        "# Heading",
        "1.",
        "a",
    ]  # fmt: skip
)
pieces = st.one_of(
    words,
    words,
    st.text(any_char, min_size=1, max_size=20),
    st.text(st.sampled_from("abxyz0é😀東."), min_size=40, max_size=300),  # long, no spaces
)
separators = st.sampled_from([" ", " ", " ", "\n", "\n\n", "\n\n\n", "\t", "", "  \n "])


@st.composite
def documents(draw: st.DrawFn) -> Document:
    parts = draw(st.lists(st.tuples(pieces, separators), max_size=60))
    text = draw(separators) + "".join(p + s for p, s in parts)
    cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=6))) - {0, len(text)})
    sections = st.sampled_from([(), ("A",), ("A", "a1"), ("B",)])
    bounds = [0, *cuts, len(text)]
    spans = [
        Span(a, b, draw(sections), draw(st.none() | st.integers(1, 9))) for a, b in pairwise(bounds)
    ]
    if draw(st.booleans()) and len(spans) > 1:  # sometimes leave gaps between spans
        spans = [
            Span(s.start + 1, s.end, s.section, s.page) if s.end - s.start > 1 else s for s in spans
        ]
    return Document("doc", text, "mem://doc", sha256_hex(text), title="T", spans=spans)


chunker_settings = st.fixed_dictionaries(
    {
        "name": st.sampled_from(sorted(CHUNKERS)),
        "max_tokens": st.integers(4, 48),
        "context_mode": st.sampled_from(["section", "window"]),
        "context_tokens": st.integers(0, 80),
        "cross_sections": st.booleans(),
        "min_chars": st.sampled_from([0, 0, 60]),
    }
)


def enclosing(section: tuple[str, ...]) -> set[tuple[str, ...]]:
    """The sections that enclose ``section`` (its non-empty proper prefixes)."""
    return {section[:i] for i in range(1, len(section))}


def section_of(doc: Document, offset: int) -> tuple[str, ...]:
    """The section a character belongs to: its span's, else the span's before, else the first."""
    index = bisect_right([s.start for s in doc.spans], offset) - 1
    return doc.spans[max(index, 0)].section


@SETTINGS
@given(documents(), chunker_settings, st.integers(0, 10))
def test_chunks_keep_their_promises(doc: Document, options: dict, overlap: int) -> None:
    name = options.pop("name")
    max_tokens = options["max_tokens"]
    if name == "token":
        options["overlap"] = min(overlap, max_tokens - 1)
    chunks = get_chunker(name, **options).chunk(doc)
    text = doc.text
    covered = bytearray(len(text))
    for i, c in enumerate(chunks):
        assert c.text == text[c.start : c.end] and c.text and c.text.strip() == c.text
        assert count_tokens(c.text) <= max_tokens
        assert c.metadata["tokens"] == count_tokens(c.text)
        assert c.context == text[c.context_start : c.context_end]
        assert c.context_start <= c.start < c.end <= c.context_end
        # a short chunk joined to the one after it may start in an enclosing section (a
        # heading joined to its first subsection) and is filed under the section it joined
        home = {c.section} | enclosing(c.section) if options["min_chars"] else {c.section}
        if not options["min_chars"]:
            assert c.section == section_of(doc, c.start)
        elif not options["cross_sections"]:
            assert section_of(doc, c.start) in home
        if not options["cross_sections"]:
            assert {section_of(doc, p) for p in range(c.start, c.end)} <= home
            assert section_of(doc, c.end - 1) == c.section or not options["min_chars"]
            if options["context_mode"] == "section":
                sections = {section_of(doc, p) for p in range(c.context_start, c.context_end)}
                assert sections <= home
        if i:
            previous = chunks[i - 1]
            assert previous.start < c.start and previous.end < c.end
            if not options.get("overlap"):
                assert previous.end <= c.start
            else:
                assert c.start <= previous.end or text[previous.end : c.start].isspace()
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    assert [i for i, ch in enumerate(text) if not covered[i] and not ch.isspace()] == []


@SETTINGS
@given(documents())
def test_sentences_partition_the_visible_text(doc: Document) -> None:
    text = doc.text
    previous_end = 0
    visible = 0
    for start, end in split_sentences(text):
        assert previous_end <= start < end
        assert not text[start].isspace() and not text[end - 1].isspace()
        assert text[previous_end:start].strip() == ""
        visible += sum(not ch.isspace() for ch in text[start:end])
        previous_end = end
    assert text[previous_end:].strip() == ""
    assert visible == sum(not ch.isspace() for ch in text)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.text(any_char, max_size=200))
def test_token_starts_are_character_boundaries_rounded_up(text: str) -> None:
    enc = get_encoding()
    starts = token_starts(text, offset=7)
    byte_start = 0
    for start, token in zip(starts, enc.encode_ordinary(text), strict=True):
        # the first character boundary at or after the token's first byte
        assert len(text[: start - 7].encode()) >= byte_start
        assert start - 7 == 0 or len(text[: start - 8].encode()) < byte_start
        byte_start += len(enc.decode_single_token_bytes(token))
