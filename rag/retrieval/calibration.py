"""Calibration statistics for score normalisation, computed without relevance judgements.

A :class:`Calibration` holds one :class:`~rag.retrieval.normalize.ScoreStats` per encoder,
pooled over the scores each encoder gives a sample of queries: logged user queries, or
pseudo-queries drawn from the corpus itself (:func:`pseudo_queries`). Fusion with
``stats="calibration"`` then puts every query on the same per-encoder scale (Mixture-Embedding
RAG standardises each model's similarities: Chen, Zhao & Chen, arXiv:2507.17442, 2025). Saved
as JSON, never pickle.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.base import Retriever
from rag.retrieval.normalize import ScoreStats, stats_from_score_lists
from rag.types import Hit

FORMAT = "rag.calibration"
FORMAT_VERSION = 1

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def pseudo_queries(
    texts: Sequence[str],
    n: int = 256,
    *,
    seed: int = 0,
    min_words: int = 4,
    max_words: int = 24,
) -> list[str]:
    """``n`` query-like snippets drawn from the corpus itself: a random sentence (at least
    ``min_words`` words, cut to ``max_words``) of a random document, deterministic for ``seed``.

    Used as a calibration sample of queries when no real queries are available (Inverse-Cloze-
    style pseudo-queries: Lee, Chang & Toutanova, "Latent Retrieval for Weakly Supervised Open
    Domain Question Answering", ACL 2019).
    """
    pairs = pseudo_query_sources(texts, n, seed=seed, min_words=min_words, max_words=max_words)
    return [query for _, query in pairs]


def pseudo_query_sources(
    texts: Sequence[str],
    n: int = 256,
    *,
    seed: int = 0,
    min_words: int = 4,
    max_words: int = 24,
) -> list[tuple[int, str]]:
    """:func:`pseudo_queries` with the index in ``texts`` each was drawn from (its source text,
    the one text known to answer it)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 1 <= min_words <= max_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    out: list[tuple[int, str]] = []
    fallback: list[tuple[int, str]] = []
    for i in order.tolist():
        sentences = [s.split() for s in _SENTENCE_END.split(texts[i]) if s.strip()]
        long_enough = [s for s in sentences if len(s) >= min_words]
        if long_enough:
            words = long_enough[int(rng.integers(len(long_enough)))]
            out.append((i, " ".join(words[:max_words])))
        elif sentences:
            fallback.append((i, " ".join(sentences[0][:max_words])))
        if len(out) == n:
            break
    out.extend(fallback[: n - len(out)])
    return out


@dataclass(frozen=True)
class Calibration:
    """Per-encoder score statistics from a calibration sample of queries.

    ``depth`` is how many hits per query were pooled (``None``: every unit, i.e. the encoder's
    scores over the whole corpus); ``source`` says where the queries came from.
    """

    stats: dict[str, ScoreStats]
    num_queries: int
    depth: int | None
    source: str = "pseudo-queries"

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "stats": {name: asdict(s) for name, s in self.stats.items()},
            "num_queries": self.num_queries,
            "depth": self.depth,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Calibration:
        if data.get("format") != FORMAT or data.get("version") != FORMAT_VERSION:
            raise ValueError(f"not a {FORMAT} v{FORMAT_VERSION} file")
        return cls(
            stats={name: ScoreStats(**s) for name, s in data["stats"].items()},
            num_queries=int(data["num_queries"]),
            depth=data["depth"],
            source=str(data.get("source", "")),
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Calibration:
        return cls.from_json(json.loads(Path(path).read_text("utf-8")))


def calibrate(
    retrievers: Sequence[Retriever],
    queries: Sequence[str],
    *,
    depth: int = 100,
    source: str = "pseudo-queries",
) -> Calibration:
    """Each retriever's statistics pooled over its top-``depth`` scores for ``queries`` (a
    calibration sample: pseudo-queries from :func:`pseudo_queries`, or logged user queries)."""
    if not queries:
        raise ValueError("calibration needs at least one query")
    runs = {r.name: r.retrieve_many(list(queries), depth) for r in retrievers}
    return calibrate_runs(runs, depth=depth, source=source)


def calibrate_runs(
    runs: Mapping[str, Sequence[Sequence[Hit] | Mapping[str, float]]],
    *,
    depth: int | None,
    source: str = "pseudo-queries",
) -> Calibration:
    """The statistics of runs already retrieved for a calibration sample: ``runs[name]`` holds
    one ranking per sample query, as Hits or as a plain run ``{id: score}`` (e.g. documents
    ranked by their best chunk); ``depth`` is how deep they were retrieved."""
    counts = {len(rankings) for rankings in runs.values()}
    if not runs or counts == {0}:
        raise ValueError("calibration needs at least one query")
    if len(counts) != 1:
        raise ValueError(f"every run needs one ranking per query; got {sorted(counts)} rankings")
    stats = {
        name: stats_from_score_lists(map(_scores, rankings)) for name, rankings in runs.items()
    }
    return Calibration(stats=stats, num_queries=counts.pop(), depth=depth, source=source)


def _scores(ranking: Sequence[Hit] | Mapping[str, float]) -> list[float]:
    if isinstance(ranking, Mapping):
        return list(ranking.values())
    return [h.score for h in ranking]
