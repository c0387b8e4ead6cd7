"""A LlamaIndex ``BaseEmbedding`` over one of our dense encoders (imports llama-index-core).

    from rag.adapters.llamaindex_embedding import RagEmbedding
    embed = RagEmbedding("minilm")                      # or an Encoder object
    index = VectorStoreIndex(nodes, embed_model=embed)
    situated = RagEmbedding("minilm", situated="prefix")
    index = VectorStoreIndex(situated(nodes), embed_model=situated)  # nodes embedded in context

Queries and texts go through the encoder's own roles (model prefixes such as "query: " /
"passage: " applied as everywhere in the toolkit). Situated modes
(:mod:`rag.encoders.situated`) embed a chunk in its context, which a bare text does not carry:
they apply where the adapter is given nodes, as a transformation (``embed(nodes)``, or in an
``IngestionPipeline`` after :class:`~rag.adapters.llamaindex_parser.RagNodeParser`, whose
nodes record title, section and context span); texts and queries stay plain, since a situated
index is queried with the base encoder. ``prefix`` and ``sitemb`` work over any dense encoder,
``late``/``trained`` need a sentence-transformers model, ``contextual`` an LLM (``options``).
Lexical encoders (BM25) give term lists, not vectors: refused.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.schema import BaseNode, MetadataMode

from rag.adapters._encoders import float_rows as _rows
from rag.adapters._encoders import resolve_encoder as _encoder
from rag.adapters.llamaindex_parser import node_chunk
from rag.base import Encoder


class RagEmbedding(BaseEmbedding):
    """LlamaIndex view of a dense ``rag`` encoder (an :class:`rag.base.Encoder` or a name for
    :func:`rag.encoders.registry.load_encoder`); ``situated`` names a situated mode for nodes
    (``"plain"``: LlamaIndex's own embedding text, the node's embed view)."""

    situated: str = Field(default="plain", description="Situated mode for nodes.")
    _encoder: Encoder = PrivateAttr()
    _situated: Any = PrivateAttr(default=None)

    def __init__(
        self,
        encoder: Encoder | str | os.PathLike[str],
        *,
        situated: str = "plain",
        device: str = "cpu",
        embed_batch_size: int = 64,
        **options: Any,
    ) -> None:
        model = _encoder(encoder, device)
        if model.kind != "dense":
            raise ValueError(
                f"encoder {model.name!r} is {model.kind}: it gives term lists, not vectors; "
                "LlamaIndex embeddings need a dense encoder (for example 'minilm')"
            )
        super().__init__(model_name=model.name, embed_batch_size=embed_batch_size)
        self.situated = situated
        self._encoder = model
        if situated != "plain":
            from rag.encoders.situated import get_situated

            self._situated = get_situated(situated, model, **options)
        elif options:
            raise TypeError(f"options {sorted(options)} apply to a situated mode only")

    @classmethod
    def class_name(cls) -> str:
        return "RagEmbedding"

    @property
    def encoder(self) -> Encoder:
        return self._encoder

    @property
    def dim(self) -> int:
        return int(self._encoder.dim)

    def _get_query_embedding(self, query: str) -> list[float]:
        return _rows(self._encoder.embed_queries([query]))[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return _rows(self._encoder.embed_documents([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return _rows(self._encoder.embed_documents(list(texts), batch_size=self.embed_batch_size))

    async def _aget_query_embedding(self, query: str) -> list[float]:
        # encoding is CPU-bound and blocking: keep it off the event loop
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)

    def embed_nodes(self, nodes: Sequence[BaseNode]) -> list[list[float]]:
        """Each node's vector read in its context (the situated mode); plain: its embed view."""
        if self._situated is None:
            return self.get_text_embedding_batch(
                [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
            )
        chunks = [node_chunk(n) for n in nodes]
        vectors = self._situated.embed_chunks(chunks, batch_size=self.embed_batch_size)
        return _rows(vectors.situated)

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        if self._situated is None:
            return super().__call__(nodes, **kwargs)
        for node, vector in zip(nodes, self.embed_nodes(nodes), strict=True):
            node.embedding = vector
        return nodes

    async def acall(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        if self._situated is None:
            return await super().acall(nodes, **kwargs)
        return await asyncio.to_thread(self.__call__, nodes, **kwargs)
