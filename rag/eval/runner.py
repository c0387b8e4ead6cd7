"""Benchmark runner: build retrieval systems by name, run every evaluated query, score the runs.

A *system* answers each query with a ranked list of ``(doc_id, score)`` (plus, under the
chunked protocol, the chunk-level :class:`~rag.types.Hit` s behind it); metrics and fusion work
on those lists only, so any system (an encoder over units, a fusion of other systems, a
LangChain or LlamaIndex pipeline) plugs in by implementing :meth:`System.run`.

Protocols (what one indexed *unit* is):

- ``whole``: one unit per corpus document, its text ``(title + " " + text).strip()`` -- the
  convention of BEIR's ``SentenceBERT.encode_corpus`` (``sep=" "``), also used by
  sentence-transformers' BEIR/NanoBEIR evaluators. BM25 indexes the same string.
- ``chunked``: the chunked-document protocol of ``shared/data/README.md``. Each document becomes a
  :class:`~rag.types.Document` (one span), is cut into sentence-aware chunks of at most
  ``chunk_tokens`` tokens with the title as *context* (not in the chunk text), the chunk texts are
  indexed, and a document scores the best score of its chunks (max-pooling, the "MaxP" of Dai &
  Callan, "Deeper Text Understanding for IR with Contextual Neural Language Modeling", SIGIR 2019).

Dense search is exact: a matrix product of L2-normalised vectors, top-k by ``argpartition``, in
query batches so the score matrix stays bounded.
"""

from __future__ import annotations

import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rag.chunking import SentenceChunker
from rag.chunking.text import split_sentences
from rag.eval.beir import BeirDataset
from rag.eval.metrics import DEFAULT_METRICS, evaluate
from rag.types import Chunk, Document, Hit, Span, sha256_hex

if TYPE_CHECKING:
    from rag.base import Chunker, Encoder
    from rag.encoders.bm25 import BM25Index
    from rag.encoders.situated import SituatedEncoder, SituatedVectors

Protocol = Literal["whole", "chunked"]
PROTOCOLS: tuple[str, ...] = ("whole", "chunked")
DEFAULT_CHUNKER = "sentence"
# Timings of steps that several runs share (done once, reported in each run).
SHARED_TIMINGS = frozenset({"chunk_seconds"})
# Upper bound on one query batch's score matrix (float32 elements): 2**25 is 128 MiB.
MAX_SCORE_ELEMENTS = 1 << 25


# -- units: what gets indexed -----------------------------------------------------------------------


def whole_text(title: str, text: str) -> str:
    """The text of a whole document: BEIR's ``(title + " " + text).strip()``."""
    return f"{title} {text}".strip()


@dataclass
class Units:
    """The indexed texts; ``doc_ids[i]`` is the corpus document of ``texts[i]``.

    Under the chunked protocol ``chunks[i]`` is the chunk behind ``texts[i]`` (whole: ``None``).
    ``documents`` keeps the Documents the chunks came from, for encoders that need the whole
    document (late chunking) and for situated modes that build a chunk's text from its context.
    """

    texts: list[str]
    doc_ids: list[str]
    chunks: list[Chunk] | None = None
    documents: list[Document] | None = None
    max_per_doc: int = 1

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.doc_ids):
            raise ValueError("texts and doc_ids must have the same length")
        if self.chunks is not None and len(self.chunks) != len(self.texts):
            raise ValueError("chunks and texts must have the same length")

    def __len__(self) -> int:
        return len(self.texts)


def whole_units(dataset: BeirDataset) -> Units:
    ids = list(dataset.corpus)
    return Units(texts=[whole_text(*dataset.corpus[i]) for i in ids], doc_ids=ids)


def corpus_document(dataset_name: str, doc_id: str, title: str, text: str) -> Document:
    """A corpus record as a Document: id = corpus id, the title apart, one span over the text."""
    return Document(
        id=doc_id,
        text=text,
        source=f"{dataset_name}/{doc_id}",
        content_hash=sha256_hex(text),
        title=title or None,
        spans=[Span(0, len(text))] if text else [],
    )


def chunked_units(dataset: BeirDataset, chunker: Chunker, *, show_progress: bool = False) -> Units:
    """Chunk every corpus document; the chunk texts (no title) are the units.

    A document whose text yields no chunk (an empty abstract) cannot be retrieved under this
    protocol, as in any chunk index.
    """
    documents = [
        corpus_document(dataset.name, doc_id, title, text)
        for doc_id, (title, text) in dataset.corpus.items()
    ]
    chunks: list[Chunk] = []
    counts: dict[str, int] = {}
    for doc in _progress(documents, "chunking", show_progress):
        for chunk in chunker.chunk(doc):
            chunks.append(chunk)
            counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
    return Units(
        texts=[c.text for c in chunks],
        doc_ids=[c.doc_id for c in chunks],
        chunks=chunks,
        documents=documents,
        max_per_doc=max(counts.values(), default=1),
    )


class OneSentenceChunker(SentenceChunker):
    """One sentence per chunk (a sentence over the limit is cut into near-equal token pieces):
    HotpotQA's paragraphs cut into sentence chunks, with the paragraph as context."""

    def cut(self, tokens, start, end):  # type: ignore[no-untyped-def]
        return [c for s in split_sentences(tokens.text, start, end) for c in tokens.pack([s])]


# How the chunked protocol cuts a corpus record: ``packed`` sentences up to ``chunk_tokens``,
# one ``sentence`` per chunk, or the whole ``record`` as one chunk (Climate-FEVER's records are
# single evidence sentences: each is a chunk, its article title the context).
CHUNKINGS: tuple[str, ...] = ("packed", "sentence", "record")
RECORD_MAX_TOKENS = 1 << 30


def make_chunker(
    chunk_tokens: int, name: str = DEFAULT_CHUNKER, chunking: str = "packed"
) -> Chunker:
    from rag.chunking import get_chunker

    if chunking == "sentence":
        return OneSentenceChunker(max_tokens=chunk_tokens)
    if chunking == "record":
        return get_chunker(name, max_tokens=RECORD_MAX_TOKENS)
    if chunking != "packed":
        raise ValueError(f"unknown chunking {chunking!r}; choose one of: {', '.join(CHUNKINGS)}")
    return get_chunker(name, max_tokens=chunk_tokens)


# -- indexes over units -----------------------------------------------------------------------------


class UnitIndex(ABC):
    """Indexes units and returns, per query, unit indices and scores, best first."""

    @abstractmethod
    def build(self, units: Units, *, batch_size: int, show_progress: bool) -> None: ...

    @abstractmethod
    def search(
        self, queries: Sequence[str], depth: int, *, batch_size: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, scores)``, each ``(len(queries), depth)``, rows sorted by score, highest
        first; a slot with no unit holds index ``-1``."""


def exact_search(
    queries: np.ndarray, vectors: np.ndarray, k: int, *, max_elements: int = MAX_SCORE_ELEMENTS
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` rows of ``vectors`` by inner product with each query (cosine for normalised
    vectors): ``(indices, scores)`` of shape ``(n_queries, min(k, n_vectors))``, best first."""
    n_queries, n = len(queries), len(vectors)
    k = min(k, n)
    indices = np.empty((n_queries, k), dtype=np.int64)
    scores = np.empty((n_queries, k), dtype=np.float32)
    if k == 0:
        return indices, scores
    rows = max(1, max_elements // max(n, 1))
    for start in range(0, n_queries, rows):
        sims = queries[start : start + rows] @ vectors.T
        if k < n:
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(np.arange(n), sims.shape)
        top_scores = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        indices[start : start + rows] = np.take_along_axis(top, order, axis=1)
        scores[start : start + rows] = np.take_along_axis(top_scores, order, axis=1)
    return indices, scores


class DenseIndex(UnitIndex):
    """An encoder's vectors of the unit texts, searched exactly with numpy."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.vectors: np.ndarray | None = None

    def build(self, units: Units, *, batch_size: int, show_progress: bool) -> None:
        vectors = self.encoder.embed_documents(
            units.texts, batch_size=batch_size, show_progress=show_progress
        )
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    def search(
        self, queries: Sequence[str], depth: int, *, batch_size: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.vectors is None:
            raise RuntimeError("build() the index before searching it")
        q = self.encoder.embed_queries(list(queries), batch_size=batch_size)
        return exact_search(np.asarray(q, dtype=np.float32), self.vectors, depth)


class LexicalIndex(UnitIndex):
    """BM25 over the unit texts. Units that share no term with the query (score <= 0) are not
    retrieved, as in an inverted-index engine (BEIR's Elasticsearch baseline)."""

    def __init__(self, factory: Callable[[], BM25Index] | None = None) -> None:
        self._factory = factory
        self.bm25: BM25Index | None = None

    def build(self, units: Units, *, batch_size: int, show_progress: bool) -> None:
        if self._factory is None:
            from rag.encoders.bm25 import BM25Index

            self._factory = BM25Index
        self.bm25 = self._factory()
        self.bm25.index(list(units.texts), show_progress=show_progress)

    def search(
        self, queries: Sequence[str], depth: int, *, batch_size: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.bm25 is None:
            raise RuntimeError("build() the index before searching it")
        indices, scores = self.bm25.search(list(queries), depth)
        indices = np.array(indices, dtype=np.int64, copy=True)
        scores = np.asarray(scores, dtype=np.float32)
        indices[scores <= 0] = -1
        return indices, scores


class SituatedIndex(UnitIndex):
    """Chunks embedded in their context by a situated encoder (``rag.encoders.situated``);
    queries go through its base encoder. With ``residual`` (alpha) the stored vector is
    ``s + alpha * c``, so one inner-product search scores ``sim(q, s) + alpha * sim(q, c)``.

    ``shared`` (one dict per evaluation) keeps each mode's vectors and encode seconds, so a
    residual run reuses the situated vectors of its mode and the plain run's chunk vectors;
    ``cost_seconds`` is then the encode time of the parts it uses.
    """

    def __init__(
        self,
        situated: SituatedEncoder,
        residual: float | None = None,
        shared: dict[str, tuple[SituatedVectors, float]] | None = None,
    ) -> None:
        self.situated = situated
        self.residual = residual
        self.shared = {} if shared is None else shared
        self.vectors: np.ndarray | None = None
        self.cost_seconds = 0.0

    def _encode(
        self, situated: SituatedEncoder, units: Units, batch_size: int, show_progress: bool
    ) -> tuple[SituatedVectors, float]:
        if situated.mode not in self.shared:
            t0 = time.perf_counter()
            vectors = situated.embed_chunks(
                units.chunks or [],
                batch_size=batch_size,
                show_progress=show_progress,
                documents={d.id: d for d in units.documents or []},
            )
            self.shared[situated.mode] = (vectors, time.perf_counter() - t0)
        return self.shared[situated.mode]

    def build(self, units: Units, *, batch_size: int, show_progress: bool) -> None:
        from rag.encoders.situated import get_situated, residual_vectors

        if units.chunks is None:
            raise ValueError("situated encoders need the chunked protocol (--protocol chunked)")
        vectors, seconds = self._encode(self.situated, units, batch_size, show_progress)
        if self.residual is None:
            self.vectors, self.cost_seconds = vectors.situated, seconds
            return
        chunk, chunk_seconds = vectors.chunk, 0.0
        if chunk is None:  # a bi-encoder: the chunk-only vectors are the plain mode's
            plain = get_situated("plain", self.situated.base)
            chunk, chunk_seconds = self._encode(plain, units, batch_size, show_progress)
            chunk = chunk.situated
        self.vectors = residual_vectors(vectors.situated, chunk, self.residual)
        self.cost_seconds = seconds + chunk_seconds

    def search(
        self, queries: Sequence[str], depth: int, *, batch_size: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.vectors is None:
            raise RuntimeError("build() the index before searching it")
        q = self.situated.embed_queries(list(queries), batch_size=batch_size)
        return exact_search(np.asarray(q, dtype=np.float32), self.vectors, depth)


SITEMB_SCHEME = "sitemb:"  # --encoder sitemb:FOLDER: a SitEmb-style causal model (transformers)


def load_base_encoder(name: str, encoders: Mapping[str, Encoder] | None = None) -> Encoder:
    """The dense encoder under situated modes: a given object, a causal SitEmb folder named
    ``sitemb:FOLDER``, or the registry's (or a sentence-transformers folder)."""
    if encoders and name in encoders:
        return encoders[name]
    if name.startswith(SITEMB_SCHEME):
        from rag.encoders.situated import load_causal_sitemb

        return load_causal_sitemb(name[len(SITEMB_SCHEME) :])
    from rag.encoders.registry import load_encoder

    return load_encoder(name)


def situated_indexes(
    name: str, config: EvalConfig, encoders: Mapping[str, Encoder] | None = None
) -> list[tuple[str, UnitIndex]]:
    """``(run name, index)`` for each configured situated mode of encoder ``name``, then one
    residual run for each non-plain mode when ``config.residual`` is set; all share one base
    encoder and one store of encoded vectors."""
    from rag.encoders.situated import get_situated

    base = load_base_encoder(name, encoders)
    shared: dict[str, tuple[SituatedVectors, float]] = {}
    out: list[tuple[str, UnitIndex]] = []
    modes = [get_situated(mode, base) for mode in config.situated]
    for situated in modes:
        out.append((f"{name}+{situated.mode}", SituatedIndex(situated, shared=shared)))
    if config.residual is not None:
        for situated in modes:
            if situated.mode != "plain":
                index = SituatedIndex(situated, config.residual, shared)
                out.append((f"{name}+{situated.mode}+residual{config.residual:g}", index))
    return out


def make_index(name: str, encoders: Mapping[str, Encoder] | None = None) -> UnitIndex:
    """The index for encoder ``name``: ``encoders[name]`` if given (an Encoder object built by the
    caller), else the encoder registry's entry (lexical -> its BM25 index, dense -> the loaded
    encoder); a name the registry does not know loads as a sentence-transformers model folder."""
    if encoders and name in encoders:
        return DenseIndex(encoders[name])
    from rag.encoders.registry import encoder_kind, get_spec, load_encoder

    kind = encoder_kind(name)
    if kind == "lexical":
        return LexicalIndex(get_spec(name).loader)
    if kind == "dense":
        return DenseIndex(load_encoder(name))
    raise ValueError(
        f"encoder {name!r} has kind {kind!r}; the runner handles 'dense' and 'lexical'"
    )


def cached_index(index: UnitIndex, label: str) -> UnitIndex:
    """``index`` with its dense document vectors read from / written to the embedding cache
    (``~/.cache/situated-rag/eval``, keyed by model and texts); other indexes as they are."""
    if not isinstance(index, DenseIndex):
        return index
    from rag.eval.cache import CachedEncoder

    return DenseIndex(CachedEncoder(index.encoder, label=label))


# -- systems and their runs -------------------------------------------------------------------------


@dataclass
class SystemRun:
    """What one system returned for the evaluated queries.

    ``ranked[qid]`` is ``[(doc_id, score), ...]`` best first; ``chunk_hits[qid]`` (chunked
    protocol) the best chunks behind it as Hits whose ``source`` is the system name. ``timings``
    holds seconds by phase (``load_seconds``, ``encode_seconds``, ``query_seconds``, ...).
    """

    name: str
    ranked: dict[str, list[tuple[str, float]]]
    chunk_hits: dict[str, list[Hit]] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())

    def doc_ids(self) -> dict[str, list[str]]:
        return {qid: [d for d, _ in hits] for qid, hits in self.ranked.items()}


class System(ABC):
    """Ranks corpus documents for every evaluated query of a data set."""

    name: str = "system"

    @abstractmethod
    def run(self, dataset: BeirDataset, *, k: int) -> SystemRun: ...


def rank_documents(
    indices: np.ndarray, scores: np.ndarray, unit_doc_ids: Sequence[str], k: int
) -> list[tuple[str, float]]:
    """One query's unit hits -> its top-``k`` documents, a document scoring its best unit.

    ``indices``/``scores`` need not be sorted; ``-1`` marks an empty slot. Because units are
    visited best first, a document's first appearance carries its maximum unit score.
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    ranked: list[tuple[str, float]] = []
    seen: set[str] = set()
    for j in order:
        unit = int(indices[j])
        if unit < 0:
            continue
        doc_id = unit_doc_ids[unit]
        if doc_id in seen:
            continue
        seen.add(doc_id)
        ranked.append((doc_id, float(scores[j])))
        if len(ranked) == k:
            break
    return ranked


class IndexSystem(System):
    """An index over units (whole documents or chunks) turned into document rankings."""

    def __init__(
        self,
        name: str,
        index: UnitIndex,
        units: Units,
        *,
        batch_size: int = 32,
        show_progress: bool = False,
        setup_timings: Mapping[str, float] | None = None,
        chunk_hits_k: int | None = None,
    ) -> None:
        self.name = name
        self.index = index
        self.units = units
        self.batch_size = batch_size
        self.show_progress = show_progress
        # Time spent before run() on this system's behalf (model loading, chunking).
        self.setup_timings = dict(setup_timings or {})
        self.chunk_hits_k = chunk_hits_k

    def run(self, dataset: BeirDataset, *, k: int) -> SystemRun:
        units = self.units
        t0 = time.perf_counter()
        self.index.build(units, batch_size=self.batch_size, show_progress=self.show_progress)
        t1 = time.perf_counter()
        qids = list(dataset.queries)
        # max_per_doc units per document guarantee k distinct documents in the top depth units,
        # so the top-k documents by best-unit score are exact.
        depth = min(len(units), k * units.max_per_doc)
        ranked: dict[str, list[tuple[str, float]]] = {}
        chunk_hits: dict[str, list[Hit]] | None = {} if units.chunks is not None else None
        if qids and depth > 0:
            indices, scores = self.index.search(
                [dataset.queries[q] for q in qids], depth, batch_size=self.batch_size
            )
            for row, qid in enumerate(qids):
                ranked[qid] = rank_documents(indices[row], scores[row], units.doc_ids, k)
                if chunk_hits is not None and units.chunks is not None:
                    chunk_hits[qid] = self._chunk_hits(units.chunks, indices[row], scores[row])
        else:
            ranked = {q: [] for q in qids}
        t2 = time.perf_counter()
        return SystemRun(
            name=self.name,
            ranked=ranked,
            chunk_hits=chunk_hits,
            timings={
                **self.setup_timings,
                "encode_seconds": getattr(self.index, "cost_seconds", t1 - t0),
                "query_seconds": t2 - t1,
            },
            info={"num_units": len(units)},
        )

    def _chunk_hits(
        self, chunks: Sequence[Chunk], indices: np.ndarray, scores: np.ndarray
    ) -> list[Hit]:
        limit = self.chunk_hits_k or len(indices)
        hits: list[Hit] = []
        for unit, score in zip(indices[:limit].tolist(), scores[:limit].tolist(), strict=True):
            if unit < 0:
                continue
            hits.append(Hit(chunks[unit], float(score), rank=len(hits) + 1, source=self.name))
        return hits


# -- fusion over systems' document rankings ---------------------------------------------------------


def _doc_hits(ranked: Sequence[tuple[str, float]], source: str) -> list[Hit]:
    # Fusion matches hits by chunk id; at document level a document stands for itself.
    return [
        Hit(Chunk(id=doc_id, doc_id=doc_id, text="", start=0, end=0), score, rank, source)
        for rank, (doc_id, score) in enumerate(ranked, start=1)
    ]


def fuse_runs(runs: Sequence[SystemRun], fusion: str, *, k: int) -> SystemRun:
    """Fuse several systems' document rankings per query with the fusion named ``fusion``
    (``rag.retrieval.multi.parse_fusion``: ``default``, a method, or ``METHOD@candidates`` /
    ``@background``); the result is named ``fusion:NAME`` and its time includes its inputs'.
    Fusions with calibration or corpus statistics need the indexes: see ``rag.eval.fusion_bench``.
    """
    from rag.retrieval.multi import fuse as fuse_config
    from rag.retrieval.multi import parse_fusion

    config = parse_fusion(fusion)
    if config.stats not in ("candidates", "background"):
        raise ValueError(f"fusion {fusion!r} needs the indexes (rag.eval.fusion_bench)")

    def fuse(per_run: Mapping[str, Sequence[Hit]], *, k: int) -> list[Hit]:
        return fuse_config(per_run, config, k=k)

    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"fusion needs distinct run names, got {names}")
    t0 = time.perf_counter()
    qids = list(dict.fromkeys(q for r in runs for q in r.ranked))
    ranked: dict[str, list[tuple[str, float]]] = {}
    for qid in qids:
        per_run = {r.name: _doc_hits(r.ranked.get(qid, []), r.name) for r in runs}
        ranked[qid] = [(h.chunk.doc_id, h.score) for h in fuse(per_run, k=k)]
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


# -- the whole evaluation ---------------------------------------------------------------------------


@dataclass
class EvalConfig:
    protocol: Protocol = "whole"
    chunk_tokens: int = 64
    chunker: str = DEFAULT_CHUNKER
    batch_size: int = 32
    k: int = 100
    metrics: tuple[str, ...] = DEFAULT_METRICS
    fusions: tuple[str, ...] = ()
    ignore_identical_ids: bool = False
    show_progress: bool = False
    chunking: str = "packed"
    situated: tuple[str, ...] = ()
    residual: float | None = None
    # Cache the document vectors of registry encoders on disk (rag.eval.cache).
    cache: bool = True

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose one of: {PROTOCOLS}")
        if self.chunking not in CHUNKINGS:
            raise ValueError(f"unknown chunking {self.chunking!r}; choose one of: {CHUNKINGS}")
        if self.situated or self.residual is not None:
            from rag.encoders.situated import SITUATED_MODES, check_alpha

            unknown = [m for m in self.situated if m not in SITUATED_MODES]
            if unknown or len(set(self.situated)) != len(self.situated):
                raise ValueError(
                    f"situated modes must be distinct names of {', '.join(SITUATED_MODES)}; "
                    f"got {list(self.situated)}"
                )
            if self.protocol != "chunked":
                raise ValueError("situated encoders need the chunked protocol")
            if self.residual is not None:
                check_alpha(self.residual)
                if not any(m != "plain" for m in self.situated):
                    raise ValueError("--residual needs a situated mode other than plain")
        if self.chunk_tokens < 1:
            raise ValueError(f"chunk_tokens must be at least 1, got {self.chunk_tokens}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.k < 1:
            raise ValueError(f"k must be at least 1, got {self.k}")


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


def run_systems(
    dataset: BeirDataset, systems: Sequence[System], config: EvalConfig
) -> tuple[list[SystemRun], list[dict[str, Any]]]:
    """Run the systems, then each fusion of them; return the runs and their result rows."""
    check_fusions(config.fusions, len(systems))
    runs = [system.run(dataset, k=config.k) for system in systems]
    runs += [fuse_runs(runs[: len(systems)], f, k=config.k) for f in config.fusions]
    return runs, [score_run(r, dataset, config) for r in runs]


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
    if not encoder_names:
        raise ValueError("name at least one encoder")
    if len(set(encoder_names)) != len(encoder_names):
        raise ValueError(f"each encoder may be named once, got {list(encoder_names)}")
    check_fusions(config.fusions, len(encoder_names))
    t0 = time.perf_counter()
    units = make_units(dataset, config, chunker)
    chunk_seconds = time.perf_counter() - t0 if config.protocol == "chunked" else 0.0
    systems: list[System] = []
    for name in encoder_names:
        t1 = time.perf_counter()
        if config.situated and encoder_kind_of(name) == "dense":
            named = situated_indexes(name, config, encoders)
        else:
            index = make_index(name, encoders)
            if config.cache and not (encoders and name in encoders):
                index = cached_index(index, f"{dataset.name}/{config.protocol}")
            named = [(name, index)]
        load_seconds = time.perf_counter() - t1
        for run_name, index in named:
            systems.append(
                IndexSystem(
                    run_name,
                    index,
                    units,
                    batch_size=config.batch_size,
                    show_progress=config.show_progress,
                    setup_timings={
                        "load_seconds": load_seconds,
                        **(
                            {"chunk_seconds": chunk_seconds} if config.protocol == "chunked" else {}
                        ),
                    },
                    chunk_hits_k=config.k,
                )
            )
    _, rows = run_systems(dataset, systems, config)
    if config.situated:
        add_encode_ratios(rows)
    report: dict[str, Any] = {
        "dataset": dataset.name,
        "split": dataset.split,
        "protocol": config.protocol,
        "runs": rows,
        "num_queries": len(dataset.queries),
        "num_docs": len(dataset.corpus),
        "num_units": len(units),
        "k": config.k,
    }
    if config.protocol == "chunked":
        report["chunk_tokens"] = config.chunk_tokens
        report["chunker"] = config.chunker
        report["chunking"] = config.chunking
        if config.situated:
            report["situated"] = list(config.situated)
            report["residual"] = config.residual
        report["chunk_seconds"] = chunk_seconds
        report["docs_without_chunks"] = len(dataset.corpus) - len(set(units.doc_ids))
    return report


def encoder_kind_of(name: str) -> str:
    """``lexical`` for a registered lexical retriever, else ``dense``."""
    from rag.encoders.registry import encoder_kind

    return "dense" if name.startswith(SITEMB_SCHEME) else encoder_kind(name)


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


def _progress(items: Sequence[Any], desc: str, show: bool) -> Any:
    if not show:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, file=sys.stderr, unit="doc")
