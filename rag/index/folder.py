"""A persistent index folder: documents -> chunks -> one vector index per encoder.

Layout of ``DIR`` (transparent, versioned files; no pickle)::

    index.json        format version, chunker settings, encoders, store kind
    manifest.json     per source file: content hash, chunk ids, which encoders hold them
    docstore/         one JSON file per document with its chunks (the source of truth for text)
    chroma/           the embedded Chroma database (one collection per dense encoder)
    memory/NAME/      or the exact numpy store, one folder per dense encoder
    bm25/NAME/        lexical indexes, rebuilt from the docstore when something changed

Crash safety: a file's manifest entry is written only after its chunks are in every store and
in the docstore, and every file is replaced atomically. A run killed part-way leaves the old
manifest entry in place, so the next run redoes that file; chunk ids derive from content, so the
upserts are idempotent and ``existing_ids`` skips the embedding that already happened.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rag.types import Chunk, Document, IngestError

if TYPE_CHECKING:
    from connectors.directory import UnchangedFile
    from rag.base import Encoder, Retriever, Store

FORMAT_VERSION = 1
StoreKind = Literal["chroma", "memory"]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temp file and ``os.replace`` so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def chunk_to_dict(chunk: Chunk) -> dict[str, Any]:
    data = asdict(chunk)
    data["section"] = list(chunk.section)
    return data


def chunk_from_dict(data: dict[str, Any]) -> Chunk:
    return Chunk(**{**data, "section": tuple(data.get("section", ()))})


def collection_name(encoder: str) -> str:
    """A store-safe folder/collection name for an encoder name."""
    from rag.stores._codec import safe_collection_name

    return safe_collection_name(encoder)


@dataclass
class EncoderEntry:
    """An encoder configured on an index; ``situated`` names how chunks are turned into text."""

    name: str
    kind: Literal["dense", "lexical"] = "dense"
    situated: str = "plain"


@dataclass
class IndexConfig:
    encoders: list[EncoderEntry] = field(default_factory=lambda: [EncoderEntry("minilm")])
    store: StoreKind = "chroma"
    chunker: str = "recursive"
    chunker_options: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IndexConfig:
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(
                f"index format {data.get('format')!r} is not supported (expected {FORMAT_VERSION})"
            )
        encoders = [EncoderEntry(**e) for e in data["encoders"]]
        return cls(**{**data, "encoders": encoders})


@dataclass
class IngestReport:
    """What one ``ingest`` run did, file by file."""

    ingested: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[IngestError] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    chunks_added: int = 0
    chunks_embedded: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [
            f"ingested {len(self.ingested)} files ({self.chunks_added} chunks, "
            f"{self.chunks_embedded} embedded), unchanged {len(self.unchanged)}, "
            f"failed {len(self.failed)}, removed {len(self.removed)} in {self.seconds:.1f}s"
        ]
        lines += [f"  failed: {e.path}: {e.reason}" for e in self.failed]
        return "\n".join(lines)


class Index:
    """Open (or create) an index folder. Encoders and stores are loaded on first use."""

    def __init__(self, root: str | os.PathLike[str], config: IndexConfig | None = None) -> None:
        self.root = Path(root)
        config_path = self.root / "index.json"
        if config_path.exists():
            stored = IndexConfig.from_json(json.loads(config_path.read_text("utf-8")))
            if config is not None:
                stored = self._merge_config(stored, config)
            self.config = stored
        else:
            self.config = config or IndexConfig()
        self._manifest: dict[str, Any] | None = None
        self._encoders: dict[str, Encoder] = {}
        self._stores: dict[str, Store] = {}

    @staticmethod
    def _merge_config(stored: IndexConfig, requested: IndexConfig) -> IndexConfig:
        """An existing index keeps its chunking and store; requested encoders are added."""
        if (requested.chunker, requested.chunker_options) != (
            stored.chunker,
            stored.chunker_options,
        ) and requested.chunker_options:
            raise ValueError(
                "this index was built with chunker "
                f"{stored.chunker} {stored.chunker_options}; use a new --index to change it"
            )
        by_name = {e.name: e for e in stored.encoders}
        for entry in requested.encoders:
            known = by_name.get(entry.name)
            if known is None:
                stored.encoders.append(entry)
            elif known.situated != entry.situated:
                raise ValueError(
                    f"encoder {entry.name!r} is indexed with situated={known.situated!r}; "
                    f"use a new --index for situated={entry.situated!r}"
                )
        return stored

    # -- files -------------------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        return (self.root / "index.json").exists()

    @property
    def manifest(self) -> dict[str, Any]:
        if self._manifest is None:
            path = self.root / "manifest.json"
            self._manifest = json.loads(path.read_text("utf-8")) if path.exists() else {"files": {}}
        return self._manifest

    def _save_manifest(self) -> None:
        write_json_atomic(self.root / "manifest.json", {"format": FORMAT_VERSION, **self.manifest})

    def _save_config(self) -> None:
        write_json_atomic(self.root / "index.json", self.config.to_json())

    def _docstore_path(self, doc_id: str) -> Path:
        from rag.types import sha256_hex

        return self.root / "docstore" / f"{sha256_hex(doc_id)[:40]}.json"

    def known_hashes(self) -> dict[str, str]:
        """Source path -> content hash of every indexed file (lets connectors skip parsing)."""
        return {doc_id: e["content_hash"] for doc_id, e in self.manifest["files"].items()}

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        path = self._docstore_path(doc_id)
        if not path.exists():
            return []
        return [chunk_from_dict(c) for c in json.loads(path.read_text("utf-8"))["chunks"]]

    def all_chunks(self) -> Iterator[Chunk]:
        for doc_id in sorted(self.manifest["files"]):
            yield from self.chunks_of(doc_id)

    # -- components ----------------------------------------------------------------------------

    def encoder(self, name: str) -> Encoder:
        if name not in self._encoders:
            from rag.encoders.registry import load_encoder

            self._encoders[name] = load_encoder(name)
        return self._encoders[name]

    def store(self, name: str) -> Store:
        if name not in self._stores:
            from rag.stores import get_store

            if self.config.store == "chroma":
                store = get_store(
                    "chroma", path=self.root / "chroma", collection=collection_name(name)
                )
            else:
                store = get_store("memory", path=self.root / "memory" / collection_name(name))
            self._stores[name] = store
        return self._stores[name]

    def _bm25_folder(self, name: str) -> Path:
        return self.root / "bm25" / collection_name(name)

    def dense_encoders(self) -> list[EncoderEntry]:
        return [e for e in self.config.encoders if e.kind == "dense"]

    def lexical_encoders(self) -> list[EncoderEntry]:
        return [e for e in self.config.encoders if e.kind == "lexical"]

    def embed_text(self, chunk: Chunk, entry: EncoderEntry) -> str:
        """The text a lexical encoder indexes for a chunk (the displayed text stays
        ``chunk.text``); dense encoders embed through :meth:`situated_encoder`."""
        if entry.situated == "plain":
            return chunk.text
        from rag.encoders.situated import situated_text

        return situated_text(chunk, entry.situated)

    def situated_encoder(self, entry: EncoderEntry) -> Any:
        """The situated encoder (SitEmb, arXiv 2508.01959; late chunking, arXiv 2409.04701; or
        a prefix header) over a dense encoder: it embeds chunks with their context and queries
        the way that mode expects."""
        from rag.encoders.situated import get_situated

        return get_situated(entry.situated, self.encoder(entry.name))

    # -- ingest --------------------------------------------------------------------------------

    def ingest(
        self,
        documents: Iterable[Document | IngestError | UnchangedFile],
        *,
        prune_missing_under: str | None = None,
        batch_chunks: int = 256,
        progress: Callable[[str], None] | None = None,
    ) -> IngestReport:
        """Add new and changed documents; skip unchanged ones; report failures.

        ``prune_missing_under``: a source path prefix; indexed files under it that were not in
        ``documents`` are removed (a deleted file's chunks go only when asked).
        """
        import time

        from connectors.directory import UnchangedFile
        from rag.chunking import get_chunker

        start = time.perf_counter()
        self.root.mkdir(parents=True, exist_ok=True)
        self._save_config()
        chunker = get_chunker(self.config.chunker, **self.config.chunker_options)
        report = IngestReport()
        files = self.manifest["files"]
        wanted = sorted(e.name for e in self.config.encoders)
        seen: set[str] = set()
        pending: list[tuple[Document, list[Chunk]]] = []
        changed = False

        def flush() -> None:
            nonlocal changed
            if not pending:
                return
            all_chunks = [c for _, cs in pending for c in cs]
            for entry in self.dense_encoders():
                report.chunks_embedded += self._embed_missing(entry, all_chunks)
            for doc, chunks in pending:
                self._commit_document(doc, chunks, wanted)
                report.ingested.append(doc.source)
                report.chunks_added += len(chunks)
            self._save_manifest()
            pending.clear()
            changed = True

        for item in documents:
            if isinstance(item, UnchangedFile):
                item = self._known_document(item)
                if item is None:
                    continue
            if isinstance(item, IngestError):
                seen.add(item.path)  # a file that fails now keeps what was stored before
                report.failed.append(item)
                if progress:
                    progress(item.path)
                continue
            if item.id != item.source:
                # The manifest is keyed by source path: failures (which carry only a path) and
                # pruning must agree with it, and chunk ids stay unique across ingest roots.
                item = replace(item, id=item.source)
            seen.add(item.id)
            entry = files.get(item.id)
            if (
                entry is not None
                and entry["content_hash"] == item.content_hash
                and sorted(entry.get("encoders", [])) == wanted
            ):
                report.unchanged.append(item.source)
            elif entry is not None and entry["content_hash"] == item.content_hash:
                # Same file, new encoder set: embed the stored chunks for the new encoders only.
                pending.append((item, self.chunks_of(item.id)))
            else:
                try:
                    chunks = chunker.chunk(item)
                except Exception as exc:  # one bad document must not stop the batch
                    report.failed.append(IngestError(item.source, f"chunking failed: {exc}"))
                    continue
                if not chunks:
                    report.failed.append(IngestError(item.source, "no text to index"))
                else:
                    pending.append((item, chunks))
                    if sum(len(cs) for _, cs in pending) >= batch_chunks:
                        flush()
            if progress:
                progress(item.source)
        flush()

        if prune_missing_under is not None:
            for doc_id, entry in sorted(files.items()):
                if doc_id not in seen and entry["source"].startswith(prune_missing_under):
                    self._remove_document(doc_id)
                    report.removed.append(entry["source"])
                    changed = True
            self._save_manifest()
        if changed or any(not self._bm25_folder(e.name).exists() for e in self.lexical_encoders()):
            self._rebuild_lexical()
        self._save_manifest()
        report.seconds = time.perf_counter() - start
        return report

    def _known_document(self, item: UnchangedFile) -> Document | None:
        """A text-less stand-in for an unparsed, unchanged file (its chunks are in the docstore)."""
        entry = self.manifest["files"].get(item.path)
        if entry is None or entry["content_hash"] != item.content_hash:
            return None  # the caller's hashes were stale; nothing to say about this file
        return Document(
            id=item.path,
            text="",
            source=item.path,
            content_hash=item.content_hash,
            title=entry.get("title"),
        )

    def _embed_missing(self, entry: EncoderEntry, chunks: Sequence[Chunk]) -> int:
        store = self.store(entry.name)
        unique = list({c.id: c for c in chunks}.values())
        have = store.existing_ids([c.id for c in unique])
        todo = [c for c in unique if c.id not in have]
        if not todo:
            return 0
        if entry.situated == "plain":
            vectors = self.encoder(entry.name).embed_documents(
                [c.text for c in todo], show_progress=len(todo) > 64
            )
        else:
            situated = self.situated_encoder(entry)
            vectors = situated.embed_chunks(todo, show_progress=len(todo) > 64).situated
        store.add(todo, vectors)
        return len(todo)

    def _commit_document(self, doc: Document, chunks: list[Chunk], encoders: list[str]) -> None:
        files = self.manifest["files"]
        new_ids = [c.id for c in chunks]
        old = files.get(doc.id)
        if old is not None:
            stale = sorted(set(old["chunk_ids"]) - set(new_ids))
            if stale:
                for entry in self.dense_encoders():
                    self.store(entry.name).delete(stale)
        write_json_atomic(
            self._docstore_path(doc.id),
            {"doc_id": doc.id, "source": doc.source, "chunks": [chunk_to_dict(c) for c in chunks]},
        )
        files[doc.id] = {
            "source": doc.source,
            "content_hash": doc.content_hash,
            "title": doc.title,
            "chunk_ids": new_ids,
            "encoders": encoders,
        }

    def _remove_document(self, doc_id: str) -> None:
        files = self.manifest["files"]
        entry = files.get(doc_id)
        if entry is None:
            return
        for enc in self.dense_encoders():
            self.store(enc.name).delete(entry["chunk_ids"])
        self._docstore_path(doc_id).unlink(missing_ok=True)
        del files[doc_id]

    def remove(self, doc_ids: Sequence[str]) -> None:
        for doc_id in doc_ids:
            self._remove_document(doc_id)
        self._save_manifest()
        self._rebuild_lexical()

    def _rebuild_lexical(self) -> None:
        lexical = self.lexical_encoders()
        if not lexical:
            return
        from rag.encoders.bm25 import BM25Index

        chunks = list(self.all_chunks())
        for entry in lexical:
            folder = self._bm25_folder(entry.name)
            bm25 = BM25Index()
            bm25.index([self.embed_text(c, entry) for c in chunks])
            tmp = folder.with_name(folder.name + ".tmp")
            if tmp.exists():
                _rmtree(tmp)
            bm25.save(tmp)
            write_json_atomic(tmp / "chunk_ids.json", [c.id for c in chunks])
            if folder.exists():
                _rmtree(folder)
            os.replace(tmp, folder)

    # -- search --------------------------------------------------------------------------------

    def retriever(self, encoder: str | None = None) -> Retriever:
        """A retriever over one configured encoder; by default the only one, or all of them
        fused with the default fusion when the index has several."""
        if not self.exists:
            raise FileNotFoundError(f"no index at {self.root} (run `rag ingest PATH --index ...`)")
        if encoder is None and len(self.config.encoders) > 1:
            return self.fused_retriever()
        entries = {e.name: e for e in self.config.encoders}
        name = encoder or self.config.encoders[0].name
        if name not in entries:
            raise ValueError(f"encoder {name!r} is not in this index; it has {sorted(entries)}")
        entry = entries[name]
        if entry.kind == "lexical":
            from rag.retrieval.lexical import LexicalRetriever

            return LexicalRetriever.open(self._bm25_folder(name), self, name=name)
        from rag.retrieval.dense import DenseRetriever

        encoder = self.encoder(name) if entry.situated == "plain" else self.situated_encoder(entry)
        return DenseRetriever(encoder, self.store(name), name=name)

    def fused_retriever(
        self,
        fusion: str = "default",
        *,
        encoders: Sequence[str] | None = None,
        candidates: int = 100,
    ) -> Retriever:
        """All (or the named) encoders queried concurrently, their hits fused (see
        :mod:`rag.retrieval.multi` for the default fusion and why)."""
        from rag.retrieval.multi import fused_retriever

        return fused_retriever(self, fusion, encoders=encoders, candidates=candidates)

    def info(self) -> dict[str, Any]:
        files = self.manifest["files"]
        info: dict[str, Any] = {
            "index": str(self.root),
            "format": self.config.format,
            "store": self.config.store,
            "chunker": {"name": self.config.chunker, **self.config.chunker_options},
            "files": len(files),
            "chunks": sum(len(e["chunk_ids"]) for e in files.values()),
            "encoders": [],
        }
        for entry in self.config.encoders:
            row: dict[str, Any] = asdict(entry)
            if entry.kind == "dense":
                row["vectors"] = self.store(entry.name).count()
            info["encoders"].append(row)
        return info


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)
