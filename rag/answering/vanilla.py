"""The paper's single-answer baselines: the LLM alone, and RAG over one retriever."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.answering.strategy import Context, Strategy, needs_retrievers
from rag.base import Retriever
from rag.generation.base import Generator


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

    @classmethod
    def from_retrievers(
        cls, generator: Generator, retrievers: Sequence[Retriever], **options: Any
    ) -> VanillaRAG:
        """Over the first of ``retrievers``."""
        return cls(generator, needs_retrievers(cls.name, retrievers)[0], **options)

    def contexts(self, question: str) -> list[Context]:
        return [(self.retriever.name, self.retriever.retrieve(question, self.k))]
