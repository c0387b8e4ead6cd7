"""How stores write a Chunk down and read it back exactly, plus shared input checks.

Two encodings: a JSON object (one line of the memory store's ``chunks.jsonl``) and Chroma's flat
metadata (values must be str/int/float/bool, and ``None`` is not allowed, so an absent key means
``None``). Chunk ``metadata`` must survive JSON unchanged: a value JSON would silently alter
(a tuple, a non-string key, NaN, a datetime) is refused at ``add`` time instead of coming back
different.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import numpy as np

from rag.types import Chunk

# Bump when the stored layout of a chunk changes; readers refuse newer versions.
CHUNK_FORMAT_VERSION = 1

CHUNK_FIELDS = (
    "id",
    "doc_id",
    "text",
    "start",
    "end",
    "source",
    "title",
    "section",
    "page",
    "context",
    "context_start",
    "context_end",
    "metadata",
)
if tuple(f.name for f in fields(Chunk)) != CHUNK_FIELDS:  # pragma: no cover - guards a type edit
    raise RuntimeError("rag.types.Chunk changed: update rag/stores/_codec.py to store new fields")


def metadata_json(chunk: Chunk) -> str:
    """``chunk.metadata`` as JSON, refusing values that would not come back equal."""
    try:
        text = json.dumps(chunk.metadata, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"chunk {chunk.id}: metadata must be plain JSON (str keys, str/int/float/bool/None, "
            f"lists, dicts): {exc}"
        ) from exc
    if json.loads(text) != chunk.metadata:
        raise ValueError(
            f"chunk {chunk.id}: metadata would not round-trip through JSON "
            "(use lists, not tuples, and string keys)"
        )
    return text


# Left out of a chunk's JSON when they hold these values (an index's stores keep chunks with no
# text, context, title or metadata: writing the empty fields out was a third of each record).
_DEFAULTS: dict[str, Any] = {
    "text": "",
    "title": None,
    "section": [],
    "page": None,
    "context": "",
    "metadata": {},
}


def chunk_to_json(chunk: Chunk) -> dict[str, Any]:
    metadata_json(chunk)  # validate
    data = {
        "id": chunk.id,
        "doc_id": chunk.doc_id,
        "text": chunk.text,
        "start": chunk.start,
        "end": chunk.end,
        "source": chunk.source,
        "title": chunk.title,
        "section": list(chunk.section),
        "page": chunk.page,
        "context": chunk.context,
        "context_start": chunk.context_start,
        "context_end": chunk.context_end,
        "metadata": chunk.metadata,
    }
    return {k: v for k, v in data.items() if k not in _DEFAULTS or v != _DEFAULTS[k]}


def chunk_from_json(data: dict[str, Any]) -> Chunk:
    full = {**_DEFAULTS, **data}
    return Chunk(**{**full, "section": tuple(full["section"]), "metadata": dict(full["metadata"])})


def chunk_to_chroma(chunk: Chunk) -> tuple[str, dict[str, str | int | float | bool]]:
    """The document text and flat metadata Chroma stores for a chunk (its id is Chroma's id)."""
    meta: dict[str, str | int | float | bool] = {
        "doc_id": chunk.doc_id,
        "start": chunk.start,
        "end": chunk.end,
        "source": chunk.source,
        "section": json.dumps(list(chunk.section), ensure_ascii=False),
        "context": chunk.context,
        "context_start": chunk.context_start,
        "context_end": chunk.context_end,
        "metadata": metadata_json(chunk),
        "rag_chunk_format": CHUNK_FORMAT_VERSION,
    }
    if chunk.title is not None:
        meta["title"] = chunk.title
    if chunk.page is not None:
        meta["page"] = chunk.page
    return chunk.text, meta


def chunk_from_chroma(id: str, document: str | None, meta: dict[str, Any]) -> Chunk:
    version = meta.get("rag_chunk_format")
    if version != CHUNK_FORMAT_VERSION:
        raise ValueError(
            f"record {id!r} was not written by this version of rag.stores "
            f"(chunk format {version!r}, expected {CHUNK_FORMAT_VERSION})"
        )
    return Chunk(
        id=id,
        doc_id=meta["doc_id"],
        text=document or "",
        start=meta["start"],
        end=meta["end"],
        source=meta["source"],
        title=meta.get("title"),
        section=tuple(json.loads(meta["section"])),
        page=meta.get("page"),
        context=meta["context"],
        context_start=meta["context_start"],
        context_end=meta["context_end"],
        metadata=json.loads(meta["metadata"]),
    )


def chroma_hits(
    ids: Sequence[str],
    documents: Sequence[str | None],
    metadatas: Sequence[Mapping[str, Any] | None],
    distances: Sequence[float],
) -> list[tuple[Chunk, float]]:
    """One query's results as (chunk, cosine similarity), skipping records with no metadata:
    ids whose records another process deleted after this client loaded its vector index."""
    return [
        (chunk_from_chroma(i, doc, dict(meta)), 1.0 - float(dist))
        for i, doc, meta, dist in zip(ids, documents, metadatas, distances, strict=True)
        if meta
    ]


_VALID_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]")


def safe_collection_name(name: str) -> str:
    """A Chroma-valid collection name for an encoder name; valid names pass unchanged.

    Chroma allows 3-512 characters from ``[A-Za-z0-9._-]``, starting and ending alphanumeric.
    Other names are cleaned and get a hash suffix, so ``"a/b"`` and ``"a_b"`` never collide.
    """
    if _VALID_NAME.fullmatch(name) and ".." not in name:
        return name
    cleaned = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:400] or "encoder"
    return f"{cleaned}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:10]}"


def as_matrix(vectors: Any, rows: int | None = None) -> np.ndarray:
    """``vectors`` as a C-contiguous float32 matrix; a single vector becomes one row."""
    matrix = np.ascontiguousarray(vectors, dtype=np.float32)
    if matrix.ndim == 1:
        matrix = matrix[None, :]
    if matrix.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {matrix.shape}")
    if rows is not None and matrix.shape[0] != rows:
        raise ValueError(f"got {matrix.shape[0]} vectors for {rows} chunks")
    return matrix


def one_query(vector: Any) -> np.ndarray:
    """One query vector as a one-row matrix (``search`` takes one; ``search_many`` several)."""
    query = np.asarray(vector)
    if query.ndim != 1:
        raise ValueError(f"search takes one vector; use search_many for shape {query.shape}")
    return query[None, :]


def check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def last_occurrences(chunks: Any) -> list[int]:
    """Row numbers of the last chunk with each id (an upsert batch keeps the last copy)."""
    last = {c.id: i for i, c in enumerate(chunks)}
    return sorted(last.values())
