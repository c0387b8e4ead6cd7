"""What ``rag info`` reports about an index folder (kept apart from the facade it describes)."""

from __future__ import annotations

from typing import Any


def index_info(index: Any) -> dict[str, Any]:
    """An index's settings, file and chunk counts, and each encoder's stored vectors or chunks."""
    info: dict[str, Any] = {
        "index": str(index.root),
        "format": index.config.format,
        "store": index.config.store,
        "chunker": {"name": index.config.chunker, **index.config.chunker_options},
        "files": len(index.docstore.files),
        "chunks": index.docstore.chunk_count(),
        "encoders": [],
    }
    for entry in index.config.encoders:
        row: dict[str, Any] = {
            "name": entry.name,
            "kind": entry.kind,
            "situated": entry.situated,
            "residual": entry.residual,
        }
        row["vectors" if entry.kind == "dense" else "chunks"] = index.store(entry.name).count()
        info["encoders"].append(row)
    return info
