"""Vector stores: one index per encoder, cosine similarity over L2-normalised float32 vectors.

``get_store(kind, **options)`` builds one by name:

- ``"memory"``: ``MemoryStore``, exact numpy search; ``path=`` a folder to persist to (optional).
- ``"chroma"``: ``ChromaStore``, embedded Chroma on disk; ``path=``, ``collection=``.
- ``"chroma-http"``: ``ChromaStore.http``, a ``chroma run`` server; ``host=``, ``port=``,
  ``collection=``.

Importing this package does not import chromadb; ``ChromaStore`` imports it on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from rag.base import Store
from rag.stores.chroma import ChromaStore
from rag.stores.memory import MemoryStore

StoreKind = Literal["chroma", "memory", "chroma-http"]


def _memory(*, path: str | Path | None = None) -> MemoryStore:
    return MemoryStore() if path is None else MemoryStore.open(path)


def _chroma(
    *,
    path: str | Path,
    collection: str = "default",
    batch_size: int | None = None,
    hnsw: Mapping[str, int] | None = None,
) -> ChromaStore:
    return ChromaStore(path, collection, batch_size=batch_size, hnsw=hnsw)


STORES: dict[str, Callable[..., Store]] = {
    "chroma": _chroma,
    "memory": _memory,
    "chroma-http": ChromaStore.http,
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


__all__ = ["ChromaStore", "MemoryStore", "STORES", "StoreKind", "get_store"]
