"""Multi-embedder fusion benchmark: each encoder alone, each fusion of them, the peers, latency.

One call builds one system per encoder over the data set's units (:mod:`rag.eval.systems`: the
product's retriever over an exact store, documents ranked by their best chunk; the document
vectors of registry encoders come from the :mod:`rag.eval.cache` cache when the same texts were
embedded before), retrieves ``k`` candidate documents per encoder and query, then scores, on
exactly those candidate runs:

- each encoder alone (run named after it);
- each fusion (``fusion:NAME``, NAME as given: ``default``, ``rrf``, ``combsum-zscore@corpus``,
  ...; see :func:`rag.retrieval.multi.parse_fusion`), the product's :func:`~rag.retrieval.multi.fuse`
  over the plain runs, and ``fusion:optimized`` when a train split is given
  (:mod:`rag.eval.optimize`, learned there, reported here);
- the peers (:mod:`rag.eval.peers`): LangChain's EnsembleRetriever and LlamaIndex's
  QueryFusionRetriever in its three score modes.

Latency (``p50_ms``, ``p95_ms``) is measured per query, one at a time, at the same ``k``, on the
live parts (query encoding included): each encoder's document ranking, the product's
:class:`~rag.retrieval.multi.FusionRetriever` per fusion over the encoders' retrievers (queried
concurrently), and each peer over the same retrievers. All of them are timed in turn on each
query (:func:`rag.eval.latency.measure_interleaved`), so load changes of a shared machine hit
all alike. ``fusion_p50_ms`` / ``fusion_p95_ms`` time the fusion step alone, over the stored
candidate runs of every evaluated query.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rag.eval.beir import BeirDataset
from rag.eval.config import EvalConfig
from rag.eval.latency import measure_interleaved, percentiles_ms
from rag.eval.runner import build_systems, check_encoder_names, make_units, report_header, score_run
from rag.eval.systems import Ranked, System, SystemRun, corpus_stats, encoder_kind_of
from rag.eval.units import Units
from rag.names import FUSION_METHODS
from rag.retrieval.multi import FusionConfig, FusionRetriever, fuse, parse_fusion
from rag.types import Hit

if TYPE_CHECKING:
    from rag.base import Encoder
    from rag.retrieval.calibration import Calibration

# Every fusion the benchmark can name: methods with candidate statistics, and the z-score sum
# and Mixture-Embedding with the other statistics sources.
ALL_FUSIONS: tuple[str, ...] = (
    "default",
    *FUSION_METHODS,
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


@dataclass
class _Live:
    """The live systems to time at the end, all together, and the fused retrievers to close."""

    calls: dict[str, Callable[[str], object]] = field(default_factory=dict)
    closers: list[FusionRetriever] = field(default_factory=list)

    def time(self, rows: list[dict[str, Any]], texts: Sequence[str]) -> None:
        if texts:
            timed = measure_interleaved(self.calls, texts)
            for row in rows:
                if row["name"] in timed:
                    t = timed[row["name"]]
                    row.update(p50_ms=t["p50_ms"], p95_ms=t["p95_ms"], latency_queries=int(t["n"]))
        for fused in self.closers:
            fused.close()


def calibration_of(systems: Sequence[System], units: Units, n: int, k: int) -> Calibration:
    """Each system's statistics over its top-``k`` document scores for ``n`` pseudo-queries
    drawn from the indexed texts (no judgements needed)."""
    from rag.retrieval.calibration import calibrate_runs, pseudo_queries

    sample = pseudo_queries(units.texts, n=n)
    return calibrate_runs({s.name: s.ranker.rank_many(sample, k) for s in systems}, depth=k)


def corpus_stats_fn(
    systems: Sequence[System], units: Units, queries: Sequence[str]
) -> Callable[[str, int], Any]:
    """``fn(encoder name, query index)``: the query's statistics over every unit's score."""
    table = {s.name: corpus_stats(s, units, queries) for s in systems}
    return lambda name, i: table[name][i]


def learn_fusion(
    systems: Sequence[System], train: BeirDataset, k: int
) -> tuple[dict[str, FusionConfig], dict[str, Any]]:
    """The fusion learned on ``train`` (same corpus and stores) as ``optimized``, and beside it
    ``optimized-best-of-grid`` when the default was kept; plus the report's ``optimize`` info."""
    from rag.eval.optimize import optimize

    t0 = time.perf_counter()
    learned = optimize({s.name: s.ranked(train, k) for s in systems}, train.qrels)
    info = {
        **learned.to_json(),
        "train_split": train.split,
        "optimize_seconds": time.perf_counter() - t0,
    }
    info.pop("families")
    configs = {"optimized": learned.config}
    if learned.baseline and learned.baseline["kept_baseline"]:
        # what the grid's best would have scored here, had it been taken anyway
        configs["optimized-best-of-grid"] = FusionConfig.from_json(learned.baseline["best_of_grid"])
    return configs, info


def fusion_row(
    name: str,
    config: FusionConfig,
    per_query: Mapping[str, Mapping[str, Mapping[str, float]]],
    dataset: BeirDataset,
    eval_config: EvalConfig,
    *,
    calibration: Calibration | None,
    corpus: Callable[[str, int], Any] | None,
) -> dict[str, Any]:
    """The result row of one fusion over the stored runs (``per_query[qid][encoder]``)."""
    fused: Ranked = {}
    seconds: list[float] = []
    inputs = list(next(iter(per_query.values()), {}))
    lexical = {n for n in inputs if encoder_kind_of(n) == "lexical"}
    for i, (qid, runs) in enumerate(per_query.items()):
        t0 = time.perf_counter()
        fused[qid] = fuse(
            runs,
            config,
            k=eval_config.k,
            depth=eval_config.k,
            lexical=lexical,
            calibration=calibration,
            corpus_stats=(lambda n, i=i: corpus(n, i)) if corpus else None,
        )
        seconds.append(time.perf_counter() - t0)
    run = SystemRun(name=f"fusion:{name}", ranked=fused, info={"inputs": inputs})
    row = score_run(run, dataset, eval_config)
    row["fusion"] = config.to_json()
    if seconds:
        fusion_ms = percentiles_ms(seconds)
        row["fusion_p50_ms"] = fusion_ms["p50_ms"]
        row["fusion_p95_ms"] = fusion_ms["p95_ms"]
    return row


def peer_rows(
    systems: Sequence[System],
    runs: Mapping[str, Ranked],
    units: Units,
    dataset: BeirDataset,
    config: EvalConfig,
    live: _Live,
) -> list[dict[str, Any]]:
    """The peers over the same candidate runs (query ids stand in for the queries), each
    document as its first indexed chunk; and each peer live over the product retrievers."""
    from rag.eval.peers import PEERS, StaticRetriever, make_peer

    first = units.first_chunks()
    static = [
        StaticRetriever(
            s.name,
            {
                q: [
                    Hit(first[d], score, rank, s.name)
                    for rank, (d, score) in enumerate(run.items(), 1)
                ]
                for q, run in runs[s.name].items()
            },
        )
        for s in systems
    ]
    k = config.k
    rows = []
    for peer_name in PEERS:
        peer = make_peer(peer_name, static, k)
        ranked = {q: {h.chunk.doc_id: h.score for h in peer(q)} for q in dataset.queries}
        rows.append(score_run(SystemRun(name=peer_name, ranked=ranked), dataset, config))
        live.calls[peer_name] = make_peer(peer_name, [s.retriever for s in systems], k)
    return rows


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
    check_encoder_names(encoder_names)
    configs = {name: parse_fusion(name) for name in dict.fromkeys(bench.fusions)}
    k = config.k
    units = make_units(dataset, config)

    # 1. one system per encoder, and its run
    systems = build_systems(dataset, encoder_names, units, config, encoders=encoders)
    encoder_runs = [s.run(dataset, k=k) for s in systems]
    rows = [score_run(r, dataset, config) for r in encoder_runs]
    runs = {r.name: r.ranked for r in encoder_runs}
    qids = list(dataset.queries)
    per_query = {q: {s.name: runs[s.name].get(q, {}) for s in systems} for q in qids}
    live = _Live({s.name: (lambda text, s=s: s.ranker.rank(text, k)) for s in systems})

    # 2. statistics some fusions need
    stats = {c.stats for c in configs.values()}
    calibration = (
        calibration_of(systems, units, bench.calibration_queries, k)
        if "calibration" in stats
        else None
    )
    corpus = (
        corpus_stats_fn(systems, units, [dataset.queries[q] for q in qids])
        if "corpus" in stats
        else None
    )

    # 3. learn a fusion on the train split's queries
    learned_info: dict[str, Any] | None = None
    if bench.train is not None:
        learned, learned_info = learn_fusion(systems, bench.train, k)
        configs.update(learned)

    # 4. our fusions, over the stored candidate runs; live, the product's fused retriever
    retrievers = [s.retriever for s in systems]
    for name, fusion_config in configs.items():
        row = fusion_row(
            name, fusion_config, per_query, dataset, config, calibration=calibration, corpus=corpus
        )
        if fusion_config.stats != "corpus":
            fused = FusionRetriever(
                retrievers, fusion_config, candidates=k, calibration=calibration
            )
            live.calls[row["name"]] = lambda text, f=fused: f.retrieve(text, k)
            live.closers.append(fused)
        if name.startswith("optimized") and learned_info is not None:
            row["optimize"] = learned_info
        rows.append(row)

    # 5. the peers, over the same candidate runs
    if bench.peers:
        rows += peer_rows(systems, runs, units, dataset, config, live)

    latency_texts = [dataset.queries[q] for q in qids[: bench.latency_queries]]
    live.time(rows, latency_texts)

    report = report_header(dataset, config, units)
    report["runs"] = rows
    report["candidates_per_encoder"] = k
    report["latency_queries"] = len(latency_texts)
    if calibration is not None:
        report["calibration"] = calibration.to_json()
    if config.protocol == "chunked":
        report["chunker"] = config.chunker
    return report


__all__ = [
    "ALL_FUSIONS",
    "FusionBenchConfig",
    "FusionConfig",
    "calibration_of",
    "corpus_stats_fn",
    "evaluate_fusion",
]
