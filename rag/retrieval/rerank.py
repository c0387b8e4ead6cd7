"""A cross-encoder reranking stage over any retriever's candidates.

A cross-encoder reads the query and a chunk together and scores their relevance; it is too
slow to score a whole corpus but sharper than the bi-encoders and BM25 that find the candidates
(the retrieve-then-rerank design of Nogueira & Cho, "Passage Re-ranking with BERT", 2019).
:class:`CrossEncoderReranker` wraps any sentence-transformers ``CrossEncoder`` model folder; no
cross-encoder ships offline with this project, so one is given by path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from rag.base import Retriever
from rag.types import Hit, SourceScore


class CrossEncoderReranker:
    """Scores (query, chunk text) pairs with a sentence-transformers CrossEncoder, loaded once."""

    def __init__(
        self, model_path: str | os.PathLike[str], *, batch_size: int = 32, device: str = "cpu"
    ) -> None:
        if not os.path.isdir(model_path):
            raise FileNotFoundError(
                f"no cross-encoder model folder at {model_path} (give a local folder: nothing "
                "is downloaded)"
            )
        self.model_path = str(model_path)
        self.batch_size = batch_size
        self.device = device
        self._model: Any = None

    @property
    def name(self) -> str:
        return "rerank:" + os.path.basename(os.path.normpath(self.model_path))

    def _load(self) -> Any:
        if self._model is None:
            from sentence_transformers import CrossEncoder

            self._model = CrossEncoder(self.model_path, device=self.device, local_files_only=True)
        return self._model

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """One relevance score per text (higher is more relevant)."""
        if not texts:
            return np.zeros(0, dtype=np.float32)
        pairs = [(query, t) for t in texts]
        scores = self._load().predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return np.asarray(scores, dtype=np.float32).reshape(len(texts), -1)[:, 0]


def rerank(hits: Sequence[Hit], scores: Sequence[float], k: int, name: str) -> list[Hit]:
    """``hits`` reordered by ``scores`` (stable: ties keep the first stage's order), the top
    ``k`` renumbered. Each hit keeps the first stage's components and gains the reranker's, so
    where a hit came from stays visible; its ``score`` becomes the reranker's."""
    order = sorted(range(len(hits)), key=lambda i: -float(scores[i]))
    out = []
    for rank, i in enumerate(order[:k], start=1):
        hit = hits[i]
        components = {
            **hit.components,
            hit.source: SourceScore(hit.score, hit.rank),
            name: SourceScore(float(scores[i]), rank),
        }
        out.append(replace(hit, score=float(scores[i]), rank=rank, components=components))
    return out


class RerankingRetriever(Retriever):
    """``base``'s top ``candidates`` hits, reranked by ``reranker``; keyword arguments of
    ``retrieve`` (``where=`` and the like) go to ``base``."""

    def __init__(self, base: Retriever, reranker: Any, *, candidates: int = 30) -> None:
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        self.base = base
        self.reranker = reranker
        self.candidates = candidates
        self.name = f"{base.name}+{reranker.name}"

    def retrieve(self, query: str, k: int = 10, **options: Any) -> list[Hit]:
        hits = self.base.retrieve(query, max(k, self.candidates), **options)
        scores = self.reranker.score(query, [h.chunk.text for h in hits])
        return rerank(hits, scores, k, self.reranker.name)

    def retrieve_many(self, queries: Sequence[str], k: int = 10, **options: Any) -> list[list[Hit]]:
        return [self.retrieve(q, k, **options) for q in queries]
