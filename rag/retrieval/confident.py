"""Answering strategies, from the bare LLM to Confident RAG.

Confident RAG follows Chen, Zhao & Chen, "Each to Their Own: Exploring the Optimal Embedding in
RAG" (arXiv 2507.17442, section 3.2): retrieve with each embedding model separately, generate one
answer per model, score every answer's confidence from the LLM's own next-token distributions
(:mod:`rag.confidence`; self-certainty is Kang, Zhao & Song, arXiv 2502.18581) and keep the most
confident. The paper's other baselines are here too:

==============  ==========================================================================
``llm``         :class:`VanillaLLM`: no retrieval (closed book)
``vanilla``     :class:`VanillaRAG`: one retriever's hits, one answer
``mixture``     :class:`MixtureRAG`: every retriever's hits fused (z-scored similarities,
                pooled), one answer
``confident``   :class:`ConfidentRAG`: one answer per retriever, the most confident kept
==============  ==========================================================================

Every strategy produces :class:`~rag.generation.answer.Candidate` answers and keeps the one with
the highest score under ``metric`` (trivially, when there is one). Below ``threshold`` it
abstains: the answer becomes :data:`~rag.generation.prompts.ABSTAIN_TEXT` and the candidates
stay inspectable.

Fast mode (``ConfidentRAG(mode="fast")``, beyond the paper): every candidate is generated for
only ``prefix_tokens`` tokens (in one batch where the backend batches), scored on that prefix,
and only the winner is finished (:meth:`~rag.generation.base.Generator.best_prefix`). With greedy
decoding the winner's finished answer starts with the scored prefix, so the choice is made on
exactly the tokens the final answer begins with; a winner that already ended within the prefix is
not generated further, and the transformers backend continues the winner from its key-value
cache instead of reading its prompt again.
"""

from __future__ import annotations

import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Generator as PyGenerator
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from rag.base import Retriever
from rag.generation.answer import Answer, Candidate, Citation
from rag.generation.base import Generator, Prompt
from rag.generation.prompts import ABSTAIN_TEXT, PromptTemplate, cited_numbers
from rag.generation.types import Generation
from rag.types import Hit

Mode = Literal["full", "fast"]
Context = tuple[str, list[Hit]]
"""A candidate's retriever name and the hits its prompt is built from."""


def score_generation(generation: Generation) -> dict[str, float]:
    """Every confidence metric of ``generation``; empty when it has no token steps."""
    from rag.confidence import score_all

    return score_all(generation) if generation.steps else {}


def candidate_score(candidate: Candidate, metric: str) -> float:
    """The candidate's score under ``metric``; ``-inf`` for an empty answer (nothing to keep).

    A non-empty answer without token distributions cannot be scored: a ValueError says so
    (the backend returned no log-probs).
    """
    if metric in candidate.confidence:
        return candidate.confidence[metric]
    if not candidate.text.strip():
        return -math.inf
    raise ValueError(
        f"candidate {candidate.name!r} has no token log-probabilities to score with {metric!r}; "
        "use a backend that returns them (transformers, llama.cpp, or a server with logprobs)"
    )


def select(scores: Sequence[float]) -> int:
    """Index of the highest score; ties go to the earliest (retriever order decides)."""
    if not scores:
        raise ValueError("no candidates to choose from")
    best = 0
    for i, s in enumerate(scores):
        if s > scores[best]:
            best = i
    return best


def _prompt_key(prompt: Prompt) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(list(prompt), sort_keys=True)


class AnswerStream:
    """Text pieces of an answer as they are produced; ``answer`` is set once they are consumed.

    ``for piece in stream: print(piece, end="")`` then ``stream.answer`` is the full
    :class:`~rag.generation.answer.Answer` (candidates, citations, confidence).
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
    Generation is greedy, at most ``max_new_tokens`` tokens, stopping at the template's stops.
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
        from rag.confidence import get_metric

        get_metric(metric)  # fail early on an unknown name
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.generator = generator
        self.k = k
        self.template = template or PromptTemplate()
        self.metric = metric
        self.threshold = threshold
        self.max_new_tokens = max_new_tokens

    @abstractmethod
    def contexts(self, question: str) -> list[Context]:
        """One (name, hits) per candidate answer to generate."""

    # -- building blocks ------------------------------------------------------------------------

    def prompts(self, question: str, contexts: Sequence[Context]) -> list[Prompt]:
        return [self.template.build(question, hits) for _, hits in contexts]

    def _generate(self, prompts: Sequence[Prompt], max_new_tokens: int) -> list[Generation]:
        """One generation per prompt; identical prompts (encoders that found the same passages
        in the same order) are generated once, since greedy decoding gives the same answer."""
        keys = [_prompt_key(p) for p in prompts]
        first: dict[str, Prompt] = {}
        for key, p in zip(keys, prompts, strict=True):
            first.setdefault(key, p)
        gens = self.generator.generate_many(
            list(first.values()), max_new_tokens=max_new_tokens, stop=self.template.stop
        )
        by_key = dict(zip(first, gens, strict=True))
        return [by_key[key] for key in keys]

    def _finish(
        self, question: str, candidates: list[Candidate], started: float, strategy: str
    ) -> Answer:
        if len(candidates) == 1 and self.threshold is None:
            # nothing to choose between: an answer without log-probs is still an answer
            chosen, best = 0, candidates[0].confidence.get(self.metric, -math.inf)
        else:
            scores = [candidate_score(c, self.metric) for c in candidates]
            chosen = select(scores)
            best = scores[chosen]
        confidence = best if math.isfinite(best) else None
        abstained = self.threshold is not None and (confidence is None or best < self.threshold)
        winner = candidates[chosen]
        numbers = set(cited_numbers(winner.text))
        citations = [
            Citation.from_hit(n, h, n in numbers) for n, h in enumerate(winner.hits, start=1)
        ]
        return Answer(
            question=question,
            text=ABSTAIN_TEXT if abstained else winner.text,
            strategy=strategy,
            candidates=candidates,
            chosen=chosen,
            citations=citations,
            metric=self.metric,
            confidence=confidence,
            threshold=self.threshold,
            abstained=abstained,
            seconds=time.perf_counter() - started,
        )

    def _candidates(self, question: str, contexts: Sequence[Context]) -> list[Candidate]:
        gens = self._generate(self.prompts(question, contexts), self.max_new_tokens)
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
        for piece in self.generator.stream(
            prompt, max_new_tokens=self.max_new_tokens, stop=self.template.stop
        ):
            pieces.append(piece)
            yield piece
        text = "".join(pieces)
        gen = Generation(text=text, steps=[], finish_reason="stop", model=self.generator.name)
        candidate = Candidate(name, hits, gen, text.strip(), {})
        return self._finish(question, [candidate], started, self.name)


class VanillaLLM(Strategy):
    """The LLM alone, without retrieval (the paper's "vanilla LLM" baseline)."""

    name = "llm"

    def contexts(self, question: str) -> list[Context]:
        return [("llm", [])]


class VanillaRAG(Strategy):
    """One retriever's top-``k`` hits in the prompt, one answer."""

    name = "vanilla"

    def __init__(self, generator: Generator, retriever: Retriever, **options: Any) -> None:
        super().__init__(generator, **options)
        self.retriever = retriever

    def contexts(self, question: str) -> list[Context]:
        return [(self.retriever.name, self.retriever.retrieve(question, self.k))]


class MixtureRAG(Strategy):
    """Mixture-Embedding RAG: every retriever's hits fused into one top-``k``, one answer.

    ``fusion`` names a function of :mod:`rag.retrieval.fusion`; the default ``"mixture"`` pools
    the candidates of all embedders by z-scored similarity (arXiv 2507.17442, section 3.1).
    """

    name = "mixture"

    def __init__(
        self,
        generator: Generator,
        retrievers: Sequence[Retriever],
        *,
        fusion: str = "mixture",
        candidates: int = 20,
        **options: Any,
    ) -> None:
        from rag.retrieval.multi import FusionRetriever

        super().__init__(generator, **options)
        self.retriever = FusionRetriever(retrievers, fusion, candidates=candidates)

    def contexts(self, question: str) -> list[Context]:
        return [(self.retriever.name, self.retriever.retrieve(question, self.k))]


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

    def contexts(self, question: str) -> list[Context]:
        return [(r.name, r.retrieve(question, self.k)) for r in self.retrievers]

    def _streams_tokens(self, contexts: Sequence[Context]) -> bool:
        return False  # every candidate is scored, even a lone one

    def _prefix_candidates(
        self, contexts: Sequence[Context], prefixes: Sequence[Generation]
    ) -> list[Candidate]:
        n = min(self.prefix_tokens, self.max_new_tokens)
        return [
            Candidate(
                name,
                hits,
                g,
                g.text.strip(),
                score_generation(g),
                complete=g.finish_reason != "length" or n == self.max_new_tokens,
            )
            for (name, hits), g in zip(contexts, prefixes, strict=True)
        ]

    def _winner_index(self, candidates: Sequence[Candidate]) -> int:
        return select([candidate_score(c, self.metric) for c in candidates])

    def _fast(self, question: str) -> tuple[list[Candidate], list[Prompt], int]:
        """Score every candidate on its prefix and finish the winner (through the generator's
        ``best_prefix``: one batch of prefixes, the winner continued from its cache where the
        backend keeps one). An abstaining winner is not finished."""
        contexts = self.contexts(question)
        prompts = self.prompts(question, contexts)
        keys = [_prompt_key(p) for p in prompts]
        unique = list(dict.fromkeys(keys))  # identical prompts decode once
        slot = {key: i for i, key in enumerate(unique)}
        first = {key: p for key, p in zip(reversed(keys), reversed(prompts), strict=True)}
        chosen: dict[str, Any] = {}

        def choose(prefixes: list[Generation]) -> int | None:
            cands = self._prefix_candidates(contexts, [prefixes[slot[k]] for k in keys])
            w = self._winner_index(cands)
            chosen.update(candidates=cands, winner=w)
            score = candidate_score(cands[w], self.metric)
            if self.threshold is not None and not score >= self.threshold:
                return None
            return slot[keys[w]]

        result = self.generator.best_prefix(
            [first[k] for k in unique],
            choose,
            prefix_tokens=self.prefix_tokens,
            max_new_tokens=self.max_new_tokens,
            stop=self.template.stop,
        )
        candidates, w = chosen["candidates"], chosen["winner"]
        if result.final is not None and not candidates[w].complete:
            candidates[w].text = result.final.text.strip()
            candidates[w].complete = True
        return candidates, prompts, w

    def answer(self, question: str) -> Answer:
        if self.mode == "full":
            return super().answer(question)
        started = time.perf_counter()
        candidates, _, _ = self._fast(question)
        return self._finish(question, candidates, started, self.name)

    def _stream(self, question: str) -> PyGenerator[str, None, Answer]:
        if self.mode == "full":
            return (yield from super()._stream(question))
        answer = self.answer(question)  # the winner is chosen before any of its text exists
        yield answer.text
        return answer


STRATEGIES: dict[str, type[Strategy]] = {
    "llm": VanillaLLM,
    "vanilla": VanillaRAG,
    "mixture": MixtureRAG,
    "confident": ConfidentRAG,
}


def make_strategy(
    name: str, generator: Generator, retrievers: Sequence[Retriever], **options: Any
) -> Strategy:
    """Build strategy ``name`` over ``retrievers`` (``vanilla`` uses the first; ``llm`` none).

    ``options`` go to the strategy's constructor (``k``, ``metric``, ``threshold``,
    ``max_new_tokens``, ``template``; ``mode``/``prefix_tokens`` for ``confident``; ``fusion``
    for ``mixture``). A ValueError names the valid strategies.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}")
    if name == "llm":
        return VanillaLLM(generator, **options)
    if not retrievers:
        raise ValueError(f"strategy {name!r} needs at least one retriever")
    if name == "vanilla":
        return VanillaRAG(generator, retrievers[0], **options)
    return STRATEGIES[name](generator, list(retrievers), **options)  # type: ignore[call-arg]
