"""A LlamaIndex ``BaseRetriever`` over any of our Retrievers (thin; LlamaIndex imported lazily).

from rag.adapters.llamaindex import as_llamaindex_retriever
from llama_index.core.query_engine import RetrieverQueryEngine
engine = RetrieverQueryEngine.from_args(as_llamaindex_retriever(index.retriever(), k=4), llm=llm)

Nodes carry ``start_char_idx``/``end_char_idx`` (offsets into the source's text), ``ref_doc_id``
(the document id) and the flat metadata of :mod:`rag.adapters.metadata`; the LLM sees only
source, title, section and page label, an embedding only title and section. A node's score is
the hit's relevance in [0, 1] where the index fitted one, so ``SimilarityPostprocessor`` cuts
on one scale for every query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from rag.adapters.metadata import (
    adapter_score,
    embed_excluded_keys,
    hit_metadata,
    llm_excluded_keys,
)

if TYPE_CHECKING:
    from llama_index.core.retrievers import BaseRetriever as LIBaseRetriever

    from rag.base import Retriever

MetadataView = Literal["full", "id"]


def _retriever_class() -> type[LIBaseRetriever]:
    try:
        from llama_index.core.retrievers import BaseRetriever as LIBaseRetriever
        from llama_index.core.schema import (
            NodeRelationship,
            NodeWithScore,
            QueryBundle,
            RelatedNodeInfo,
            TextNode,
        )
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
                c = h.chunk
                meta = hit_metadata(h) if self._metadata == "full" else {"id": c.id}
                node = TextNode(
                    id_=c.id,
                    text=c.text,
                    metadata=meta,
                    start_char_idx=c.start,
                    end_char_idx=c.end,
                    # ref_doc_id is read from the SOURCE relationship
                    relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=c.doc_id)},
                    excluded_embed_metadata_keys=embed_excluded_keys(meta),
                    excluded_llm_metadata_keys=llm_excluded_keys(meta),
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
