"""A LlamaIndex ``BaseRetriever`` over any of our Retrievers (thin; LlamaIndex imported lazily).

from rag.adapters.llamaindex import as_llamaindex_retriever
from llama_index.core.query_engine import RetrieverQueryEngine
engine = RetrieverQueryEngine.from_args(as_llamaindex_retriever(index.retriever(), k=4), llm=llm)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from rag.adapters.langchain import adapter_score, hit_metadata

if TYPE_CHECKING:
    from llama_index.core.retrievers import BaseRetriever as LIBaseRetriever

    from rag.base import Retriever

MetadataView = Literal["full", "id"]


def _retriever_class() -> type[LIBaseRetriever]:
    try:
        from llama_index.core.retrievers import BaseRetriever as LIBaseRetriever
        from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
    except ImportError as exc:
        raise ImportError(
            'the LlamaIndex adapter needs llama-index-core: pip install "situated-rag[llamaindex]"'
        ) from exc

    class RagLlamaIndexRetriever(LIBaseRetriever):
        """LlamaIndex view of a ``rag`` retriever.

        ``metadata="full"`` puts source, page, section, offsets and score on each node (for
        citing); ``"id"`` keeps only the chunk id, so that LlamaIndex's own fusion, which
        deduplicates on a hash of text and metadata, merges the same chunk across retrievers.
        """

        def __init__(self, retriever: Retriever, k: int = 4, metadata: MetadataView = "full"):
            self._rag_retriever = retriever
            self._k = k
            self._metadata = metadata
            super().__init__()

        def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            hits = self._rag_retriever.retrieve(query_bundle.query_str, k=self._k)
            nodes = []
            for h in hits:
                meta: dict[str, Any] = (
                    hit_metadata(h) if self._metadata == "full" else {"id": h.chunk.id}
                )
                node = TextNode(
                    id_=h.chunk.id,
                    text=h.chunk.text,
                    metadata=meta,
                    excluded_embed_metadata_keys=list(meta),
                    excluded_llm_metadata_keys=[k for k in meta if k not in ("source", "page")],
                )
                nodes.append(NodeWithScore(node=node, score=adapter_score(h)))
            return nodes

    return RagLlamaIndexRetriever


_CLASS: type[LIBaseRetriever] | None = None


def llamaindex_retriever_class() -> type[LIBaseRetriever]:
    global _CLASS
    if _CLASS is None:
        _CLASS = _retriever_class()
    return _CLASS


def as_llamaindex_retriever(
    retriever: Retriever, k: int = 4, metadata: MetadataView = "full"
) -> LIBaseRetriever:
    return llamaindex_retriever_class()(retriever, k, metadata)
