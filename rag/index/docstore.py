"""The index folder's record of what it holds: ``manifest.json`` and ``docstore/``.

``manifest.json`` maps each indexed source to its content hash, its chunk ids, the encoders
that hold them and its chunk file; ``docstore/`` keeps one JSON file per document version with
its chunks (the source of truth for text: the document's text once, chunks as offsets into it,
:mod:`rag.index.chunkfile`; the stores of an index hold chunks without text or context).
The manifest is replaced atomically and is the commit: what it names is what the index holds.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePath
from typing import Any

from rag.files import file_state, remove_stale_temps, write_json_atomic
from rag.index import chunkfile
from rag.types import Chunk, Document, sha256_hex

MANIFEST_FORMAT = 3  # 3: entries name their chunk file ("file")
# Chunk files kept parsed for hydrating hits (they never change once written), by bytes read.
CACHED_BYTES = 32_000_000


class Docstore:
    """Manifest and per-document chunk files of one index folder.

    A document's chunks go to a new file named by its id and chunk ids, and the file it replaces
    is removed only after the manifest naming the new one is saved: a reader holding an older
    manifest still finds the file that manifest names (or, once it is gone, re-reads the
    manifest). ``refresh`` re-reads a manifest another process committed.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._manifest: dict[str, Any] | None = None
        self._state: tuple[int, int, int] | None = None  # manifest.json as read or written
        self._dirty = False  # changes not saved yet: never replaced by a refresh
        self._replaced: list[Path] = []  # files to remove once the manifest is saved
        self._ids: dict[str, frozenset[str]] = {}  # per document, its chunk ids (lazily)
        self._parsed: OrderedDict[Path, tuple[chunkfile.ChunkFile, int]] = OrderedDict()
        self._parsed_bytes = 0
        self._swept = False  # temp files of killed writers removed (on the first save)
        self._cache_lock = threading.Lock()  # fused retrievers hydrate hits from many threads

    @property
    def manifest(self) -> dict[str, Any]:
        if self._manifest is None:
            path = self.root / "manifest.json"
            self._state = file_state(path)
            self._manifest = json.loads(path.read_text("utf-8")) if self._state else {"files": {}}
        return self._manifest

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        return self.manifest["files"]

    @property
    def state(self) -> tuple[int, int, int] | None:
        """``manifest.json``'s file state when it was last read or written."""
        self.manifest  # noqa: B018 - read it first
        return self._state

    def refresh(self) -> bool:
        """Re-read ``manifest.json`` if a writer replaced it since it was read (one ``stat``);
        never while this object holds unsaved changes. True when it was re-read."""
        if self._dirty or self._manifest is None:
            return False
        if file_state(self.root / "manifest.json") == self._state:
            return False
        self._manifest, self._ids = None, {}
        return True

    def holds(self, doc_id: str, chunk_id: str) -> bool:
        """Whether the manifest lists chunk ``chunk_id`` of document ``doc_id``."""
        ids = self._ids.get(doc_id)
        if ids is None:
            entry = self.files.get(doc_id)
            ids = self._ids[doc_id] = frozenset(entry["chunk_ids"] if entry else ())
        return chunk_id in ids

    def chunk_ids(self) -> set[str]:
        """Every chunk id the manifest lists."""
        return {i for e in self.files.values() for i in e["chunk_ids"]}

    def save_manifest(self) -> None:
        """Commit the manifest (atomically), then remove the chunk files it no longer names."""
        path = self.root / "manifest.json"
        write_json_atomic(path, {**self.manifest, "format": MANIFEST_FORMAT})
        self._state, self._dirty = file_state(path), False
        named = {self.path_of(d) for d in self.files}
        for old in self._replaced:
            if old not in named:
                old.unlink(missing_ok=True)
        self._replaced.clear()
        if not self._swept:  # a killed writer's litter: once per writer (docstore/ is large)
            for folder in (self.root, self.root / "docstore"):
                remove_stale_temps(folder)
            self._swept = True

    def known_hashes(self) -> dict[str, str]:
        """Source path -> content hash of every indexed file (lets connectors skip parsing)."""
        return {doc_id: e["content_hash"] for doc_id, e in self.files.items()}

    def path_of(self, doc_id: str) -> Path:
        """The chunk file the manifest names for ``doc_id`` (format 2 named it by id alone)."""
        entry = self.files.get(doc_id) or {}
        name = entry.get("file") or f"{sha256_hex(doc_id)[:40]}.json"
        return self.root / "docstore" / name

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        found = self._file_of(doc_id, cache=False)
        return [] if found is None else found.chunks()

    def _file_of(self, doc_id: str, *, cache: bool) -> chunkfile.ChunkFile | None:
        for _ in range(2):
            path = self.path_of(doc_id)
            with self._cache_lock:
                held = self._parsed.get(path)
                if held is not None:
                    self._parsed.move_to_end(path)
                    return held[0]
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                if self.refresh():  # a writer committed and removed it: read what it named
                    continue
                return None
            parsed = chunkfile.ChunkFile(json.loads(raw))
            if cache:
                with self._cache_lock:
                    if path not in self._parsed:
                        self._parsed[path] = (parsed, len(raw))
                        self._parsed_bytes += len(raw)
                    while self._parsed_bytes > CACHED_BYTES and self._parsed:
                        self._parsed_bytes -= self._parsed.popitem(last=False)[1][1]
            return parsed
        return None

    def whole(self, chunks: Sequence[Chunk]) -> list[Chunk | None]:
        """Each of ``chunks`` (as a store returns them: maybe without text or context) as the
        docstore holds it, or None where the committed manifest does not name it."""
        files: dict[str, chunkfile.ChunkFile | None] = {}
        out: list[Chunk | None] = []
        for c in chunks:
            if not self.holds(c.doc_id, c.id):
                out.append(None)
                continue
            if c.doc_id not in files:
                files[c.doc_id] = self._file_of(c.doc_id, cache=True)
            found = files[c.doc_id]
            out.append(None if found is None else found.get(c.id))
        return out

    def iter_chunks(self) -> Iterator[Chunk]:
        """Every stored chunk, document by document in sorted source order."""
        for doc_id in sorted(self.files):
            yield from self.chunks_of(doc_id)

    def chunk_count(self) -> int:
        return sum(len(e["chunk_ids"]) for e in self.files.values())

    def put(self, doc: Document, chunks: Sequence[Chunk], encoders: Sequence[str]) -> None:
        """Write ``doc``'s chunks and its manifest entry (saved by :meth:`save_manifest`)."""
        ids = [c.id for c in chunks]
        name = f"{sha256_hex(doc.id)[:40]}-{sha256_hex(chr(10).join(ids))[:12]}.json"
        write_json_atomic(self.root / "docstore" / name, chunkfile.encode(doc, chunks))
        if doc.id in self.files:
            self._replaced.append(self.path_of(doc.id))
        self.files[doc.id] = {
            "source": doc.source,
            "content_hash": doc.content_hash,
            "title": doc.title,
            "chunk_ids": ids,
            "encoders": sorted(encoders),
            "file": name,
        }
        self._changed(doc.id)

    def drop(self, doc_id: str) -> None:
        if doc_id in self.files:
            self._replaced.append(self.path_of(doc_id))
            self.files.pop(doc_id)
        self._changed(doc_id)

    def _changed(self, doc_id: str) -> None:
        self._dirty = True
        self._ids.pop(doc_id, None)

    def unnamed_files(self) -> list[Path]:
        """Chunk files no manifest entry names (left by a writer killed before its commit)."""
        folder = self.root / "docstore"
        if not folder.is_dir():
            return []
        named = {self.path_of(d).name for d in self.files}
        return sorted(p for p in folder.glob("*.json") if p.name not in named)

    def sources_under(self, folder: str | os.PathLike[str]) -> list[str]:
        """Indexed document ids whose source lies inside ``folder`` (by path components, so
        ``docs`` does not hold ``docs-old/b.md``)."""
        return sorted(d for d, e in self.files.items() if is_within(e["source"], folder))


def is_within(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is ``folder`` or lies below it, comparing normalised path components."""
    inner = PurePath(os.path.normpath(os.fspath(path))).parts
    outer = PurePath(os.path.normpath(os.fspath(folder))).parts
    return inner[: len(outer)] == outer
