"""One ingest run: new and changed documents chunked, embedded by every encoder, committed.

Crash safety: a file's manifest entry is written only after its chunks are in every store and
in the docstore, and every file is replaced atomically; the chunks its new version drops are
deleted after the manifest is saved, so a reader that trusts the manifest always finds what it
names. A run killed part-way leaves the old manifest entry in place, so the next run redoes that
file (chunk ids derive from content: the upserts are idempotent and ``existing_ids`` skips the
embedding that already happened), and removes the ids ``pending.json`` lists that no manifest
names (:mod:`rag.index.journal`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from connectors.walk import one_line
from rag.index import journal
from rag.index.docstore import Docstore
from rag.types import Chunk, Document, IngestError

if TYPE_CHECKING:
    from connectors.directory import UnchangedFile
    from rag.base import Chunker, Store

# More chunks than this from one file is a bomb or a dump, not a document (the Debian reference,
# 233 pages, makes ~1,000 with the default chunker); refused before anything is embedded.
DEFAULT_MAX_CHUNKS = 10_000


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
        lines += [f"  failed: {one_line(e.path)}: {e.reason}" for e in self.failed]
        return "\n".join(lines)


@dataclass(frozen=True)
class ChunkedDocument:
    """A document already chunked elsewhere (a Ray worker): taken with these chunks, not
    re-chunked. ``document.text`` may be empty (only its id, source and hash are stored)."""

    document: Document
    chunks: list[Chunk]


@dataclass(frozen=True)
class Commit:
    """An item that commits what is pending now (a distributed run's shard boundary)."""


if TYPE_CHECKING:  # what a run takes (connectors.directory gives the first three)
    Item = Document | IngestError | UnchangedFile | ChunkedDocument | Commit


@dataclass
class Target:
    """One encoder's store and how chunks become what it holds (vectors or term lists)."""

    name: str
    store: Store
    embed: Callable[[Sequence[Chunk]], Any]
    kind: str = "dense"  # only dense work counts as "embedded" in the report
    # A situated encoder embeds a chunk with its context, section and title: when those
    # change around an unchanged chunk (same id), its stored vector is stale and is redone.
    reads_context: bool = False


class Ingestion:
    """Feeds documents through ``chunker`` into ``docstore`` and every target's store."""

    def __init__(
        self,
        docstore: Docstore,
        chunker: Chunker,
        targets: Sequence[Target],
        *,
        batch_chunks: int = 256,
        progress: Callable[[str], None] | None = None,
        max_chunks: int = DEFAULT_MAX_CHUNKS,
        before_write: Callable[[], None] | None = None,
        on_chunks: Callable[[int], None] | None = None,
    ) -> None:
        self.max_chunks = max_chunks
        # before_write: called once, when the first batch is embedded and about to be stored
        # (an index records its configuration then, never for a run that stores nothing);
        # on_chunks: the chunk count of every batch stored (a progress bar's rate).
        self.before_write, self.on_chunks = before_write, on_chunks
        self.docstore = docstore
        self.chunker = chunker
        self.targets = list(targets)
        self.encoders = sorted(t.name for t in targets)
        self.batch_chunks = batch_chunks
        self.progress = progress
        self.report = IngestReport()
        self.seen: set[str] = set()
        self.pending: list[tuple[Document, list[Chunk]]] = []

    def run(
        self,
        items: Iterable[Item],
        *,
        prune_missing_under: str | os.PathLike[str] | None = None,
    ) -> IngestReport:
        start = time.perf_counter()
        stores = [t.store for t in self.targets]
        journal.recover(self.docstore, stores)  # what a killed writer left no manifest knows
        for item in items:
            self._take(item)
        self._flush()
        if prune_missing_under is not None:
            # a reported path (a folder that could not be read, a skipped link) keeps its files
            failed = {e.path for e in self.report.failed}
            gone = []
            for doc_id in self.docstore.sources_under(prune_missing_under):
                reported = not failed.isdisjoint(map(str, PurePath(doc_id).parents))
                if doc_id not in self.seen and not reported:
                    self._before_write()
                    self.report.removed.append(self.docstore.files[doc_id]["source"])
                    gone.append(doc_id)
            remove_documents(self.docstore, stores, gone)
            journal.sweep(self.docstore, stores)  # and whatever else no manifest names
        self.report.seconds = time.perf_counter() - start
        return self.report

    def _take(self, item: Item) -> None:
        from connectors.directory import UnchangedFile

        if isinstance(item, Commit):
            self._flush()
            return
        if isinstance(item, ChunkedDocument):
            self._take_document(item.document, item.chunks)
            if self.progress:
                self.progress(item.document.source)
            return
        if isinstance(item, UnchangedFile):
            known = self._known_document(item)
            if known is None:
                return
            item = known
        if isinstance(item, IngestError):
            self.seen.add(item.path)  # a file that fails now keeps what was stored before
            self.report.failed.append(item)
        else:
            self._take_document(item)
        if self.progress:
            self.progress(item.path if isinstance(item, IngestError) else item.source)

    def _take_document(self, doc: Document, chunked: list[Chunk] | None = None) -> None:
        doc = indexed_document(doc)
        self.seen.add(doc.id)
        entry = self.docstore.files.get(doc.id)
        if entry is not None and entry["content_hash"] == doc.content_hash:
            if sorted(entry.get("encoders", [])) == self.encoders:
                self.report.unchanged.append(doc.source)
            else:  # same file, new encoder set: embed the stored chunks for the new ones only
                self._queue(doc, self.docstore.chunks_of(doc.id))
            return
        chunks = (
            chunked if chunked is not None else chunk_document(self.chunker, doc, self.max_chunks)
        )
        if isinstance(chunks, IngestError):
            self.report.failed.append(chunks)
        else:
            self._queue(doc, chunks)

    def _queue(self, doc: Document, chunks: list[Chunk]) -> None:
        self.pending.append((doc, chunks))
        if sum(len(cs) for _, cs in self.pending) >= self.batch_chunks:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        batch = list({c.id: c for _, cs in self.pending for c in cs}.values())
        work = []  # every encoder embeds before any store is written: a failing one writes nothing
        moved = self._moved_context()
        for target in self.targets:
            have = target.store.existing_ids([c.id for c in batch])
            if target.reads_context:
                have -= moved
            todo = [c for c in batch if c.id not in have]
            if todo:
                work.append((target, todo, target.embed(todo)))
        self._before_write()
        stale = self._stale()
        # Readers trust the manifest: store first, commit, then delete what it no longer names
        # (pending.json lets the next writer remove what a kill in between leaves behind).
        journal.begin(self.docstore.root, [*(c.id for c in batch), *stale])
        for target, todo, embedded in work:
            target.store.add(todo, embedded)
            if target.kind == "dense":
                self.report.chunks_embedded += len(todo)
        for doc, chunks in self.pending:
            self.docstore.put(doc, chunks, self.encoders)
            self.report.ingested.append(doc.source)
            self.report.chunks_added += len(chunks)
        self.docstore.save_manifest()
        if stale:
            for target in self.targets:
                target.store.delete(stale)
        journal.end(self.docstore.root)
        self.pending.clear()
        if self.on_chunks is not None:
            self.on_chunks(len(batch))

    def _before_write(self) -> None:
        if self.before_write is not None:
            hook, self.before_write = self.before_write, None
            hook()

    def _moved_context(self) -> set[str]:
        """Ids of pending chunks whose stored version (same id) sat in another context."""
        if not any(t.reads_context for t in self.targets):
            return set()
        moved = set()
        for doc, chunks in self.pending:
            entry = self.docstore.files.get(doc.id)
            if entry is None or entry["content_hash"] == doc.content_hash:
                continue  # new, or the stored chunks themselves (a new encoder)
            before = {c.id: situation(c) for c in self.docstore.chunks_of(doc.id)}
            moved |= {c.id for c in chunks if before.get(c.id, situation(c)) != situation(c)}
        return moved

    def _stale(self) -> list[str]:
        """Chunk ids of the pending documents' old versions that their new versions drop."""
        named = {c.id for _, cs in self.pending for c in cs}
        old = (self.docstore.files.get(doc.id) for doc, _ in self.pending)
        return sorted({i for e in old if e is not None for i in e["chunk_ids"]} - named)

    def _known_document(self, item: UnchangedFile) -> Document | None:
        """A text-less stand-in for an unparsed, unchanged file (its chunks are in the docstore)."""
        entry = self.docstore.files.get(item.path)
        if entry is None or entry["content_hash"] != item.content_hash:
            return None  # the caller's hashes were stale; nothing to say about this file
        return Document(
            id=item.path,
            text="",
            source=item.path,
            content_hash=item.content_hash,
            title=entry.get("title"),
        )


def indexed_document(doc: Document) -> Document:
    """``doc`` as an index keys it: by source path. The manifest is keyed by source: failures
    (which carry only a path) and pruning must agree with it, and chunk ids (derived from the
    document id) stay unique across ingest roots."""
    return doc if doc.id == doc.source else replace(doc, id=doc.source)


def chunk_document(chunker: Chunker, doc: Document, max_chunks: int) -> list[Chunk] | IngestError:
    """``doc``'s chunks (``doc`` as :func:`indexed_document` gives it), or why it has none."""
    try:
        chunks = chunker.chunk(doc)
    except Exception as exc:  # one bad document must not stop the batch
        return IngestError(doc.source, f"chunking failed: {exc}")
    if not chunks:
        return IngestError(doc.source, "no text to index")
    if len(chunks) > max_chunks:
        reason = f"too many chunks ({len(chunks)} > {max_chunks}, the per-file limit)"
        return IngestError(doc.source, reason)
    return chunks


def situation(chunk: Chunk) -> tuple[str, tuple[str, ...], str | None]:
    """What a situated encoder reads besides the chunk's text."""
    return chunk.context, chunk.section, chunk.title


def remove_documents(docstore: Docstore, stores: Sequence[Store], doc_ids: Sequence[str]) -> None:
    """Drop documents: from the manifest (saved: the commit), then from every store. A writer
    killed in between leaves ids no manifest names, which ``pending.json`` lists for the next."""
    if not doc_ids:
        return
    ids = [i for d in doc_ids for i in docstore.files.get(d, {}).get("chunk_ids", [])]
    journal.begin(docstore.root, ids)
    for doc_id in doc_ids:
        docstore.drop(doc_id)
    docstore.save_manifest()
    for store in stores:
        store.delete_documents(list(doc_ids))
    journal.end(docstore.root)
