"""Several encoders' retrievers queried concurrently, their hits fused into one ranking.

:class:`FusionRetriever` asks every retriever for its candidates at once and fuses them with
:func:`rag.retrieval.combine.fuse` (the fusion configs, statistics sources and the default,
with why it is the default, live there and are re-exported here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from rag.base import Retriever
from rag.retrieval.combine import (
    DEFAULT_FUSION,
    PRIOR_WEIGHTS,
    STATS_SOURCES,
    FusionConfig,
    StatsSource,
    background_stats,
    exhausted_stats,
    fuse,
    parse_fusion,
    resolve_fusion_name,
)
from rag.retrieval.diversity import THRESHOLD
from rag.types import Hit

if TYPE_CHECKING:
    from rag.retrieval.calibration import Calibration
    from rag.retrieval.filters import WhereLike
    from rag.retrieval.normalize import ScoreStats

__all__ = [
    "DEFAULT_FUSION",
    "PRIOR_WEIGHTS",
    "STATS_SOURCES",
    "FusionConfig",
    "FusionRetriever",
    "StatsSource",
    "background_stats",
    "exhausted_stats",
    "fuse",
    "parse_fusion",
    "resolve_fusion_name",
]


class FusionRetriever(Retriever):
    """Fuses the hits of several retrievers (one per encoder), queried concurrently.

    Each retriever is asked for ``candidates`` hits (at least ``k``), in its own thread: the
    heavy work in torch, numpy, Chroma and bm25s releases the GIL, so a query costs about its
    slowest encoder plus the fusion (well under a millisecond for 3 x 100 hits). Fused hits keep
    every retriever's score and rank in ``Hit.components``.

    ``where=`` filters in every store before fusion; ``dedup`` folds copies into one hit and
    ``mmr`` (a lambda) re-ranks for diversity, after fusion (:mod:`.fused_diversity`).
    """

    relevance: Callable[..., list[Hit]] | None = None  # hook(hits, runs) -> hits with relevance

    def __init__(
        self,
        retrievers: Sequence[Retriever],
        fusion: str | FusionConfig = "default",
        *,
        candidates: int = 100,
        calibration: Calibration | Mapping[str, ScoreStats] | None = None,
        dedup: bool = False,
        mmr: float | None = None,
        threshold: float = THRESHOLD,
    ) -> None:
        if not retrievers:
            raise ValueError("FusionRetriever needs at least one retriever")
        names = [r.name for r in retrievers]
        if len(set(names)) != len(names):
            raise ValueError(f"retriever names must be unique, got {names}")
        if candidates < 1:
            raise ValueError(f"candidates must be at least 1, got {candidates}")
        self.retrievers = list(retrievers)
        self.config = parse_fusion(fusion)
        if self.config.stats == "corpus":
            raise ValueError("stats='corpus' is only available in evaluation; use 'background'")
        if self.config.stats == "calibration" and calibration is None:
            raise ValueError("stats='calibration' needs calibration= (see calibrate())")
        self.calibration = calibration
        self.candidates = candidates
        self.dedup, self.mmr, self.threshold = dedup, mmr, threshold
        label = "default" if fusion == "default" else self.config.label
        self.name = f"fusion:{label}"
        # retrievers over lexical stores: their lists end where the query's terms run out
        self.lexical = {
            r.name
            for r in retrievers
            if getattr(getattr(r, "store", None), "kind", "") == "lexical"
        }
        self._pool: ThreadPoolExecutor | None = None

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=len(self.retrievers), thread_name_prefix="rag-fusion"
            )
        return self._pool

    def close(self) -> None:
        """Stop the worker threads (they also end with the process)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def retrieve(self, query: str, k: int = 10, *, where: WhereLike = None) -> list[Hit]:
        return self.retrieve_many([query], k, where=where)[0]

    def retrieve_many(
        self, queries: Sequence[str], k: int = 10, *, where: WhereLike = None
    ) -> list[list[Hit]]:
        from rag.retrieval.fused_diversity import fused_top

        return fused_top(self, list(queries), k, where) if queries else []

    def retrieve_runs(
        self, queries: Sequence[str], depth: int, *, where: WhereLike = None
    ) -> dict[str, list[list[Hit]]]:
        """Every retriever's hits for ``queries`` (name -> one list per query), concurrently;
        ``where`` (when given) goes to each, which filters before its top ``depth``."""
        queries = list(queries)
        options = {} if where is None else {"where": where}
        if len(self.retrievers) == 1:
            only = self.retrievers[0]
            return {only.name: only.retrieve_many(queries, depth, **options)}
        pool = self._executor()
        futures = [
            (r.name, pool.submit(r.retrieve_many, queries, depth, **options))
            for r in self.retrievers
        ]
        return {name: future.result() for name, future in futures}

    def _lexical_depth(self, depth: int) -> int:
        """``depth``, or fewer when the lexical stores hold fewer chunks: a list of every chunk
        of a small index is complete, not exhausted, and its rarity is judged against them."""
        sizes = [
            r.store.count()  # type: ignore[attr-defined]
            for r in self.retrievers
            if r.name in self.lexical
        ]
        return max(1, min([depth, *sizes])) if sizes else depth

    def fuse_runs(
        self,
        runs: Mapping[str, Sequence[Hit]],
        k: int | None,
        *,
        depth: int | None = None,
        filtered: bool = False,
    ) -> list[Hit]:
        """The fusion step alone, over one query's runs (what the latency figures time apart);
        ``depth``: how many hits each retriever was asked for (default ``candidates``);
        ``filtered``: the runs were cut by a filter, so they are no sample of the query's
        background and relevance is judged against the index's alone."""
        hits = fuse(
            runs,
            self.config,
            k=k,
            calibration=self.calibration,
            source=self.name,
            depth=self._lexical_depth(depth or self.candidates),
            lexical=self.lexical,
        )
        if self.relevance is None:
            return hits
        return self.relevance(hits, None if filtered else runs)
