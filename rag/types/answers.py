"""What a RAG strategy returns: the answer, the sources it was given (citable), and every
candidate answer with its confidence, so that a choice or an abstention can be inspected."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rag.types.documents import Hit
from rag.types.generation import Generation


@dataclass(frozen=True)
class Citation:
    """Source ``[n]`` of the prompt: where its chunk lies and whether the answer cited it."""

    n: int
    chunk_id: str
    doc_id: str
    source: str
    title: str | None
    page: int | None
    section: tuple[str, ...]
    start: int
    end: int
    text: str
    cited: bool
    retriever: str

    @classmethod
    def from_hit(cls, n: int, hit: Hit, cited: bool) -> Citation:
        c = hit.chunk
        return cls(
            n=n,
            chunk_id=c.id,
            doc_id=c.doc_id,
            source=c.source,
            title=c.title,
            page=c.page,
            section=c.section,
            start=c.start,
            end=c.end,
            text=c.text,
            cited=cited,
            retriever=hit.source,
        )

    def location(self) -> str:
        """``source (p. 3, Intro > Setup) [start:end]``: enough to open the passage."""
        where = [f"p. {self.page}"] if self.page is not None else []
        if self.section:
            where.append(" > ".join(self.section))
        name = self.source or self.title or self.doc_id
        inside = f" ({', '.join(where)})" if where else ""
        return f"{name}{inside} [{self.start}:{self.end}]"

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "section": list(self.section)}


@dataclass
class Candidate:
    """One candidate answer: the retriever (encoder) whose hits it saw, and its confidence.

    ``generation`` is what was scored: the whole answer, or in fast mode only its first tokens
    (``complete`` is then False until the answer was finished; ``text`` is the finished text).
    ``confidence`` holds every metric of :mod:`rag.confidence` on ``generation`` (empty when the
    backend returned no token distributions).
    """

    name: str
    hits: list[Hit]
    generation: Generation
    text: str
    confidence: dict[str, float] = field(default_factory=dict)
    complete: bool = True

    def to_dict(self, *, steps: bool = False) -> dict[str, Any]:
        gen = self.generation.to_dict()
        if not steps:
            gen.pop("steps")
            gen["completion_tokens"] = self.generation.completion_tokens
        return {
            "name": self.name,
            "text": self.text,
            "complete": self.complete,
            "confidence": self.confidence,
            "hits": [
                {"chunk_id": h.chunk.id, "doc_id": h.chunk.doc_id, "score": h.score, "rank": h.rank}
                for h in self.hits
            ],
            "generation": gen,
        }


@dataclass
class Answer:
    """The answer to ``question`` and how it was reached.

    ``text`` is the chosen candidate's answer, or :data:`~rag.answering.prompts.ABSTAIN_TEXT`
    when ``abstained`` (then ``draft`` still holds what the best candidate said). ``citations``
    are the sources of the chosen candidate's prompt, numbered as the model saw them, with
    ``cited`` set for those the answer names. ``chosen`` indexes ``candidates``; ``confidence``
    is the chosen candidate's score under ``metric``.
    """

    question: str
    text: str
    strategy: str
    candidates: list[Candidate]
    chosen: int
    citations: list[Citation]
    metric: str | None = None
    confidence: float | None = None
    threshold: float | None = None
    abstained: bool = False
    seconds: float = 0.0

    @property
    def draft(self) -> str:
        """The chosen candidate's own text (differs from ``text`` only when abstaining)."""
        return self.candidates[self.chosen].text

    @property
    def winner(self) -> str:
        """The name of the chosen candidate's retriever (the encoder that won)."""
        return self.candidates[self.chosen].name

    @property
    def cited(self) -> list[Citation]:
        return [c for c in self.citations if c.cited]

    def to_dict(self, *, steps: bool = False) -> dict[str, Any]:
        """A JSON-ready dict (``steps=True`` keeps every token's distribution summary)."""
        return {
            "question": self.question,
            "text": self.text,
            "draft": self.draft,
            "strategy": self.strategy,
            "winner": self.winner,
            "chosen": self.chosen,
            "metric": self.metric,
            "confidence": self.confidence,
            "threshold": self.threshold,
            "abstained": self.abstained,
            "seconds": self.seconds,
            "citations": [c.to_dict() for c in self.citations],
            "candidates": [c.to_dict(steps=steps) for c in self.candidates],
        }
