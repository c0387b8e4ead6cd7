"""A LangChain ``Embeddings`` over one of our dense encoders (imports langchain-core;
:mod:`rag.adapters.langchain` loads it on first use).

from rag.adapters.langchain import as_langchain_embeddings
emb = as_langchain_embeddings("minilm")      # or an Encoder object
emb.embed_query("how do I configure a theme?")  # -> list[float], L2-normalised

Documents and queries go through the encoder's own roles, so model prefixes ("query: " /
"passage: ") are applied as in the rest of the toolkit. The async methods are the base class's
(the sync call in an executor). Lexical encoders (BM25) give term lists, not vectors: refused.
"""

from __future__ import annotations

import os

from langchain_core.embeddings import Embeddings

from rag.adapters._encoders import float_rows as _rows
from rag.adapters._encoders import resolve_encoder as _encoder
from rag.base import Encoder


class RagEmbeddings(Embeddings):
    """LangChain view of a dense ``rag`` encoder: ``RagEmbeddings(encoder)`` takes an
    :class:`rag.base.Encoder` or a name for :func:`rag.encoders.registry.load_encoder`
    (``"minilm"``, a sentence-transformers folder); ``batch_size`` is the documents' batch."""

    def __init__(
        self,
        encoder: Encoder | str | os.PathLike[str],
        *,
        device: str = "cpu",
        batch_size: int = 64,
    ) -> None:
        model = _encoder(encoder, device)
        if model.kind != "dense":
            raise ValueError(
                f"encoder {model.name!r} is {model.kind}: it gives term lists, not vectors; "
                "LangChain embeddings need a dense encoder (for example 'minilm')"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.encoder = model
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        return self.encoder.name

    def __repr__(self) -> str:
        return f"RagEmbeddings({self.encoder.name!r})"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return _rows(self.encoder.embed_documents(list(texts), batch_size=self.batch_size))

    def embed_query(self, text: str) -> list[float]:
        return _rows(self.encoder.embed_queries([text]))[0]
