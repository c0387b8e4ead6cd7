"""The Strategy role: retrieve contexts, generate one candidate answer per context, keep the most
confident (or abstain). One required method, ``contexts``; the base class supplies the rest."""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Generator as PyGenerator
from collections.abc import Iterator, Sequence
from typing import Any

from rag.answering.prompts import ABSTAIN_TEXT, PromptTemplate, cited_numbers
from rag.answering.selection import choose, score_generation
from rag.base import Retriever
from rag.confidence import get_metric
from rag.generation.base import Generator, Prompt
from rag.generation.options import GenerationOptions
from rag.types import Answer, Candidate, Citation, Generation, Hit

Context = tuple[str, list[Hit]]
"""A candidate's retriever name and the hits its prompt is built from."""


def needs_retrievers(strategy: str, retrievers: Sequence[Retriever]) -> list[Retriever]:
    """``retrievers`` as a list; a ValueError when there are none."""
    if not retrievers:
        raise ValueError(f"strategy {strategy!r} needs at least one retriever")
    return list(retrievers)


def prompt_key(prompt: Prompt) -> str:
    """A string equal for equal prompts (a string prompt is its own key)."""
    return prompt if isinstance(prompt, str) else json.dumps(list(prompt), sort_keys=True)


class AnswerStream:
    """Text pieces of an answer as they are produced; ``answer`` is set once they are consumed.

    ``for piece in stream: print(piece, end="")`` then ``stream.answer`` is the full
    :class:`~rag.types.Answer` (candidates, citations, confidence).
    """

    def __init__(self, run: PyGenerator[str, None, Answer]) -> None:
        self._run = run
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        self.answer = yield from self._run


class Strategy(ABC):
    """Retrieve contexts, generate a candidate answer per context, keep the most confident one.

    ``metric`` names a function of :mod:`rag.confidence` (higher = more confident);
    ``threshold``: abstain when the chosen answer scores below it (None: never abstain).
    Generation is greedy, at most ``max_new_tokens`` tokens, stopping at the template's stops;
    ``options`` holds those :class:`~rag.generation.options.GenerationOptions`.
    """

    name = "strategy"

    def __init__(
        self,
        generator: Generator,
        *,
        k: int = 4,
        template: PromptTemplate | None = None,
        metric: str = "self_certainty",
        threshold: float | None = None,
        max_new_tokens: int = 32,
    ) -> None:
        get_metric(metric)  # fail early on an unknown name
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.generator = generator
        self.k = k
        self.template = template or PromptTemplate()
        self.metric = metric
        self.threshold = threshold
        self.options = GenerationOptions(max_new_tokens=max_new_tokens, stop=self.template.stop)

    @classmethod
    def from_retrievers(
        cls, generator: Generator, retrievers: Sequence[Retriever], **options: Any
    ) -> Strategy:
        """The strategy over as many of ``retrievers`` as it uses; this default, for strategies
        that retrieve nothing, uses none. ``options`` go to the constructor."""
        return cls(generator, **options)

    @abstractmethod
    def contexts(self, question: str) -> list[Context]:
        """One (name, hits) per candidate answer to generate."""

    # -- building blocks ------------------------------------------------------------------------

    def prompts(self, question: str, contexts: Sequence[Context]) -> list[Prompt]:
        return [self.template.build(question, hits) for _, hits in contexts]

    def _generate_unique(self, prompts: Sequence[Prompt]) -> list[Generation]:
        """One generation per prompt; identical prompts (encoders that found the same passages
        in the same order) are generated once, since greedy decoding gives the same answer."""
        keys = [prompt_key(p) for p in prompts]
        first: dict[str, Prompt] = {}
        for key, p in zip(keys, prompts, strict=True):
            first.setdefault(key, p)
        gens = self.generator.generate_many(list(first.values()), self.options)
        by_key = dict(zip(first, gens, strict=True))
        return [by_key[key] for key in keys]

    def _finish(
        self, question: str, candidates: list[Candidate], started: float, strategy: str
    ) -> Answer:
        """The Answer: the chosen candidate (or an abstention) and the sources it was shown."""
        choice = choose(candidates, self.metric, self.threshold)
        winner = candidates[choice.index]
        numbers = set(cited_numbers(winner.text))
        citations = [
            Citation.from_hit(n, h, n in numbers) for n, h in enumerate(winner.hits, start=1)
        ]
        return Answer(
            question=question,
            text=ABSTAIN_TEXT if choice.abstained else winner.text,
            strategy=strategy,
            candidates=candidates,
            chosen=choice.index,
            citations=citations,
            metric=self.metric,
            confidence=choice.confidence,
            threshold=self.threshold,
            abstained=choice.abstained,
            seconds=time.perf_counter() - started,
        )

    def _candidates(self, question: str, contexts: Sequence[Context]) -> list[Candidate]:
        gens = self._generate_unique(self.prompts(question, contexts))
        return [
            Candidate(name, hits, g, g.text.strip(), score_generation(g))
            for (name, hits), g in zip(contexts, gens, strict=True)
        ]

    # -- the role -------------------------------------------------------------------------------

    def answer(self, question: str) -> Answer:
        started = time.perf_counter()
        candidates = self._candidates(question, self.contexts(question))
        return self._finish(question, candidates, started, self.name)

    def answer_many(self, questions: Sequence[str]) -> list[Answer]:
        return [self.answer(q) for q in questions]

    def stream(self, question: str) -> AnswerStream:
        """The answer's text as it is generated (see :class:`AnswerStream`).

        A single candidate streams token by token (its confidence is then not computed, as
        streaming backends return text only); with a ``threshold`` it is generated first, to be
        able to abstain. Several candidates must all exist before one is chosen, so the chosen
        text comes as one piece.
        """
        return AnswerStream(self._stream(question))

    def _streams_tokens(self, contexts: Sequence[Context]) -> bool:
        """Whether the answer can be streamed as generated (one candidate, no abstention)."""
        return len(contexts) == 1 and self.threshold is None

    def _stream(self, question: str) -> PyGenerator[str, None, Answer]:
        started = time.perf_counter()
        contexts = self.contexts(question)
        if not self._streams_tokens(contexts):
            answer = self._finish(
                question, self._candidates(question, contexts), started, self.name
            )
            yield answer.text
            return answer
        name, hits = contexts[0]
        prompt = self.prompts(question, contexts)[0]
        pieces = []
        for piece in self.generator.stream(prompt, self.options):
            pieces.append(piece)
            yield piece
        text = "".join(pieces)
        gen = Generation(text=text, steps=[], finish_reason="stop", model=self.generator.name)
        candidate = Candidate(name, hits, gen, text.strip(), {})
        return self._finish(question, [candidate], started, self.name)
