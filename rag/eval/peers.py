"""The fusion of other frameworks, run over exactly our encoders' candidate lists, for comparison.

Peers (names as they appear in ``rag eval --peers`` reports):

- ``peer:langchain-ensemble``: LangChain's ``EnsembleRetriever`` (weighted reciprocal rank
  fusion with ``c=60``, deduplicating on our chunk id through ``id_key``), from
  ``langchain-classic`` (LangChain >= 1.0) or ``langchain`` (0.x).
- ``peer:llamaindex-reciprocal_rerank``, ``peer:llamaindex-relative_score``,
  ``peer:llamaindex-dist_based_score``: LlamaIndex's ``QueryFusionRetriever`` in that mode with
  ``num_queries=1`` (the query as given, no LLM query generation).

Each of our retrievers is wrapped as a LangChain / LlamaIndex retriever (``rag.adapters``), so
the peers receive the same hits in the same order with the same scores as our fusion does; a
peer is built once and then called per query. LangChain's ensemble returns no fused score, so its hits carry ``1/rank``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from rag.base import Retriever
from rag.types import Chunk, Hit

LLAMAINDEX_MODES = ("reciprocal_rerank", "relative_score", "dist_based_score")
PEERS: tuple[str, ...] = (
    "peer:langchain-ensemble",
    *(f"peer:llamaindex-{mode}" for mode in LLAMAINDEX_MODES),
)
# A peer answers one query with our Hits, best first.
Peer = Callable[[str], list[Hit]]


class StaticRetriever(Retriever):
    """Answers from precomputed hits: ``hits[key]`` for the query string ``key`` (evaluation
    passes query ids as the query strings, so that peers fuse the lists already retrieved)."""

    def __init__(self, name: str, hits: Mapping[str, Sequence[Hit]]) -> None:
        self.name = name
        self.hits = hits

    def retrieve(self, query: str, k: int = 10) -> list[Hit]:
        return list(self.hits.get(query, ())[:k])


def ensemble_retriever_class() -> type:
    """LangChain's ``EnsembleRetriever`` (``langchain-classic`` for LangChain 1.x)."""
    try:
        from langchain_classic.retrievers import EnsembleRetriever
    except ImportError:
        try:
            from langchain.retrievers import EnsembleRetriever  # LangChain 0.x
        except ImportError as exc:
            raise ImportError(
                "the LangChain peer needs EnsembleRetriever: pip install langchain-classic"
            ) from exc
    return EnsembleRetriever


def langchain_ensemble(
    retrievers: Sequence[Retriever], k: int, *, weights: Sequence[float] | None = None
) -> Peer:
    """LangChain's EnsembleRetriever over our retrievers (each asked for ``k`` hits)."""
    from rag.adapters.langchain import as_langchain_retriever

    wrapped, seen = _recorders(retrievers)
    ensemble = ensemble_retriever_class()(
        retrievers=[as_langchain_retriever(r, k=k) for r in wrapped],
        weights=list(weights) if weights is not None else [1.0] * len(retrievers),
        id_key="id",
    )

    def run(query: str) -> list[Hit]:
        seen.clear()
        docs = ensemble.invoke(query)[:k]
        return [
            Hit(seen[d.metadata["id"]], 1.0 / rank, rank, "peer:langchain-ensemble")
            for rank, d in enumerate(docs, start=1)
        ]

    return run


def llamaindex_fusion(
    retrievers: Sequence[Retriever],
    k: int,
    mode: str,
    *,
    weights: Sequence[float] | None = None,
) -> Peer:
    """LlamaIndex's QueryFusionRetriever (``mode``, one query, no LLM) over our retrievers."""
    if mode not in LLAMAINDEX_MODES:
        raise ValueError(
            f"unknown LlamaIndex fusion mode {mode!r}; choose one of {LLAMAINDEX_MODES}"
        )
    from llama_index.core.llms import MockLLM
    from llama_index.core.retrievers import QueryFusionRetriever

    from rag.adapters.llamaindex import as_llamaindex_retriever

    wrapped, seen = _recorders(retrievers)
    fusion = QueryFusionRetriever(
        # metadata="id": LlamaIndex deduplicates on a hash of text + metadata, so the nodes must
        # not carry per-retriever scores or ranks there
        [as_llamaindex_retriever(r, k=k, metadata="id") for r in wrapped],
        llm=MockLLM(),  # never called with num_queries=1; avoids resolving a default LLM
        mode=mode,
        similarity_top_k=k,
        num_queries=1,
        use_async=False,
        retriever_weights=list(weights) if weights is not None else None,
    )
    source = f"peer:llamaindex-{mode}"

    def run(query: str) -> list[Hit]:
        seen.clear()
        nodes = fusion.retrieve(query)
        return [
            Hit(seen[n.node.metadata["id"]], float(n.score or 0.0), rank, source)
            for rank, n in enumerate(nodes, start=1)
        ]

    return run


def make_peer(
    name: str,
    retrievers: Sequence[Retriever],
    k: int,
    *,
    weights: Sequence[float] | None = None,
) -> Peer:
    """The peer called ``name`` (one of :data:`PEERS`) over ``retrievers``."""
    if name == "peer:langchain-ensemble":
        return langchain_ensemble(retrievers, k, weights=weights)
    prefix = "peer:llamaindex-"
    if name.startswith(prefix) and name[len(prefix) :] in LLAMAINDEX_MODES:
        return llamaindex_fusion(retrievers, k, name[len(prefix) :], weights=weights)
    raise ValueError(f"unknown peer {name!r}; choose one of: {', '.join(PEERS)}")


class _Recorder(Retriever):
    """Passes queries to ``inner`` and remembers the chunks it returned (by id) in ``seen``, so a
    peer's documents or nodes map back to our exact Chunk objects."""

    def __init__(self, inner: Retriever, seen: dict[str, Chunk]) -> None:
        self.inner = inner
        self.name = inner.name
        self.seen = seen

    def retrieve(self, query: str, k: int = 10) -> list[Hit]:
        hits = self.inner.retrieve(query, k)
        for h in hits:
            self.seen.setdefault(h.chunk.id, h.chunk)
        return hits


def _recorders(retrievers: Sequence[Retriever]) -> tuple[list[Retriever], dict[str, Chunk]]:
    seen: dict[str, Chunk] = {}
    return [_Recorder(r, seen) for r in retrievers], seen
