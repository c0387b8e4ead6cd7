"""Chroma as the vector store: embedded on disk by default, or a ``chroma run`` server over HTTP.

Only our own vectors go in: the collection is made with ``embedding_function=None`` and every
call passes ``embeddings=`` (never ``query_texts=``, whose default embedding function would
download an ONNX model). One collection per encoder, in cosine space; Chroma returns the cosine
distance ``1 - cos``, which is turned back into the similarity. The chunk text is the Chroma
document and every other Chunk field is flat metadata (see ``rag.stores._codec``), so chunks come
back exactly as they went in.

Telemetry: Chroma 1.x's product telemetry client (``chromadb.telemetry.product.posthog``) is a
no-op, and ``anonymized_telemetry=False`` is passed as well; the tests check that neither the
embedded client nor ``chroma run`` opens a socket beyond loopback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.base import Store
from rag.stores import _chroma_db
from rag.stores._codec import (
    as_matrix,
    check_k,
    chroma_hits,
    chunk_from_chroma,
    chunk_to_chroma,
    last_occurrences,
    one_query,
    safe_collection_name,
)
from rag.stores._filters import chroma_where, fully_pushed
from rag.types import Chunk
from rag.types.filters import Where

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

COLLECTION_FORMAT_VERSION = 1
# Chroma's defaults are 100/100; on 20k random 384-d vectors they gave recall@10 ~0.4-0.7, and
# 200/200 ~0.9 for ~10% more add time. Set when a collection is created; ``hnsw=`` overrides.
DEFAULT_HNSW = {"ef_construction": 200, "ef_search": 200}
_INCLUDE_CHUNK = ["documents", "metadatas"]


def _chromadb() -> Any:
    """Import chromadb with telemetry off (its env var is read at import)."""
    from rag.offline import apply_offline_env

    apply_offline_env()
    os.environ["ANONYMIZED_TELEMETRY"] = "False"
    try:
        import chromadb
    except ImportError as exc:  # pragma: no cover - chromadb is a core dependency
        raise ImportError("ChromaStore needs chromadb: pip install 'chromadb>=1.0'") from exc
    return chromadb


def _settings() -> Any:
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False, allow_reset=False)


class ChromaStore(Store):
    """One Chroma collection holding one encoder's vectors.

    ``ChromaStore(path, collection)`` opens (or creates) an embedded database in the folder
    ``path``; ``ChromaStore.http(host, port, collection)`` talks to a ``chroma run`` server.
    ``hnsw`` sets index parameters of a new collection (``ef_search``, ``ef_construction``,
    ``max_neighbors``; see ``DEFAULT_HNSW``); an existing collection keeps its own.
    ``collection`` is usually the encoder name; names Chroma does not accept (``"org/model"``)
    are mapped to a valid one with a hash suffix, and the original is kept in the collection's
    metadata. Writes are durable when a call returns (Chroma persists every write).
    """

    def __init__(
        self,
        path: str | Path,
        collection: str = "default",
        *,
        batch_size: int | None = None,
        hnsw: Mapping[str, int] | None = None,
    ) -> None:
        chromadb = _chromadb()
        Path(path).mkdir(parents=True, exist_ok=True)
        self._seen: _chroma_db.Folder | None = _chroma_db.folder(path)
        _chroma_db.check(self._seen)  # another process wrote since this process looked
        client = chromadb.PersistentClient(path=str(path), settings=_settings())
        self._connect(client, collection, batch_size, hnsw)
        _chroma_db.connected(self._seen)
        self._generation = self._seen.generation

    def refresh(self) -> bool:
        """Re-open the collection when another process wrote to the embedded database since
        this process last looked (a stat and a 100-byte read when nothing changed; a server's
        clients need none); True when it did. Readers call it before searching."""
        if self._seen is None:
            return False
        _chroma_db.check(self._seen)
        if self._generation == self._seen.generation:
            return False
        client = _chromadb().PersistentClient(path=self._seen.path, settings=_settings())
        self._connect(client, self.name, self.batch_size, None)
        _chroma_db.connected(self._seen)
        self._generation = self._seen.generation
        return True

    def _wrote(self) -> None:
        if self._seen is not None:
            _chroma_db.wrote(self._seen)

    @classmethod
    def http(
        cls,
        host: str = "localhost",
        port: int = 8000,
        collection: str = "default",
        *,
        ssl: bool = False,
        headers: dict[str, str] | None = None,
        batch_size: int | None = None,
        hnsw: Mapping[str, int] | None = None,
    ) -> ChromaStore:
        """A store on a Chroma server (``chroma run --path DIR --host H --port P``)."""
        chromadb = _chromadb()
        client = chromadb.HttpClient(
            host=host, port=port, ssl=ssl, headers=headers, settings=_settings()
        )
        store = cls.__new__(cls)
        store._seen = None  # one server process: its clients always see its writes
        store._connect(client, collection, batch_size, hnsw)
        return store

    def _connect(
        self,
        client: ClientAPI,
        collection: str,
        batch_size: int | None,
        hnsw: Mapping[str, int] | None,
    ) -> None:
        if hnsw and "space" in hnsw:
            raise ValueError("rag stores always use the cosine space; leave 'space' out of hnsw")
        self._client = client
        self.name = collection
        self._collection: Collection = client.get_or_create_collection(
            name=safe_collection_name(collection),
            embedding_function=None,
            configuration={"hnsw": {**DEFAULT_HNSW, **(hnsw or {}), "space": "cosine"}},
            metadata={"rag_encoder": collection, "rag_format_version": COLLECTION_FORMAT_VERSION},
        )
        # get_or_create ignores these settings for an existing collection: check what it has.
        space = (self._collection.configuration_json.get("hnsw") or {}).get("space")
        if space != "cosine":
            raise ValueError(
                f"Chroma collection {self._collection.name!r} uses {space!r} distance; "
                "rag stores need 'cosine' (use another collection name)"
            )
        version = (self._collection.metadata or {}).get("rag_format_version")
        if version != COLLECTION_FORMAT_VERSION:
            raise ValueError(
                f"Chroma collection {self._collection.name!r} has rag format version "
                f"{version!r}; this code reads {COLLECTION_FORMAT_VERSION}"
            )
        limit = client.get_max_batch_size()
        self.batch_size = min(batch_size or limit, limit)

    # -- Store ---------------------------------------------------------------------------

    def add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if len(chunks) == 0:
            return
        matrix = as_matrix(vectors, rows=len(chunks))
        keep = last_occurrences(chunks)  # Chroma refuses duplicate ids within one upsert
        records = [chunk_to_chroma(chunks[i]) for i in keep]  # refuses bad metadata first
        for lo, hi in self._batches(len(keep)):
            self._collection.upsert(
                ids=[chunks[i].id for i in keep[lo:hi]],
                embeddings=matrix[keep[lo:hi]],
                documents=[doc for doc, _ in records[lo:hi]],
                metadatas=[meta for _, meta in records[lo:hi]],
            )
        self._wrote()

    def search(
        self, vector: np.ndarray, k: int = 10, *, where: Where | None = None
    ) -> list[tuple[Chunk, float]]:
        return self.search_many(one_query(vector), k, where=where)[0]

    def search_many(
        self, vectors: np.ndarray, k: int = 10, *, where: Where | None = None
    ) -> list[list[tuple[Chunk, float]]]:
        check_k(k)
        queries = as_matrix(vectors)
        if where is not None:
            return [self._search_where(queries[i : i + 1], k, where) for i in range(len(queries))]
        return self._query(queries, k, None)

    def _search_where(self, query: np.ndarray, k: int, where: Where) -> list[tuple[Chunk, float]]:
        """Chroma filters what it can (:mod:`rag.stores._filters`); the rest is checked here,
        on over-fetched candidates, or when too few of those match, by asking Chroma for the
        matching ids first and searching only among them (so ``k`` come back when ``k`` match)."""
        total = self.count()
        if total == 0 or (where.resolved is not None and not where.resolved):
            return []
        clause = chroma_where(where)
        if fully_pushed(where):
            return self._query(query, min(k, total), clause)[0]
        found = self._query(query, min(max(4 * k, 50), total), clause)[0]
        kept = [(c, s) for c, s in found if where.matches(c)]
        if len(kept) >= k:
            return kept[:k]
        got = self._collection.get(where=clause, include=["metadatas"])
        ids = [
            i
            for i, meta in zip(got["ids"], got["metadatas"] or [], strict=True)
            if where.matches(chunk_from_chroma(i, None, dict(meta or {})))
        ]
        return self._query(query, min(k, len(ids)), None, ids=ids)[0] if ids else []

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of the known ``ids`` (for MMR's similarities)."""
        got = self._collection.get(ids=list(dict.fromkeys(ids)), include=["embeddings"])
        embeddings = got["embeddings"] if got["embeddings"] is not None else []
        return {
            i: np.asarray(e, dtype=np.float32) for i, e in zip(got["ids"], embeddings, strict=True)
        }

    def _query(
        self,
        queries: np.ndarray,
        k: int,
        clause: dict[str, Any] | None,
        ids: list[str] | None = None,
    ) -> list[list[tuple[Chunk, float]]]:
        results: list[list[tuple[Chunk, float]]] = []
        for lo, hi in self._batches(queries.shape[0]):
            found = self._collection.query(
                query_embeddings=queries[lo:hi],
                n_results=k,
                where=clause,
                ids=ids,
                include=["documents", "metadatas", "distances"],
            )
            for ids, docs, metas, dists in zip(
                found["ids"],
                found["documents"] or [[] for _ in found["ids"]],
                found["metadatas"] or [[] for _ in found["ids"]],
                found["distances"] or [[] for _ in found["ids"]],
                strict=True,
            ):
                results.append(chroma_hits(ids, docs, metas, dists))
        return results

    def delete(self, ids: Sequence[str]) -> None:
        unique = list(dict.fromkeys(ids))
        for lo, hi in self._batches(len(unique)):
            self._collection.delete(ids=unique[lo:hi])  # unknown ids are ignored
        self._wrote()

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        unique = list(dict.fromkeys(doc_ids))
        for lo, hi in self._batches(len(unique)):
            self._collection.delete(where={"doc_id": {"$in": unique[lo:hi]}})
        self._wrote()

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        unique = list(dict.fromkeys(ids))
        found: set[str] = set()
        for lo, hi in self._batches(len(unique)):
            found.update(self._collection.get(ids=unique[lo:hi], include=[])["ids"])
        return found

    def count(self) -> int:
        return self._collection.count()

    def ids(self) -> list[str]:
        """Every stored id (for consistency checks), read page by page."""
        out: list[str] = []
        while page := self._collection.get(include=[], limit=self.batch_size, offset=len(out))[
            "ids"
        ]:
            out += page
        return out

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        unique = list(dict.fromkeys(ids))
        by_id: dict[str, Chunk] = {}
        for lo, hi in self._batches(len(unique)):
            got = self._collection.get(ids=unique[lo:hi], include=_INCLUDE_CHUNK)
            for i, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                by_id[i] = chunk_from_chroma(i, doc, dict(meta or {}))
        return [by_id[i] for i in ids if i in by_id]  # Chroma returns its own order

    # -- lifecycle -----------------------------------------------------------------------------

    def save(self) -> None:
        """Nothing to do: Chroma persists every write (kept so callers can treat stores alike)."""

    def close(self) -> None:
        """Release the client (the embedded database's files and threads)."""
        close = getattr(self._client, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> ChromaStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _batches(self, n: int) -> Iterator[tuple[int, int]]:
        for lo in range(0, n, self.batch_size):
            yield lo, min(lo + self.batch_size, n)
