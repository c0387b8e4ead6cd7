"""The strategies by name, as the CLI and the evaluation choose them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rag.answering.confident import ConfidentRAG
from rag.answering.mixture import MixtureRAG
from rag.answering.strategy import Strategy
from rag.answering.vanilla import VanillaLLM, VanillaRAG
from rag.base import Retriever
from rag.generation.base import Generator

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
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise ValueError(
            f"unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}"
        ) from None
    return cls.from_retrievers(generator, retrievers, **options)
