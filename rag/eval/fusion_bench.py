"""Multi-embedder fusion benchmark: each encoder alone, each fusion of them, the peers, latency.

One call indexes the data set's units once per encoder (the document vectors of registry
encoders come from the :mod:`rag.eval.cache` cache when the same texts were embedded before), retrieves ``k``
candidates per encoder and query, then scores, on exactly those candidate lists:

- each encoder alone (run named after it);
- each fusion (``fusion:NAME``, NAME as given: ``default``, ``rrf``, ``combsum-zscore@corpus``,
  ...; see :func:`rag.retrieval.multi.parse_fusion`), and ``fusion:optimized`` when a train split
  is given (:mod:`rag.eval.optimize`, learned there, reported here);
- the peers (:mod:`rag.eval.peers`): LangChain's EnsembleRetriever and LlamaIndex's
  QueryFusionRetriever in its three score modes.

Latency (``p50_ms``, ``p95_ms``) is measured per query, one at a time, at the same ``k``, on live
retrievers over the built indexes (query encoding included): each encoder alone, our
:class:`~rag.retrieval.multi.FusionRetriever` per fusion (encoders queried concurrently), and each
peer over the same live retrievers. All of them are timed in turn on each query
(:func:`rag.eval.latency.measure_interleaved`), so load changes of a shared machine hit all alike. ``fusion_p50_ms`` / ``fusion_p95_ms`` time the fusion step
alone, over the stored candidate lists of every evaluated query.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.base import Retriever
from rag.eval.beir import BeirDataset
from rag.eval.latency import measure_interleaved, percentiles_ms
from rag.eval.runner import (
    DenseIndex,
    EvalConfig,
    IndexSystem,
    LexicalIndex,
    SystemRun,
    UnitIndex,
    Units,
    cached_index,
    make_index,
    make_units,
    rank_documents,
    score_run,
)
from rag.retrieval.multi import FusionConfig, FusionRetriever, fuse, parse_fusion
from rag.retrieval.normalize import ScoreStats, stats_from_scores
from rag.types import Chunk, Hit

if TYPE_CHECKING:
    from rag.base import Encoder

# Every fusion the benchmark can name: methods with candidate statistics, and the z-score sum
# and Mixture-Embedding with the other statistics sources.
ALL_FUSIONS: tuple[str, ...] = (
    "default",
    "rrf",
    "combsum-minmax",
    "combsum-zscore",
    "combsum-dbsf",
    "combmnz-minmax",
    "combmnz-zscore",
    "combmnz-dbsf",
    "mixture",
    "mixture-sum",
    "relative_score",
    "dist_based_score",
    "combsum-zscore@background",
    "combsum-zscore@calibration",
    "combsum-zscore@corpus",
    "combsum-minmax@corpus",
    "mixture@calibration",
    "mixture@corpus",
)


@dataclass
class FusionBenchConfig:
    """What to run besides the encoders: fusions by name, peers, a train split to learn a fusion
    on, how many queries to time, and the calibration sample (pseudo-queries from the corpus)."""

    fusions: tuple[str, ...] = ("default",)
    peers: bool = False
    train: BeirDataset | None = None
    latency_queries: int = 100
    calibration_queries: int = 256


def _doc_chunk(doc_id: str, text: str) -> Chunk:
    # At document level a document stands for itself: the chunk id is the document id.
    return Chunk(id=doc_id, doc_id=doc_id, text=text, start=0, end=len(text))


class UnitRetriever(Retriever):
    """A live retriever over a built unit index: encodes the query, searches, and ranks
    documents by their best unit (as the runner does), as Hits with one chunk per document."""

    def __init__(self, name: str, index: UnitIndex, units: Units, *, batch_size: int = 32):
        self.name = name
        self.index = index
        self.units = units
        self.batch_size = batch_size
        first_text: dict[str, str] = {}
        for doc_id, text in zip(units.doc_ids, units.texts, strict=True):
            first_text.setdefault(doc_id, text)
        self._chunks = {d: _doc_chunk(d, t) for d, t in first_text.items()}

    def retrieve(self, query: str, k: int = 10) -> list[Hit]:
        return self.retrieve_many([query], k)[0]

    def retrieve_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        if not queries:
            return []
        depth = min(len(self.units), k * self.units.max_per_doc)
        indices, scores = self.index.search(list(queries), depth, batch_size=self.batch_size)
        return [
            [
                Hit(self._chunks[d], s, rank, self.name)
                for rank, (d, s) in enumerate(
                    rank_documents(indices[i], scores[i], self.units.doc_ids, k), start=1
                )
            ]
            for i in range(len(queries))
        ]

    def ranked(self, dataset: BeirDataset, k: int) -> dict[str, list[tuple[str, float]]]:
        """Every evaluated query's top-``k`` documents (one batched search)."""
        qids = list(dataset.queries)
        lists = self.retrieve_many([dataset.queries[q] for q in qids], k)
        return {
            q: [(h.chunk.id, h.score) for h in hits] for q, hits in zip(qids, lists, strict=True)
        }


def _hits(ranked: Mapping[str, Sequence[tuple[str, float]]], name: str, chunks) -> dict:
    return {
        q: [Hit(chunks(d), s, rank, name) for rank, (d, s) in enumerate(pairs, start=1)]
        for q, pairs in ranked.items()
    }


def corpus_stats_fn(
    retrievers: Sequence[UnitRetriever], queries: Sequence[str], *, batch: int = 64
) -> Callable[[str, int], ScoreStats]:
    """Per-query statistics of every unit's score (dense: all similarities; BM25: all scores,
    zeros included), for ``stats="corpus"``: ``fn(encoder name, query index)``."""
    table: dict[str, list[ScoreStats]] = {}
    for r in retrievers:
        rows: list[ScoreStats] = []
        if isinstance(r.index, DenseIndex):
            vectors = r.index.vectors
            assert vectors is not None
            q = np.asarray(r.index.encoder.embed_queries(list(queries)), dtype=np.float32)
            for start in range(0, len(q), batch):
                sims = q[start : start + batch] @ vectors.T
                rows.extend(stats_from_scores(row) for row in sims)
        elif isinstance(r.index, LexicalIndex):
            assert r.index.bm25 is not None
            rows = [stats_from_scores(r.index.bm25.scores(text)) for text in queries]
        else:
            raise ValueError(f"no corpus statistics for index type {type(r.index).__name__}")
        table[r.name] = rows
    return lambda name, i: table[name][i]


def evaluate_fusion(
    dataset: BeirDataset,
    encoder_names: Sequence[str],
    config: EvalConfig | None = None,
    bench: FusionBenchConfig | None = None,
    *,
    encoders: Mapping[str, Encoder] | None = None,
) -> dict[str, Any]:
    """The JSON report of ``rag eval`` with fusions, peers and latency (see the module doc)."""
    config = config or EvalConfig()
    bench = bench or FusionBenchConfig()
    if len(encoder_names) < 2:
        raise ValueError("fusion needs at least two encoders (give --encoder more than once)")
    if len(set(encoder_names)) != len(encoder_names):
        raise ValueError(f"each encoder may be named once, got {list(encoder_names)}")
    configs = {name: parse_fusion(name) for name in dict.fromkeys(bench.fusions)}
    k = config.k
    units = make_units(dataset, config)
    label = f"{dataset.name}/{config.protocol}"

    # 1. one index and one live retriever per encoder; each encoder's run as the runner does
    retrievers: list[UnitRetriever] = []
    rows: list[dict[str, Any]] = []
    ranked: dict[str, dict[str, list[tuple[str, float]]]] = {}
    for name in encoder_names:
        index = make_index(name, encoders)
        if config.cache and not (encoders and name in encoders):
            index = cached_index(index, label)
        system = IndexSystem(
            name, index, units, batch_size=config.batch_size, show_progress=config.show_progress
        )
        run = system.run(dataset, k=k)
        ranked[name] = run.ranked
        retrievers.append(UnitRetriever(name, index, units, batch_size=config.batch_size))
        rows.append(score_run(run, dataset, config))

    qids = list(dataset.queries)
    chunk_of = {d: c for r in retrievers for d, c in r._chunks.items()}
    per_encoder = {name: _hits(ranked[name], name, chunk_of.__getitem__) for name in ranked}
    runs_of = [{name: per_encoder[name].get(q, []) for name in encoder_names} for q in qids]
    latency_texts = [dataset.queries[q] for q in qids[: bench.latency_queries]]

    # live systems to time at the end, all together (see rag.eval.latency.measure_interleaved)
    live: dict[str, Callable[[str], object]] = {
        r.name: (lambda text, r=r: r.retrieve(text, k)) for r in retrievers
    }
    closers: list[FusionRetriever] = []

    # 2. statistics some fusions need
    calibration = None
    if any(c.stats == "calibration" for c in configs.values()):
        from rag.retrieval.calibration import calibrate, pseudo_queries

        sample = pseudo_queries(units.texts, n=bench.calibration_queries)
        calibration = calibrate(retrievers, sample, depth=k)
    corpus = None
    if any(c.stats == "corpus" for c in configs.values()):
        corpus = corpus_stats_fn(retrievers, [dataset.queries[q] for q in qids])

    # 3. learn a fusion on the train split's queries (same corpus and indexes)
    learned = None
    if bench.train is not None:
        from rag.eval.optimize import optimize

        t0 = time.perf_counter()
        train_ranked = {r.name: r.ranked(bench.train, k) for r in retrievers}
        learned = optimize(train_ranked, bench.train.qrels)
        learned_info = {
            **learned.to_json(),
            "train_split": bench.train.split,
            "optimize_seconds": time.perf_counter() - t0,
        }
        learned_info.pop("families")
        configs["optimized"] = learned.config
        if learned.baseline and learned.baseline["kept_baseline"]:
            # what the grid's best would have scored here, had it been taken anyway
            best_of_grid = FusionConfig.from_json(learned.baseline["best_of_grid"])
            configs["optimized-best-of-grid"] = best_of_grid

    # 4. our fusions, over the stored candidate lists
    for fusion_name, fusion_config in configs.items():
        fused: dict[str, list[tuple[str, float]]] = {}
        seconds: list[float] = []
        for i, q in enumerate(qids):
            t0 = time.perf_counter()
            hits = fuse(
                runs_of[i],
                fusion_config,
                k=k,
                calibration=calibration,
                corpus_stats=(lambda name, i=i: corpus(name, i)) if corpus else None,
            )
            seconds.append(time.perf_counter() - t0)
            fused[q] = [(h.chunk.id, h.score) for h in hits]
        run = SystemRun(name=f"fusion:{fusion_name}", ranked=fused, info={"inputs": list(ranked)})
        row = score_run(run, dataset, config)
        row["fusion"] = fusion_config.to_json()
        if seconds:
            fusion_ms = percentiles_ms(seconds)
            row["fusion_p50_ms"] = fusion_ms["p50_ms"]
            row["fusion_p95_ms"] = fusion_ms["p95_ms"]
        if fusion_config.stats != "corpus":
            fused_retriever = FusionRetriever(
                retrievers, fusion_config, candidates=k, calibration=calibration
            )
            live[run.name] = lambda text, f=fused_retriever: f.retrieve(text, k)
            closers.append(fused_retriever)
        if fusion_name.startswith("optimized") and learned is not None:
            row["optimize"] = learned_info
        rows.append(row)

    # 5. the peers, over the same candidate lists (query ids stand in for the queries)
    if bench.peers:
        from rag.eval.peers import PEERS, StaticRetriever, make_peer

        static = [StaticRetriever(name, per_encoder[name]) for name in encoder_names]
        for peer_name in PEERS:
            peer = make_peer(peer_name, static, k)
            peer_ranked = {q: [(h.chunk.id, h.score) for h in peer(q)] for q in qids}
            row = score_run(SystemRun(name=peer_name, ranked=peer_ranked), dataset, config)
            live[peer_name] = make_peer(peer_name, retrievers, k)
            rows.append(row)

    if latency_texts:
        timed = measure_interleaved(live, latency_texts)
        for row in rows:
            if row["name"] in timed:
                t = timed[row["name"]]
                row.update(p50_ms=t["p50_ms"], p95_ms=t["p95_ms"], latency_queries=int(t["n"]))
    for fused_retriever in closers:
        fused_retriever.close()

    report: dict[str, Any] = {
        "dataset": dataset.name,
        "split": dataset.split,
        "protocol": config.protocol,
        "runs": rows,
        "num_queries": len(dataset.queries),
        "num_docs": len(dataset.corpus),
        "num_units": len(units),
        "k": k,
        "candidates_per_encoder": k,
        "latency_queries": len(latency_texts),
    }
    if calibration is not None:
        report["calibration"] = calibration.to_json()
    if config.protocol == "chunked":
        report["chunk_tokens"] = config.chunk_tokens
        report["chunker"] = config.chunker
    return report


__all__ = [
    "ALL_FUSIONS",
    "FusionBenchConfig",
    "FusionConfig",
    "UnitRetriever",
    "corpus_stats_fn",
    "evaluate_fusion",
]
