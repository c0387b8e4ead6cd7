"""The index folder's record of what it holds: ``manifest.json`` and ``docstore/``.

``manifest.json`` maps each indexed source to its content hash, its chunk ids and the encoders
that hold them; ``docstore/`` keeps one JSON file per document with its chunks (the source of
truth for text, written with the one chunk codec the stores use). Both are replaced atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePath
from typing import Any

from rag.files import write_json_atomic
from rag.stores._codec import chunk_from_json, chunk_to_json
from rag.types import Chunk, Document, sha256_hex

MANIFEST_FORMAT = 2


class Docstore:
    """Manifest and per-document chunk files of one index folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._manifest: dict[str, Any] | None = None

    @property
    def manifest(self) -> dict[str, Any]:
        if self._manifest is None:
            path = self.root / "manifest.json"
            self._manifest = json.loads(path.read_text("utf-8")) if path.exists() else {"files": {}}
        return self._manifest

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return self.manifest["files"]

    def save_manifest(self) -> None:
        write_json_atomic(self.root / "manifest.json", {**self.manifest, "format": MANIFEST_FORMAT})

    def known_hashes(self) -> dict[str, str]:
        """Source path -> content hash of every indexed file (lets connectors skip parsing)."""
        return {doc_id: e["content_hash"] for doc_id, e in self.files.items()}

    def _path(self, doc_id: str) -> Path:
        return self.root / "docstore" / f"{sha256_hex(doc_id)[:40]}.json"

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        path = self._path(doc_id)
        if not path.exists():
            return []
        return [chunk_from_json(c) for c in json.loads(path.read_text("utf-8"))["chunks"]]

    def iter_chunks(self) -> Iterator[Chunk]:
        """Every stored chunk, document by document in sorted source order."""
        for doc_id in sorted(self.files):
            yield from self.chunks_of(doc_id)

    def chunk_count(self) -> int:
        return sum(len(e["chunk_ids"]) for e in self.files.values())

    def put(self, doc: Document, chunks: Sequence[Chunk], encoders: Sequence[str]) -> None:
        """Write ``doc``'s chunks and its manifest entry (saved by :meth:`save_manifest`)."""
        write_json_atomic(
            self._path(doc.id),
            {"doc_id": doc.id, "source": doc.source, "chunks": [chunk_to_json(c) for c in chunks]},
        )
        self.files[doc.id] = {
            "source": doc.source,
            "content_hash": doc.content_hash,
            "title": doc.title,
            "chunk_ids": [c.id for c in chunks],
            "encoders": sorted(encoders),
        }

    def drop(self, doc_id: str) -> None:
        self._path(doc_id).unlink(missing_ok=True)
        self.files.pop(doc_id, None)

    def sources_under(self, folder: str | os.PathLike[str]) -> list[str]:
        """Indexed document ids whose source lies inside ``folder`` (by path components, so
        ``docs`` does not hold ``docs-old/b.md``)."""
        return sorted(d for d, e in self.files.items() if is_within(e["source"], folder))


def is_within(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is ``folder`` or lies below it, comparing normalised path components."""
    inner = PurePath(os.path.normpath(os.fspath(path))).parts
    outer = PurePath(os.path.normpath(os.fspath(folder))).parts
    return inner[: len(outer)] == outer
