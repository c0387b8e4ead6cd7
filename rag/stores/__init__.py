"""Stores: one index per encoder, one contract (``rag.base.Store``) for dense and lexical ones.

Dense stores rank by cosine similarity over L2-normalised float32 vectors; the lexical store
ranks by BM25 over term lists. ``get_store(kind, **options)`` builds one by name:

- ``"memory"``: ``MemoryStore``, exact numpy search; ``path=`` a folder to persist to (optional).
- ``"chroma"``: ``ChromaStore``, embedded Chroma on disk; ``path=``, ``collection=``.
- ``"chroma-http"``: ``ChromaStore.http``, a ``chroma run`` server; ``host=``, ``port=``,
  ``collection=``.
- ``"bm25"``: ``BM25Store``, BM25 over a lexical encoder's terms, updated incrementally;
  ``path=`` a folder to persist to (optional), ``k1=``, ``b=``, ``method=``.
- ``"pgvector"``: ``PgVectorStore``, PostgreSQL with pgvector (HNSW, cosine); ``dsn=`` (default:
  the ``RAG_PGVECTOR_DSN`` environment variable), ``table=`` (or ``collection=``), ``dim=``.

Importing this package does not import chromadb or psycopg; the stores import them on first use.
The BM25 store needs only numpy (tokenising is the encoder's job).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from rag.base import Store
from rag.stores._bm25_segments import Method
from rag.stores.bm25 import BM25Store
from rag.stores.chroma import ChromaStore
from rag.stores.memory import MemoryStore
from rag.stores.pgvector import PgVectorStore

StoreKind = Literal["chroma", "memory", "chroma-http", "bm25", "pgvector"]
DSN_ENV = "RAG_PGVECTOR_DSN"


def _memory(*, path: str | Path | None = None) -> MemoryStore:
    return MemoryStore() if path is None else MemoryStore.open(path)


def _bm25(
    *,
    path: str | Path | None = None,
    k1: float | None = None,
    b: float | None = None,
    method: Method | None = None,
) -> BM25Store:
    if path is not None:
        return BM25Store.open(path, k1=k1, b=b, method=method)
    params = {"k1": k1, "b": b, "method": method}
    return BM25Store(**{key: v for key, v in params.items() if v is not None})


def _chroma(
    *,
    path: str | Path,
    collection: str = "default",
    batch_size: int | None = None,
    hnsw: Mapping[str, int] | None = None,
) -> ChromaStore:
    return ChromaStore(path, collection, batch_size=batch_size, hnsw=hnsw)


def _pgvector(
    *,
    dsn: str | None = None,
    table: str | None = None,
    collection: str = "default",
    dim: int | None = None,
    ef_search: int | None = None,
) -> PgVectorStore:
    dsn = dsn or os.environ.get(DSN_ENV)
    if not dsn:
        raise ValueError(
            f"the pgvector store needs a database: pass dsn='postgresql://...' or set {DSN_ENV}"
        )
    extra = {} if ef_search is None else {"ef_search": ef_search}
    return PgVectorStore(dsn, table or collection, dim, **extra)


STORES: dict[str, Callable[..., Store]] = {
    "chroma": _chroma,
    "memory": _memory,
    "chroma-http": ChromaStore.http,
    "bm25": _bm25,
    "pgvector": _pgvector,
}


def get_store(kind: StoreKind, **options: Any) -> Store:
    """The store called ``kind``, built with ``options`` (see the module docstring)."""
    try:
        factory = STORES[kind]
    except KeyError:
        raise ValueError(
            f"unknown store kind {kind!r}; choose one of: {', '.join(sorted(STORES))}"
        ) from None
    return factory(**options)


__all__ = [
    "BM25Store",
    "ChromaStore",
    "DSN_ENV",
    "MemoryStore",
    "PgVectorStore",
    "STORES",
    "StoreKind",
    "get_store",
]
