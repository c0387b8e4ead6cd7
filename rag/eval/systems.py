"""Retrieval systems of an evaluation, built from the product's parts.

A *system* is one product retriever (:class:`~rag.retrieval.store_retriever.StoreRetriever`
over an encoder and an exact store: dense vectors in a
:class:`~rag.stores.memory.MemoryStore`, term lists in a BM25 store) wrapped by a
:class:`~rag.retrieval.documents.DocumentRanker`, so that it answers each query with a plain
run ``{doc_id: score}`` (a document scores its best chunk). Metrics and fusion work on those
runs only. Situated encoders (``rag.encoders.situated``) put their chunk vectors (or residual
vectors ``s + alpha * c``) into the same kind of store and are queried through their base
encoder.

The document vectors of registry encoders come from the on-disk cache of
:mod:`rag.eval.cache` when the same texts were embedded before by the same model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.eval.beir import BeirDataset
from rag.eval.units import Units
from rag.retrieval.documents import DocumentRanker
from rag.retrieval.normalize import ScoreStats, stats_from_scores
from rag.retrieval.store_retriever import StoreRetriever

if TYPE_CHECKING:
    from rag.base import Encoder, Store
    from rag.encoders.situated import SituatedEncoder, SituatedVectors
    from rag.eval.config import EvalConfig
    from rag.types import Chunk

SITEMB_SCHEME = "sitemb:"  # --encoder sitemb:FOLDER: a SitEmb-style causal model (transformers)
# Ranked documents of every evaluated query: query id -> {doc_id: score}, best first.
Ranked = dict[str, dict[str, float]]


@dataclass
class SystemRun:
    """What one system returned for the evaluated queries: ``ranked[qid]`` is a plain run
    ``{doc_id: score}``, best first; ``timings`` holds seconds by phase (``load_seconds``,
    ``encode_seconds``, ``query_seconds``, ...)."""

    name: str
    ranked: Ranked
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())

    def doc_ids(self) -> dict[str, list[str]]:
        return {qid: list(run) for qid, run in self.ranked.items()}


@dataclass
class System:
    """A product retriever over one built store, ranking documents by their best chunk;
    ``timings`` are the seconds spent building it (loading, chunking, encoding)."""

    name: str
    retriever: StoreRetriever
    ranker: DocumentRanker
    timings: dict[str, float] = field(default_factory=dict)

    def ranked(self, dataset: BeirDataset, k: int) -> Ranked:
        """Every query of ``dataset``: its top-``k`` documents (one batched search)."""
        qids = list(dataset.queries)
        runs = self.ranker.rank_many([dataset.queries[q] for q in qids], k)
        return dict(zip(qids, runs, strict=True))

    def run(self, dataset: BeirDataset, *, k: int) -> SystemRun:
        t0 = time.perf_counter()
        ranked = self.ranked(dataset, k)
        timings = {**self.timings, "query_seconds": time.perf_counter() - t0}
        return SystemRun(self.name, ranked, timings, {"num_units": self.retriever.store.count()})


def _memory_store() -> Store:
    from rag.stores.memory import MemoryStore

    return MemoryStore()


def _bm25_store() -> Store:
    from rag.stores.bm25 import BM25Store

    return BM25Store()


# The exact store of each encoder kind: every score is computed, none approximated.
EXACT_STORES: dict[str, Callable[[], Store]] = {"dense": _memory_store, "lexical": _bm25_store}


def exact_store(kind: str) -> Store:
    """An empty exact store for encoders of ``kind`` (``dense`` or ``lexical``)."""
    try:
        factory = EXACT_STORES[kind]
    except KeyError:
        raise ValueError(
            f"encoders of kind {kind!r} have no exact store; kinds: {', '.join(EXACT_STORES)}"
        ) from None
    return factory()


def build_store(
    encoder: Encoder,
    chunks: Sequence[Chunk],
    *,
    texts: Sequence[str] | None = None,
    batch_size: int = 32,
    show_progress: bool = False,
) -> Store:
    """``chunks`` in an exact store of the encoder's kind, each under what the encoder gives
    for its text (``texts[i]`` when given, else the chunk's own text)."""
    store = exact_store(encoder.kind)
    embedded = encoder.embed_documents(
        [c.text for c in chunks] if texts is None else list(texts),
        batch_size=batch_size,
        show_progress=show_progress,
    )
    store.add(list(chunks), embedded)
    return store


def make_system(
    name: str,
    encoder: Any,
    store: Store,
    units: Units,
    timings: Mapping[str, float],
) -> System:
    retriever = StoreRetriever(encoder, store, name=name)
    ranker = DocumentRanker(
        retriever, chunks_per_document=units.max_per_doc, max_depth=store.count()
    )
    return System(name, retriever, ranker, dict(timings))


def load_base_encoder(name: str, encoders: Mapping[str, Encoder] | None = None) -> Encoder:
    """The encoder called ``name``: a given object, a causal SitEmb folder named
    ``sitemb:FOLDER``, or the registry's (or a sentence-transformers folder)."""
    if encoders and name in encoders:
        return encoders[name]
    if name.startswith(SITEMB_SCHEME):
        from rag.encoders.situated import load_causal_sitemb

        return load_causal_sitemb(name[len(SITEMB_SCHEME) :])
    from rag.encoders.registry import load_encoder

    return load_encoder(name)


def encoder_kind_of(name: str) -> str:
    """``lexical`` for a registered lexical retriever, else ``dense``."""
    from rag.encoders.registry import encoder_kind

    return "dense" if name.startswith(SITEMB_SCHEME) else encoder_kind(name)


def encoder_system(
    name: str,
    units: Units,
    config: EvalConfig,
    *,
    encoders: Mapping[str, Encoder] | None = None,
    label: str = "",
    timings: Mapping[str, float] | None = None,
) -> System:
    """The system of encoder ``name`` over ``units``: ``encoders[name]`` if given, else the
    registry's encoder, whose dense document vectors are cached on disk (``config.cache``)."""
    t0 = time.perf_counter()
    encoder = load_base_encoder(name, encoders)
    given = bool(encoders and name in encoders)
    if config.cache and not given and encoder.kind == "dense":
        from rag.eval.cache import CachedEncoder

        encoder = CachedEncoder(encoder, label=label)
    t1 = time.perf_counter()
    store = build_store(
        encoder, units.chunks, batch_size=config.batch_size, show_progress=config.show_progress
    )
    setup = {"load_seconds": t1 - t0, **(timings or {}), "encode_seconds": time.perf_counter() - t1}
    return make_system(name, encoder, store, units, setup)


class _SituatedVectors:
    """Each situated mode's chunk vectors, encoded once per evaluation, and their seconds."""

    def __init__(self, units: Units, config: EvalConfig) -> None:
        self.units = units
        self.config = config
        self.encoded: dict[str, tuple[SituatedVectors, float]] = {}

    def of(self, situated: SituatedEncoder, label: str = "") -> tuple[SituatedVectors, float]:
        label = label or situated.mode
        if label not in self.encoded:
            t0 = time.perf_counter()
            vectors = situated.embed_chunks(
                self.units.chunks,
                batch_size=self.config.batch_size,
                show_progress=self.config.show_progress,
                documents={d.id: d for d in self.units.documents},
            )
            self.encoded[label] = (vectors, time.perf_counter() - t0)
        return self.encoded[label]

    def plain_of(self, situated: SituatedEncoder, label: str) -> tuple[np.ndarray, float]:
        """The chunk-only vectors in ``situated``'s own model (an adapted one has its own)."""
        t0 = time.perf_counter()
        vectors = situated.embed_plain(
            self.units.chunks,
            batch_size=self.config.batch_size,
            show_progress=self.config.show_progress,
        )
        return vectors, time.perf_counter() - t0


def situated_systems(
    name: str,
    units: Units,
    config: EvalConfig,
    *,
    encoders: Mapping[str, Encoder] | None = None,
    timings: Mapping[str, float] | None = None,
) -> list[System]:
    """One system per configured situated mode of encoder ``name`` (named ``NAME+MODE``), then
    one residual system per non-plain mode when ``config.residual`` is set
    (``NAME+MODE+residualALPHA``, scoring ``sim(q, s) + alpha * sim(q, c)``). All share one base
    encoder; each mode is encoded once, and a residual system's ``encode_seconds`` is the
    encode time of the vectors it uses."""
    from rag.encoders.situated import get_situated, residual_vectors

    t0 = time.perf_counter()
    base = load_base_encoder(name, encoders)
    setup = {"load_seconds": time.perf_counter() - t0, **(timings or {})}
    vectors = _SituatedVectors(units, config)
    modes = [(mode_label(mode), get_situated(mode, base)) for mode in config.situated]

    def system(run_name: str, situated: SituatedEncoder, matrix: Any, seconds: float) -> System:
        store = exact_store("dense")
        store.add(units.chunks, matrix)
        return make_system(run_name, situated, store, units, {**setup, "encode_seconds": seconds})

    out: list[System] = []
    for label, situated in modes:
        found, seconds = vectors.of(situated, label)
        out.append(system(f"{name}+{label}", situated, found.situated, seconds))
    if config.residual is None:
        return out
    for label, situated in modes:
        if situated.mode == "plain":
            continue
        found, seconds = vectors.of(situated, label)
        chunk, chunk_seconds = found.chunk, 0.0
        if chunk is None and situated.base is base:  # a bi-encoder: the plain mode's vectors
            plain, chunk_seconds = vectors.of(get_situated("plain", base))
            chunk = plain.situated
        elif chunk is None:  # an adapted model: its own chunk-only vectors
            chunk, chunk_seconds = vectors.plain_of(situated, label)
        matrix = residual_vectors(found.situated, chunk, config.residual)
        run_name = f"{name}+{label}+residual{config.residual:g}"
        out.append(system(run_name, situated, matrix, seconds + chunk_seconds))
    return out


def mode_label(mode: str) -> str:
    """A run's name for a situated mode: ``trained:PATH/x.npz`` is ``trained:x``."""
    name, colon, argument = mode.partition(":")
    return f"{name}:{Path(argument).stem}" if colon else name


def corpus_stats(
    system: System, units: Units, queries: Sequence[str], *, batch: int = 64
) -> list[ScoreStats]:
    """Per query, the statistics of every unit's score under ``system`` (dense: all
    similarities; BM25: all scores, zeros included), for fusion with ``stats="corpus"``.

    Evaluation only: the exact store is searched with ``k`` = its size, and each query's
    scores are laid out in index order (a unit the store does not return scores 0).
    """
    store = system.retriever.store
    row = {c.id: i for i, c in enumerate(units.chunks)}
    out: list[ScoreStats] = []
    queries = list(queries)
    for start in range(0, len(queries), batch):
        for hits in system.retriever.retrieve_many(queries[start : start + batch], store.count()):
            scores = np.zeros(len(units), dtype=np.float32)
            scores[[row[h.chunk.id] for h in hits]] = [h.score for h in hits]
            out.append(stats_from_scores(scores))
    return out
