"""Chunkers on hand-checked examples, and on the shared books and SciFact when present."""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path

import pytest

from rag.chunking import (
    CHUNKERS,
    DEFAULT_CHUNKER,
    RecursiveChunker,
    SentenceChunker,
    TokenChunker,
    get_chunker,
    split_paragraphs,
    split_sentences,
)
from rag.tokens import count_tokens
from rag.types import Chunk, Document, Span, sha256_hex


def make_doc(text: str, spans: list[Span] | None = None, **kw: object) -> Document:
    return Document(
        id=str(kw.get("id", "doc")),
        text=text,
        source=str(kw.get("source", "mem://doc")),
        content_hash=sha256_hex(text),
        title=kw.get("title"),  # type: ignore[arg-type]
        spans=spans or [],
    )


def assert_valid(doc: Document, chunks: list[Chunk], max_tokens: int) -> None:
    """Exact offsets, in order, no overlap, all visible text covered, within the limit."""
    covered = bytearray(len(doc.text))
    previous_end = 0
    for c in chunks:
        assert c.text == doc.text[c.start : c.end] and c.text.strip() == c.text != ""
        assert count_tokens(c.text) <= max_tokens
        assert c.start >= previous_end
        previous_end = c.end
        assert c.context == doc.text[c.context_start : c.context_end]
        assert c.context_start <= c.start and c.end <= c.context_end
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    missing = [i for i, ch in enumerate(doc.text) if not covered[i] and not ch.isspace()]
    assert missing == []


def texts(doc: Document, pieces: list[tuple[int, int]]) -> list[str]:
    return [doc.text[a:b] for a, b in pieces]


# -- sentence splitting -------------------------------------------------------------------------


def test_sentence_splitter_keeps_abbreviations_decimals_and_initials_inside() -> None:
    text = (
        "Dr. Smith et al. (2020) measured e.g. growth of 3.5 cm (Fig. 2b) in the U.S. and "
        "Canada. It rose! Did it fall? J. Austen wrote it, i.e. not Mr. Darcy. No. 5 won."
    )
    assert texts(make_doc(text), split_sentences(text)) == [
        "Dr. Smith et al. (2020) measured e.g. growth of 3.5 cm (Fig. 2b) in the U.S. and Canada.",
        "It rose!",
        "Did it fall?",
        "J. Austen wrote it, i.e. not Mr. Darcy.",
        "No. 5 won.",
    ]


def test_sentence_splitter_quotes_and_lower_case_continuations() -> None:
    text = '"Oh! Single, my dear." "How so?" he asked. It ended... Then it began. Etc. and so on.'
    assert texts(make_doc(text), split_sentences(text)) == [
        '"Oh!',
        'Single, my dear."',
        '"How so?" he asked.',
        "It ended...",
        "Then it began.",
        "Etc. and so on.",
    ]


def test_sentence_splitter_newlines() -> None:
    # A single newline is a hard wrap; a blank line, a list item or a heading starts anew.
    text = "A sentence wrapped\nover two lines. Next one\n\nHeading without stop\n\n- item one\n- item two\n# Title\nBody."
    assert texts(make_doc(text), split_sentences(text)) == [
        "A sentence wrapped\nover two lines.",
        "Next one",
        "Heading without stop",
        "- item one",
        "- item two",
        "# Title\nBody.",
    ]
    assert texts(make_doc(text), split_paragraphs(text)) == [
        "A sentence wrapped\nover two lines. Next one",
        "Heading without stop",
        "- item one\n- item two\n# Title\nBody.",
    ]


def test_sentence_splitter_offsets_in_a_region() -> None:
    text = "Skip this. Keep one. Keep two. Skip that."
    start, end = text.index("Keep"), text.index("Skip that")
    assert texts(make_doc(text), split_sentences(text, start, end)) == ["Keep one.", "Keep two."]


# -- chunkers -----------------------------------------------------------------------------------


def test_section_boundary_is_never_crossed_unless_asked() -> None:
    text = "Intro text here.\n\n# Methods\nWe did things. More things.\n"
    cut = text.index("# Methods")
    spans = [Span(0, cut, ("Intro",), 1), Span(cut, len(text), ("Methods",), 2)]
    doc = make_doc(text, spans, title="Paper", source="paper.md", id="paper.md")
    for name in CHUNKERS:
        chunks = get_chunker(name, max_tokens=256).chunk(doc)
        assert [c.text for c in chunks] == [
            "Intro text here.",
            "# Methods\nWe did things. More things.",
        ]
        assert [(c.section, c.page) for c in chunks] == [(("Intro",), 1), (("Methods",), 2)]
        assert [c.context for c in chunks] == [c.text for c in chunks]  # whole section fits
        first = chunks[0]
        assert (first.title, first.source, first.doc_id) == ("Paper", "paper.md", "paper.md")
        assert first.id == Chunk.make_id("paper.md", first.start, first.end, first.text)
        assert first.metadata["tokens"] == count_tokens(first.text)

    (whole,) = RecursiveChunker(cross_sections=True).chunk(doc)
    assert whole.text == text.strip()
    assert (whole.section, whole.page) == (("Intro",), 1)


def test_sentence_over_the_limit_is_cut_inside_into_near_equal_pieces() -> None:
    long = "It went on " + " ".join(["and on"] * 30) + " until dawn."
    assert count_tokens(long) == 66
    text = f"Short one. {long} Another short one."
    doc = make_doc(text)
    chunks = SentenceChunker(max_tokens=16).chunk(doc)
    assert chunks[0].text == "Short one."
    assert chunks[-1].text == "Another short one."
    middle = chunks[1:-1]
    assert " ".join(c.text for c in middle) == long
    assert [c.metadata["tokens"] for c in middle] == [14, 13, 13, 13, 13]  # ceil(66/16) = 5
    assert_valid(doc, chunks, 16)


def test_sentence_chunker_cuts_only_between_sentences_that_fit() -> None:
    sentences = [f"Sentence number {n} says something short." for n in range(40)]
    text = " ".join(sentences)
    doc = make_doc(text)
    chunks = SentenceChunker(max_tokens=40).chunk(doc)
    assert len(chunks) > 1
    for c in chunks:
        assert c.text.startswith("Sentence number ") and c.text.endswith("short.")
    assert_valid(doc, chunks, 40)


def test_recursive_keeps_paragraphs_whole_where_the_sentence_chunker_mixes_them() -> None:
    para = "The first claim holds. The second claim holds too. A third claim closes it."
    assert count_tokens(para) == 17
    text = f"{para}\n\n{para}\n\n{para}"
    doc = make_doc(text)
    assert [c.text for c in RecursiveChunker(max_tokens=30).chunk(doc)] == [para] * 3
    sentence_chunks = [c.text for c in SentenceChunker(max_tokens=30).chunk(doc)]
    assert sentence_chunks[0].startswith(para + "\n\nThe first claim holds.")


def test_recursive_falls_back_to_words_then_tokens() -> None:
    word = "x" * 400  # one 'word' far over the limit
    text = f"Normal words before. {word} after."
    doc = make_doc(text)
    chunks = RecursiveChunker(max_tokens=20, min_chars=0).chunk(doc)  # the cuts as made
    assert chunks[0].text == "Normal words before."
    assert chunks[-1].text == "after."
    assert "".join(c.text for c in chunks[1:-1]) == word  # the word alone was cut by tokens
    assert len(chunks) - 2 == -(-count_tokens(word) // 20)
    assert_valid(doc, chunks, 20)


def test_token_windows_and_overlap() -> None:
    text = " ".join(["cat"] * 100)  # "cat" then 99 tokens " cat"
    doc = make_doc(text)
    chunks = TokenChunker(max_tokens=10).chunk(doc)
    assert [c.text for c in chunks] == [" ".join(["cat"] * 10)] * 10
    assert all(b.start == a.end + 1 for a, b in pairwise(chunks))

    overlapping = TokenChunker(max_tokens=10, overlap=3).chunk(doc)
    assert all(c.text == " ".join(["cat"] * 10) for c in overlapping[:-1])
    assert all(a.end - b.start == len("cat cat cat") for a, b in pairwise(overlapping))
    assert overlapping[-1].end == len(text)


def test_context_window_and_centred_section() -> None:
    text = " ".join(["cat"] * 100)
    doc = make_doc(text)
    second = TokenChunker(max_tokens=10, context_mode="window", context_tokens=5).chunk(doc)[1]
    assert (second.start, second.end) == (40, 79)
    assert (second.context_start, second.context_end) == (20, 99)  # 5 cats on each side
    assert second.context == " ".join(["cat"] * 20)

    centred = TokenChunker(max_tokens=10, context_tokens=20).chunk(doc)
    assert (centred[1].context_start, centred[1].context_end) == (20, 99)
    # at the section's edge the window moves inwards, keeping 20 tokens
    assert (centred[0].context_start, centred[0].context_end) == (0, 79)
    assert centred[-1].context == " ".join(["cat"] * 20)
    for c in centred:
        assert count_tokens(c.context) <= 20

    whole = TokenChunker(max_tokens=10, context_tokens=0).chunk(doc)
    assert all(c.context == c.text for c in whole)


def test_multibyte_characters_and_special_token_text() -> None:
    text = "Émoji 👩‍👩‍👧 test. 東京は大きい。" * 20 + " <|endoftext|> ends here."
    doc = make_doc(text)
    for name in CHUNKERS:
        chunks = get_chunker(name, max_tokens=7).chunk(doc)
        assert_valid(doc, chunks, 7)


def test_empty_and_whitespace_documents_give_no_chunks() -> None:
    for name in CHUNKERS:
        assert get_chunker(name).chunk(make_doc("")) == []
        assert get_chunker(name).chunk(make_doc(" \n\n\t ")) == []


def test_ids_are_stable_across_runs() -> None:
    doc = make_doc("One sentence. Another sentence. " * 30)
    first = [c.id for c in RecursiveChunker(max_tokens=32).chunk(doc)]
    assert first == [c.id for c in RecursiveChunker(max_tokens=32).chunk(doc)]
    assert len(set(first)) == len(first)


def test_registry_and_validation() -> None:
    assert DEFAULT_CHUNKER == "recursive"
    chunker = get_chunker("sentence", max_tokens=64, context_mode="window", context_tokens=32)
    assert isinstance(chunker, SentenceChunker) and chunker.max_tokens == 64
    assert isinstance(get_chunker(), RecursiveChunker)
    with pytest.raises(ValueError, match="recursive, sentence, token"):
        get_chunker("semantic")
    with pytest.raises(ValueError, match="max_tokens"):
        TokenChunker(max_tokens=2)
    with pytest.raises(ValueError, match="overlap"):
        TokenChunker(max_tokens=10, overlap=10)
    with pytest.raises(ValueError, match="context_mode"):
        SentenceChunker(context_mode="page")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        get_chunker("sentence", overlap=3)


# -- real data (skipped without ../shared/data) --------------------------------------------------

_CHAPTER = re.compile(r"^(?:CHAPTER|Chapter) \w+$", re.M)


def book_document(path: Path) -> Document:
    """A novel with one section per chapter heading (the front matter has no section)."""
    text = path.read_text(encoding="utf-8")
    title = text.strip().splitlines()[0].strip()
    heads = [(m.start(), m.group()) for m in _CHAPTER.finditer(text)]
    spans = [Span(0, heads[0][0])]
    bounds = [a for a, _ in heads[1:]] + [len(text)]
    spans += [Span(a, b, (title, h)) for (a, h), b in zip(heads, bounds, strict=True)]
    return make_doc(text, spans, title=title, id=path.name, source=str(path))


def test_a_novel_chunks_by_chapter(shared_data: Path) -> None:
    doc = book_document(shared_data / "books" / "persuasion.txt")
    chunks = RecursiveChunker(max_tokens=256).chunk(doc)
    assert_valid(doc, chunks, 256)
    chapter_starts = {s.start for s in doc.spans}
    assert not any(c.start < p < c.end for c in chunks for p in chapter_starts)
    chapters = [c for c in chunks if c.section]
    assert chapters[0].text.startswith("Chapter 1\n\n\nSir Walter Elliot")
    assert chapters[0].section == ("Persuasion", "Chapter 1")
    assert all(doc.text[c.context_start] != " " for c in chunks)
    assert all(count_tokens(c.context) <= 512 + 2 for c in chunks[:50])


def test_scifact_abstracts_into_64_token_chunks(shared_data: Path) -> None:
    lines = (shared_data / "scifact" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    chunker = SentenceChunker(max_tokens=64)
    for line in lines[:150]:
        record = json.loads(line)
        text = record["text"]
        doc = make_doc(text, [Span(0, len(text))], id=record["_id"], title=record["title"])
        chunks = chunker.chunk(doc)
        assert_valid(doc, chunks, 64)
        assert all(c.title == record["title"] for c in chunks)
        if count_tokens(text) <= 512:  # the default context: the whole abstract when it fits
            assert all(c.context == text.strip() for c in chunks)
        else:  # else 512 tokens centred on the chunk (counted in place: allow an edge token)
            assert all(count_tokens(c.context) <= 513 for c in chunks)
