"""Dense stores that live outside the index folder (PostgreSQL + pgvector).

The database is named by the ``RAG_PGVECTOR_DSN`` environment variable, read by every process
that opens the index (``rag ingest --dsn`` sets it); the DSN is not written to ``index.json``
since it may carry a password. Several indexes can share one database: each one's tables are
named after its folder (``rag_<hash of the resolved path>_<encoder>``), so moving the folder
means re-ingesting it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from rag.index.config import IndexConfig
from rag.stores._codec import safe_collection_name


def pgvector_table(root: str | os.PathLike[str], collection: str) -> str:
    """The table of the index at ``root`` for the encoder collection name ``collection``."""
    key = hashlib.sha256(str(Path(root).resolve()).encode("utf-8")).hexdigest()[:8]
    return f"rag_{key}_{collection}"


def drop_external(root: str | os.PathLike[str]) -> None:
    """Drop the database tables of the index at ``root`` (a rebuild or reset starts afresh)."""
    path = Path(root) / "index.json"
    if not path.is_file():
        return
    config = IndexConfig.from_json(json.loads(path.read_text("utf-8")))
    if config.store != "pgvector":
        return
    from rag.stores import get_store

    for entry in config.encoders:
        if entry.kind == "dense":
            store = get_store(
                "pgvector", table=pgvector_table(root, safe_collection_name(entry.name))
            )
            store.drop()  # type: ignore[attr-defined]
            store.close()  # type: ignore[attr-defined]
