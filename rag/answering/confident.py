"""Confident RAG (Chen, Zhao & Chen, "Each to Their Own: Exploring the Optimal Embedding in RAG",
arXiv 2507.17442, section 3.2): one answer per retriever, the most confident kept.

Confidence comes from the LLM's own next-token distributions (:mod:`rag.confidence`;
self-certainty is Kang, Zhao & Song, arXiv 2502.18581).

Fast mode (``ConfidentRAG(mode="fast")``, beyond the paper): every candidate is generated for
only ``prefix_tokens`` tokens (in one batch where the backend batches), scored on that prefix,
and only the winner is finished (:meth:`~rag.generation.base.Generator.best_prefix`). With greedy
decoding the winner's finished answer starts with the scored prefix, so the choice is made on
exactly the tokens the final answer begins with; a winner that already ended within the prefix is
not generated further, and the transformers backend continues the winner from its key-value
cache instead of reading its prompt again.
"""

from __future__ import annotations

import time
from collections.abc import Generator as PyGenerator
from collections.abc import Sequence
from typing import Any, Literal

from rag.answering.selection import candidate_score, score_generation, select
from rag.answering.strategy import Context, Strategy, needs_retrievers, prompt_key
from rag.base import Retriever
from rag.generation.base import Generator
from rag.types import Answer, Candidate, Generation

Mode = Literal["full", "fast"]


class ConfidentRAG(Strategy):
    """One answer per retriever, the most confident under ``metric`` kept (arXiv 2507.17442).

    ``mode="full"`` generates every candidate completely (together, through the generator's
    ``generate_many``: batched or concurrent where the backend allows). ``mode="fast"`` scores
    each candidate on its first ``prefix_tokens`` tokens and finishes only the winner (see the
    module docstring).
    """

    name = "confident"

    def __init__(
        self,
        generator: Generator,
        retrievers: Sequence[Retriever],
        *,
        mode: Mode = "full",
        prefix_tokens: int = 8,
        **options: Any,
    ) -> None:
        super().__init__(generator, **options)
        if not retrievers:
            raise ValueError("ConfidentRAG needs at least one retriever")
        names = [r.name for r in retrievers]
        if len(set(names)) != len(names):
            raise ValueError(f"retriever names must be unique, got {names}")
        if mode not in ("full", "fast"):
            raise ValueError(f"mode must be 'full' or 'fast', got {mode!r}")
        if prefix_tokens < 1:
            raise ValueError(f"prefix_tokens must be >= 1, got {prefix_tokens}")
        self.retrievers = list(retrievers)
        self.mode = mode
        self.prefix_tokens = prefix_tokens
        if mode == "fast":
            self.name = "confident-fast"

    @classmethod
    def from_retrievers(
        cls, generator: Generator, retrievers: Sequence[Retriever], **options: Any
    ) -> ConfidentRAG:
        return cls(generator, needs_retrievers(cls.name, retrievers), **options)

    def contexts(self, question: str) -> list[Context]:
        return [(r.name, r.retrieve(question, self.k)) for r in self.retrievers]

    def _streams_tokens(self, contexts: Sequence[Context]) -> bool:
        return False  # every candidate is scored, even a lone one

    def _prefix_candidates(
        self, contexts: Sequence[Context], prefixes: Sequence[Generation]
    ) -> list[Candidate]:
        whole = self.prefix_tokens >= self.options.max_new_tokens  # the prefix is the answer
        return [
            Candidate(
                name,
                hits,
                g,
                g.text.strip(),
                score_generation(g),
                complete=g.finish_reason != "length" or whole,
            )
            for (name, hits), g in zip(contexts, prefixes, strict=True)
        ]

    def _fast(self, question: str) -> list[Candidate]:
        """Score every candidate on its prefix and finish the winner (through the generator's
        ``best_prefix``: one batch of prefixes, the winner continued from its cache where the
        backend keeps one). An abstaining winner is not finished."""
        contexts = self.contexts(question)
        prompts = self.prompts(question, contexts)
        keys = [prompt_key(p) for p in prompts]
        unique = list(dict.fromkeys(keys))  # identical prompts decode once
        slot = {key: i for i, key in enumerate(unique)}
        first = {key: p for key, p in zip(reversed(keys), reversed(prompts), strict=True)}
        chosen: dict[str, Any] = {}

        def choose(prefixes: list[Generation]) -> int | None:
            cands = self._prefix_candidates(contexts, [prefixes[slot[k]] for k in keys])
            w = select([candidate_score(c, self.metric) for c in cands])
            chosen.update(candidates=cands, winner=w)
            score = candidate_score(cands[w], self.metric)
            if self.threshold is not None and not score >= self.threshold:
                return None
            return slot[keys[w]]

        result = self.generator.best_prefix(
            [first[k] for k in unique], choose, self.options, prefix_tokens=self.prefix_tokens
        )
        candidates, w = chosen["candidates"], chosen["winner"]
        if result.final is not None and not candidates[w].complete:
            candidates[w].text = result.final.text.strip()
            candidates[w].complete = True
        return candidates

    def answer(self, question: str) -> Answer:
        if self.mode == "full":
            return super().answer(question)
        started = time.perf_counter()
        return self._finish(question, self._fast(question), started, self.name)

    def _stream(self, question: str) -> PyGenerator[str, None, Answer]:
        if self.mode == "full":
            return (yield from super()._stream(question))
        answer = self.answer(question)  # the winner is chosen before any of its text exists
        yield answer.text
        return answer
