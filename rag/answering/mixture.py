"""Mixture-Embedding RAG (arXiv 2507.17442, section 3.1): every retriever's hits fused into one
ranking, one answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.answering.strategy import Context, Strategy, needs_retrievers
from rag.base import Retriever
from rag.generation.base import Generator
from rag.retrieval.multi import FusionRetriever


class MixtureRAG(Strategy):
    """Every retriever's hits fused into one top-``k``, one answer.

    ``fusion`` names a fusion of :mod:`rag.retrieval.multi` (a method of
    :mod:`rag.retrieval.fusion`); the default ``"mixture"`` pools the candidates of all
    embedders by z-scored similarity (arXiv 2507.17442, section 3.1).
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
        super().__init__(generator, **options)
        self.retriever = FusionRetriever(retrievers, fusion, candidates=candidates)

    @classmethod
    def from_retrievers(
        cls, generator: Generator, retrievers: Sequence[Retriever], **options: Any
    ) -> MixtureRAG:
        return cls(generator, needs_retrievers(cls.name, retrievers), **options)

    def contexts(self, question: str) -> list[Context]:
        return [(self.retriever.name, self.retriever.retrieve(question, self.k))]
