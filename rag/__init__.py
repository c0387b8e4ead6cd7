"""situated-rag: offline retrieval-augmented generation with situated chunk encoders and fusion.

The common names, imported on first use so that ``import rag`` stays light (no torch, Chroma or
bm25s until something needs them)::

    import rag
    index = rag.Index.create(".rag_index/docs", encoders=["minilm", "bm25"])
    index.ingest(rag.load_directory("docs"))
    hits = index.search("why keep a chunk's context?", k=3)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "Document": "rag.types",
    "Span": "rag.types",
    "Chunk": "rag.types",
    "Hit": "rag.types",
    "IngestError": "rag.types",
    "load_directory": "connectors.directory",
    "load_file": "connectors.directory",
    "get_chunker": "rag.chunking",
    "load_encoder": "rag.encoders.registry",
    "get_situated": "rag.encoders.situated",
    "get_store": "rag.stores",
    "StoreRetriever": "rag.retrieval.store_retriever",
    "fuse": "rag.retrieval.multi",
    "FusionConfig": "rag.retrieval.multi",
    "FusionRetriever": "rag.retrieval.multi",
    "ConfidentRAG": "rag.answering",
    "Index": "rag.index",
    "IndexConfig": "rag.index",
    "EncoderEntry": "rag.index",
    "IndexConfigError": "rag.index",
    "IndexLockedError": "rag.index",
    "IngestReport": "rag.index",
}

__all__ = [
    "Chunk",
    "ConfidentRAG",
    "Document",
    "EncoderEntry",
    "FusionConfig",
    "FusionRetriever",
    "Hit",
    "Index",
    "IndexConfig",
    "IndexConfigError",
    "IndexLockedError",
    "IngestError",
    "IngestReport",
    "Span",
    "StoreRetriever",
    "fuse",
    "get_chunker",
    "get_situated",
    "get_store",
    "load_directory",
    "load_encoder",
    "load_file",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from connectors.directory import load_directory, load_file
    from rag.answering import ConfidentRAG
    from rag.chunking import get_chunker
    from rag.encoders.registry import load_encoder
    from rag.encoders.situated import get_situated
    from rag.index import (
        EncoderEntry,
        Index,
        IndexConfig,
        IndexConfigError,
        IndexLockedError,
        IngestReport,
    )
    from rag.retrieval.multi import FusionConfig, FusionRetriever, fuse
    from rag.retrieval.store_retriever import StoreRetriever
    from rag.stores import get_store
    from rag.types import Chunk, Document, Hit, IngestError, Span
