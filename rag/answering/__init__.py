"""Answering strategies, from the bare LLM to Confident RAG, over retrievers and generators.

Confident RAG follows Chen, Zhao & Chen, "Each to Their Own: Exploring the Optimal Embedding in
RAG" (arXiv 2507.17442, section 3.2): retrieve with each embedding model separately, generate one
answer per model, score every answer's confidence from the LLM's own next-token distributions
(:mod:`rag.confidence`) and keep the most confident. The paper's other baselines are here too:

==============  ==========================================================================
``llm``         :class:`VanillaLLM`: no retrieval (closed book)
``vanilla``     :class:`VanillaRAG`: one retriever's hits, one answer
``mixture``     :class:`MixtureRAG`: every retriever's hits fused (z-scored similarities,
                pooled), one answer
``confident``   :class:`ConfidentRAG`: one answer per retriever, the most confident kept
                (``mode="fast"``: scored on prefixes, only the winner finished)
==============  ==========================================================================

Every strategy produces :class:`~rag.types.Candidate` answers and keeps the one with the highest
score under ``metric`` (trivially, when there is one). Below ``threshold`` it abstains: the
answer becomes :data:`ABSTAIN_TEXT` and the candidates stay inspectable.

=====================  ===================================================================
:mod:`.prompts`        numbered sources in, ``[n]`` citations out; the abstention text
:mod:`.selection`      scoring candidates, choosing one, abstaining (pure functions)
:mod:`.strategy`       the Strategy role (``contexts`` required), answers and streams
:mod:`.vanilla`        VanillaLLM, VanillaRAG
:mod:`.mixture`        MixtureRAG
:mod:`.confident`      ConfidentRAG, full and fast
:mod:`.registry`       the strategies by name
=====================  ===================================================================

Importing this package loads no LLM backend: a generator imports its framework when first used.
"""

from __future__ import annotations

from rag.answering.confident import ConfidentRAG
from rag.answering.mixture import MixtureRAG
from rag.answering.prompts import ABSTAIN_TEXT, PromptTemplate, get_template
from rag.answering.registry import STRATEGIES, make_strategy
from rag.answering.selection import Choice, candidate_score, choose, score_generation, select
from rag.answering.strategy import AnswerStream, Context, Strategy
from rag.answering.vanilla import VanillaLLM, VanillaRAG
from rag.types import Answer, Candidate, Citation

__all__ = [
    "ABSTAIN_TEXT",
    "STRATEGIES",
    "Answer",
    "AnswerStream",
    "Candidate",
    "Choice",
    "Citation",
    "ConfidentRAG",
    "Context",
    "MixtureRAG",
    "PromptTemplate",
    "Strategy",
    "VanillaLLM",
    "VanillaRAG",
    "candidate_score",
    "choose",
    "get_template",
    "make_strategy",
    "score_generation",
    "select",
]
