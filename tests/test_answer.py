"""Prompts with numbered sources, citation parsing, and the Answer's citable sources."""

from __future__ import annotations

import pytest

from rag.answering.prompts import (
    PromptTemplate,
    cited_numbers,
    format_sources,
    get_template,
    shorten,
    strip_citations,
)
from rag.types import Chunk, Citation, Hit


def hit(title: str | None, text: str, rank: int = 1, **kw) -> Hit:
    c = Chunk(
        id=f"id-{rank}", doc_id=f"d{rank}", text=text, start=5, end=5 + len(text), title=title, **kw
    )
    return Hit(c, score=1.0, rank=rank, source="bm25")


def test_sources_are_numbered_in_order_with_titles_and_sections():
    hits = [
        hit("Paris", "Paris is the capital.", 1, section=("Geo", "Cities")),
        hit(None, "Untitled   text\nover lines.", 2, source="notes/a.md"),
        hit(None, "No title, no source.", 3),
    ]
    assert format_sources(hits).splitlines() == [
        "[1] Paris - Geo > Cities: Paris is the capital.",
        "[2] a.md: Untitled text over lines.",
        "[3] No title, no source.",
    ]


def test_long_sources_are_cut_at_a_word_boundary():
    text = "alpha beta gamma delta epsilon"
    assert shorten(text, 100) == text
    assert shorten(text, 17) == "alpha beta..."
    assert len(shorten(text, 17)) <= 17
    assert shorten("x" * 50, 10) == "xxxxxxx..."  # one long word is cut inside it


def test_cited_numbers_and_stripping():
    text = "Paris [2], the capital [1, 3]; see also [2][4] and [ 5 ]."
    assert cited_numbers(text) == [2, 1, 3, 4, 5]
    assert strip_citations(text) == "Paris, the capital; see also and."
    assert cited_numbers("no sources, [a] or [] here") == []


def test_chat_prompt_holds_instruction_sources_and_question():
    messages = PromptTemplate().build("  What is\nthe capital? ", [hit("Paris", "Paris.")])
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "[1]" in messages[0]["content"]
    assert messages[1]["content"] == "Sources:\n[1] Paris: Paris.\n\nQuestion: What is the capital?"
    closed = PromptTemplate().build("What is the capital?")
    assert "Sources" not in closed[1]["content"] and "sources" not in closed[0]["content"]


def test_completion_prompt_is_one_string_ending_in_answer():
    prompt = get_template("completion").build("Who?", [hit("A", "B.")])
    assert isinstance(prompt, str)
    assert prompt.endswith("Sources:\n[1] A: B.\n\nQuestion: Who?\nAnswer:")
    assert "Answer: Warsaw [1]\n" in prompt  # one worked example: base models copy its form
    bare = PromptTemplate(style="completion", example=None).build("Who?")
    assert (
        bare == "Answer the question with a short answer of a few words.\n\nQuestion: Who?\nAnswer:"
    )
    assert get_template("completion").stop == ("\n",)
    with pytest.raises(ValueError, match="chat, completion"):
        get_template("markdown")
    with pytest.raises(ValueError, match="empty"):
        PromptTemplate().build("   ")


def test_citation_from_hit_keeps_offsets_page_and_section():
    h = hit("Report", "Revenue grew.", 2, source="r.pdf", page=7, section=("Results",))
    c = Citation.from_hit(1, h, cited=True)
    assert (c.n, c.chunk_id, c.doc_id, c.source, c.page, c.section) == (
        1,
        "id-2",
        "d2",
        "r.pdf",
        7,
        ("Results",),
    )
    assert (c.start, c.end, c.cited, c.retriever) == (5, 18, True, "bm25")
    assert c.location() == "r.pdf (p. 7, Results) [5:18]"
    assert c.to_dict()["section"] == ["Results"]
    untitled = Citation.from_hit(1, hit(None, "x", 3), cited=False)
    assert untitled.location() == "d3 [5:6]"
