"""Prompts for answering from retrieved chunks: numbered sources in, answers citing ``[n]`` out.

Small local models have small context windows and slow CPU prefill, so every source is cut to
``max_source_chars`` (at a word boundary) and the instruction asks for a few words. Two styles:
``"chat"`` (a system and a user message, for instruction-tuned models with a chat template) and
``"completion"`` (one plain string ending in ``Answer:``, for base models such as gemma-3-270m).
Both stop at the first line break: a short answer is one line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rag.generation.base import Prompt
from rag.types import Chunk, Hit

ABSTAIN_TEXT = "not enough evidence in the sources"
"""What an answer says when its confidence is below the abstention threshold."""

_CITATION = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")

Style = Literal["chat", "completion"]


def shorten(text: str, max_chars: int) -> str:
    """``text`` with white space collapsed, cut to at most ``max_chars`` at a word boundary."""
    flat = " ".join(text.split())
    if max_chars <= 0 or len(flat) <= max_chars:
        return flat
    cut = flat.rfind(" ", 0, max_chars - 3)
    return flat[: cut if cut > 0 else max_chars - 3] + "..."


def source_label(chunk: Chunk) -> str:
    """A short heading for a source: its title (or file name), then its section path."""
    title = chunk.title or (chunk.source.rsplit("/", 1)[-1] if chunk.source else "")
    parts = [p for p in (title, " > ".join(chunk.section)) if p]
    return " - ".join(parts)


def format_sources(hits: Sequence[Hit], max_chars: int = 400) -> str:
    """``[1] Title: text`` lines, numbered from 1 in the order given."""
    lines = []
    for n, hit in enumerate(hits, start=1):
        label = source_label(hit.chunk)
        body = shorten(hit.chunk.text, max_chars)
        lines.append(f"[{n}] {label}: {body}" if label else f"[{n}] {body}")
    return "\n".join(lines)


def cited_numbers(text: str) -> list[int]:
    """Source numbers cited in ``text`` as ``[2]`` or ``[1, 3]``, in order of first mention."""
    seen: dict[int, None] = {}
    for group in _CITATION.findall(text):
        for part in re.split(r"[,;]", group):
            seen.setdefault(int(part), None)
    return list(seen)


def strip_citations(text: str) -> str:
    """``text`` without ``[n]`` markers (and the space before them)."""
    return " ".join(re.sub(r"\s*" + _CITATION.pattern, "", text).split())


@dataclass(frozen=True)
class PromptTemplate:
    """How a question (with or without sources) becomes a prompt.

    ``instruction`` is the system message (chat) or the first line (completion); ``closed_book``
    replaces it when there are no sources. ``stop`` is what a generator should stop at.
    """

    style: Style = "chat"
    instruction: str = (
        "Answer the question using the numbered sources. Reply with a short answer of a few "
        "words, then the number of the source you used, like [1]."
    )
    closed_book: str = "Answer the question with a short answer of a few words."
    max_source_chars: int = 300
    example: tuple[str, str, str] | None = (
        "Marie Curie: Marie Curie was a physicist and chemist born in Warsaw in 1867.",
        "Where was Marie Curie born?",
        "Warsaw",
    )
    """(source, question, answer) shown once before the question in completion prompts: base
    models follow a worked example far better than an instruction."""

    @property
    def stop(self) -> tuple[str, ...]:
        return ("\n",)

    def build(self, question: str, hits: Sequence[Hit] = ()) -> Prompt:
        """The prompt for ``question`` over ``hits`` (numbered in order); no hits = closed book."""
        question = " ".join(question.split())
        if not question:
            raise ValueError("the question is empty")
        if self.style == "completion":
            head = self.instruction if hits else self.closed_book
            shot = ""
            if self.example is not None:
                source, q, a = self.example
                cite = " [1]" if hits else ""
                shot = (f"Sources:\n[1] {source}\n\n" if hits else "") + (
                    f"Question: {q}\nAnswer: {a}{cite}\n\n"
                )
            sources = f"Sources:\n{format_sources(hits, self.max_source_chars)}\n\n" if hits else ""
            return f"{head}\n\n{shot}{sources}Question: {question}\nAnswer:"
        if not hits:
            return [
                {"role": "system", "content": self.closed_book},
                {"role": "user", "content": question},
            ]
        sources = format_sources(hits, self.max_source_chars)
        return [
            {"role": "system", "content": self.instruction},
            {"role": "user", "content": f"Sources:\n{sources}\n\nQuestion: {question}"},
        ]


def get_template(style: Style) -> PromptTemplate:
    """The default template of a style (a ValueError names the valid styles)."""
    if style not in ("chat", "completion"):
        raise ValueError(f"unknown prompt style {style!r}; choose one of: chat, completion")
    return PromptTemplate(style=style)
