"""Benchmark runner: build retrieval systems by name from the product's parts, run every
evaluated query, fuse and score the runs.

Each encoder becomes a :class:`~rag.eval.systems.System`: the corpus as real Chunks
(:mod:`rag.eval.units`: one chunk per document, or the product's chunkers), their vectors or
terms in an exact store, the product's retriever over it and a document ranking by best chunk
(:class:`~rag.retrieval.documents.DocumentRanker`). A system answers each query with a plain
run ``{doc_id: score}``; fusions are the product's (:func:`rag.retrieval.multi.fuse`) over those
runs. Fusions with calibration or corpus statistics, peers, learning and latency run in
:mod:`rag.eval.fusion_bench`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rag.eval.beir import BeirDataset
from rag.eval.config import PROTOCOLS, EvalConfig, Protocol
from rag.eval.metrics import evaluate
from rag.eval.systems import (
    System,
    SystemRun,
    encoder_kind_of,
    encoder_system,
    situated_systems,
)
from rag.eval.units import (
    CHUNKINGS,
    DEFAULT_CHUNKER,
    Units,
    chunked_units,
    corpus_document,
    make_chunker,
    whole_text,
    whole_units,
)

if TYPE_CHECKING:
    from rag.base import Chunker, Encoder

# Timings of steps that several runs share (done once, reported in each run).
SHARED_TIMINGS = frozenset({"chunk_seconds"})


def make_units(dataset: BeirDataset, config: EvalConfig, chunker: Chunker | None = None) -> Units:
    if config.protocol == "whole":
        return whole_units(dataset)
    chunker = chunker or make_chunker(config.chunk_tokens, config.chunker, config.chunking)
    return chunked_units(dataset, chunker, show_progress=config.show_progress)


def score_run(run: SystemRun, dataset: BeirDataset, config: EvalConfig) -> dict[str, Any]:
    """One run's result row: name, the metrics, timings and counts."""
    scores = evaluate(
        run.doc_ids(),
        dataset.qrels,
        config.metrics,
        ignore_identical_ids=config.ignore_identical_ids,
    )
    return {
        "name": run.name,
        **scores,
        "seconds": run.seconds,
        **run.timings,
        "num_queries": len(dataset.qrels),
        **run.info,
    }


def check_fusions(fusions: Sequence[str], num_systems: int) -> None:
    """Fail before any encoding when the fusions cannot run (unknown name, too few systems)."""
    if not fusions:
        return
    from rag.retrieval.multi import parse_fusion

    for name in fusions:
        parse_fusion(name)
    if len(set(fusions)) != len(fusions):
        raise ValueError(f"each fusion may be named once, got {list(fusions)}")
    if num_systems < 2:
        raise ValueError("fusion needs at least two runs (give --encoder more than once)")


def fuse_runs(runs: Sequence[SystemRun], fusion: str, *, k: int) -> SystemRun:
    """Fuse several systems' document runs per query with the fusion named ``fusion``
    (``rag.retrieval.multi.parse_fusion``: ``default``, a method, or ``METHOD@candidates`` /
    ``@background``); the result is named ``fusion:NAME`` and its time includes its inputs'.
    Fusions with calibration or corpus statistics need the stores: see ``rag.eval.fusion_bench``.
    """
    from rag.retrieval.multi import fuse, parse_fusion

    config = parse_fusion(fusion)
    if config.stats not in ("candidates", "background"):
        raise ValueError(f"fusion {fusion!r} needs the stores (rag.eval.fusion_bench)")
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"fusion needs distinct run names, got {names}")
    t0 = time.perf_counter()
    qids = list(dict.fromkeys(q for r in runs for q in r.ranked))
    lexical = {n for n in names if encoder_kind_of(n) == "lexical"}  # lists end with the terms
    ranked = {
        qid: fuse(
            {r.name: r.ranked.get(qid, {}) for r in runs}, config, k=k, depth=k, lexical=lexical
        )
        for qid in qids
    }
    fuse_seconds = time.perf_counter() - t0
    timings: dict[str, float] = {}
    for r in runs:
        for key, value in r.timings.items():
            # A step shared by the inputs (chunking the corpus) happened once.
            before = timings.get(key, 0.0)
            timings[key] = max(before, value) if key in SHARED_TIMINGS else before + value
    timings["fusion_seconds"] = fuse_seconds
    return SystemRun(
        name=f"fusion:{fusion}", ranked=ranked, timings=timings, info={"inputs": names}
    )


def run_systems(
    dataset: BeirDataset, systems: Sequence[System], config: EvalConfig
) -> tuple[list[SystemRun], list[dict[str, Any]]]:
    """Run the systems, then each fusion of them; return the runs and their result rows."""
    check_fusions(config.fusions, len(systems))
    runs = [system.run(dataset, k=config.k) for system in systems]
    runs += [fuse_runs(runs[: len(systems)], f, k=config.k) for f in config.fusions]
    return runs, [score_run(r, dataset, config) for r in runs]


def build_systems(
    dataset: BeirDataset,
    encoder_names: Sequence[str],
    units: Units,
    config: EvalConfig,
    *,
    encoders: Mapping[str, Encoder] | None = None,
    timings: Mapping[str, float] | None = None,
) -> list[System]:
    """One system per encoder name (one per situated mode, and per residual, for dense
    encoders when ``config.situated`` is set), built over ``units``."""
    label = f"{dataset.name}/{config.protocol}"
    systems: list[System] = []
    for name in encoder_names:
        if config.situated and encoder_kind_of(name) == "dense":
            systems += situated_systems(name, units, config, encoders=encoders, timings=timings)
        else:
            systems.append(
                encoder_system(name, units, config, encoders=encoders, label=label, timings=timings)
            )
    return systems


def check_encoder_names(encoder_names: Sequence[str]) -> None:
    if not encoder_names:
        raise ValueError("name at least one encoder")
    if len(set(encoder_names)) != len(encoder_names):
        raise ValueError(f"each encoder may be named once, got {list(encoder_names)}")


def evaluate_encoders(
    dataset: BeirDataset,
    encoder_names: Sequence[str],
    config: EvalConfig | None = None,
    *,
    encoders: Mapping[str, Encoder] | None = None,
    chunker: Chunker | None = None,
) -> dict[str, Any]:
    """Evaluate each named encoder (and each configured fusion of them) on ``dataset``.

    ``encoders`` maps names to ready Encoder objects (used before the registry); ``chunker``
    replaces the configured one under the chunked protocol. Returns the JSON report:
    ``{"dataset", "split", "protocol", "runs": [{"name", "ndcg@10", "recall@100", ...}], ...}``.
    """
    config = config or EvalConfig()
    check_encoder_names(encoder_names)
    check_fusions(config.fusions, len(encoder_names))
    t0 = time.perf_counter()
    units = make_units(dataset, config, chunker)
    chunk_seconds = time.perf_counter() - t0 if config.protocol == "chunked" else 0.0
    shared = {"chunk_seconds": chunk_seconds} if config.protocol == "chunked" else {}
    systems = build_systems(
        dataset, encoder_names, units, config, encoders=encoders, timings=shared
    )
    _, rows = run_systems(dataset, systems, config)
    if config.situated:
        add_encode_ratios(rows)
    report = report_header(dataset, config, units)
    report["runs"] = rows
    if config.protocol == "chunked":
        report["chunker"] = config.chunker
        report["chunking"] = config.chunking
        if config.situated:
            report["situated"] = list(config.situated)
            report["residual"] = config.residual
        report["chunk_seconds"] = chunk_seconds
        report["docs_without_chunks"] = len(dataset.corpus) - len(set(units.doc_ids))
    return report


def report_header(dataset: BeirDataset, config: EvalConfig, units: Units) -> dict[str, Any]:
    """The report's fields about the data and the protocol (``runs`` filled in by the caller)."""
    report: dict[str, Any] = {
        "dataset": dataset.name,
        "split": dataset.split,
        "protocol": config.protocol,
        "runs": [],
        "num_queries": len(dataset.queries),
        "num_docs": len(dataset.corpus),
        "num_units": len(units),
        "k": config.k,
    }
    if config.protocol == "chunked":
        report["chunk_tokens"] = config.chunk_tokens
    return report


def add_encode_ratios(rows: list[dict[str, Any]]) -> None:
    """``encode_x_plain``: each situated run's encode seconds over its encoder's plain run's."""
    plain = {
        r["name"][: -len("+plain")]: r["encode_seconds"]
        for r in rows
        if r["name"].endswith("+plain") and r.get("encode_seconds")
    }
    for row in rows:
        base = row["name"].split("+", 1)[0]
        if base in plain and "encode_seconds" in row and "+" in row["name"]:
            row["encode_x_plain"] = row["encode_seconds"] / plain[base]


__all__ = [
    "CHUNKINGS",
    "DEFAULT_CHUNKER",
    "PROTOCOLS",
    "EvalConfig",
    "Protocol",
    "System",
    "SystemRun",
    "Units",
    "build_systems",
    "chunked_units",
    "corpus_document",
    "evaluate_encoders",
    "fuse_runs",
    "make_chunker",
    "make_units",
    "run_systems",
    "score_run",
    "whole_text",
    "whole_units",
]
