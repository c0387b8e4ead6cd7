"""What a reader of an index folder sees: the last committed manifest, and only what it names.

A writer adds a batch to every store, saves the manifest naming it (the commit), and only then
deletes what the manifest no longer names (:mod:`rag.index.ingest`). So while a manifest is the
latest one, every store holds at least what it names. A reader's search therefore

1. re-reads the manifest when a writer replaced it, and each store's own pointer (``refresh``:
   a ``stat`` each when nothing changed), taking no lock;
2. keeps only hits the manifest names, over-fetching to make up for the rest: what a writer is
   adding, or left behind when it was killed, is never returned;
3. searches again when the manifest changed meanwhile (a writer may then have deleted chunks
   the old one named), so every result set is complete for one committed manifest.

A fused search pins one manifest for all its members (:func:`pin_runs`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from rag.base import Store
from rag.files import file_state
from rag.types import Chunk

if TYPE_CHECKING:
    from rag.index.docstore import Docstore

T = TypeVar("T")
ATTEMPTS = 3  # a search that saw the manifest change this often in a row returns what it has
SLACK = 8  # extra hits fetched per search, for the uncommitted ones that get dropped


class Snapshot:
    """The manifest an index's readers filter by: re-read when a search starts and no other
    search holds it pinned; never while the index object itself is writing."""

    def __init__(self, index: Any) -> None:
        self.index = index
        self._pins = 0
        self._lock = threading.Lock()

    @property
    def docstore(self) -> Docstore:
        return self.index.docstore  # the index replaces it when it re-reads its folder

    def holds(self, chunk: Chunk) -> bool:
        return self.docstore.holds(chunk.doc_id, chunk.id)

    def run(self, call: Callable[[], T]) -> T:
        """``call()`` under one committed manifest, again when the manifest changed meanwhile."""
        for attempt in range(ATTEMPTS):
            with self._lock:
                outer = self._pins > 0
                if not outer and not self.index._writing:
                    self.docstore.refresh()
                self._pins += 1
                state = self.docstore.state
            try:
                result = call()
            finally:
                with self._lock:
                    self._pins -= 1
            if outer or self.index._writing or attempt == ATTEMPTS - 1:
                return result
            if file_state(self.docstore.root / "manifest.json") == state:
                return result
        raise AssertionError("unreachable")


def snapshot(index: Any) -> Snapshot:
    """The index object's one snapshot, shared by all its retrievers."""
    found = index.__dict__.get("_snapshot")
    if found is None:
        found = index.__dict__["_snapshot"] = Snapshot(index)
    return found


class StoreView(Store):
    """A store seen through a wrapper: every call goes to ``store`` unless a subclass says
    otherwise (``kind``, ``vectors``, ``drop`` and the like come from the store itself)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.kind = store.kind

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def add(self, chunks: Sequence[Chunk], embeddings: Any) -> None:
        self.store.add(chunks, embeddings)

    def search(self, query: Any, k: int = 10, **options: Any) -> list[tuple[Chunk, float]]:
        return self.search_many([query], k, **options)[0]

    def search_many(
        self, queries: Any, k: int = 10, **options: Any
    ) -> list[list[tuple[Chunk, float]]]:
        return self.store.search_many(queries, k, **options)

    def delete(self, ids: Sequence[str]) -> None:
        self.store.delete(ids)

    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        self.store.delete_documents(doc_ids)

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        return self.store.existing_ids(ids)

    def count(self) -> int:
        return self.store.count()

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        return self.store.get(ids)

    def ids(self) -> list[str]:
        return self.store.ids()

    def refresh(self) -> bool:
        return self.store.refresh()


class TextlessStore(StoreView):
    """An index's store, written without chunk text, context, title or metadata: the docstore
    holds those once
    per document (:mod:`rag.index.chunkfile`), and a copy per chunk and per encoder made the
    stores several times the text. Readers get whole chunks back from :class:`CommittedStore`."""

    def add(self, chunks: Sequence[Chunk], embeddings: Any) -> None:
        thin = [replace(c, text="", context="", title=None, metadata={}) for c in chunks]
        self.store.add(thin, embeddings)  # what filters read (source, section, page) stays


class CommittedStore(StoreView):
    """A store as a reader sees it: refreshed before each search, hits the committed manifest
    does not name dropped, and chunks read back whole from the docstore."""

    def __init__(self, store: Store, snap: Snapshot) -> None:
        super().__init__(store)
        self.snapshot = snap

    def search_many(
        self, queries: Any, k: int = 10, **options: Any
    ) -> list[list[tuple[Chunk, float]]]:
        return self.snapshot.run(lambda: self._search(queries, k, options))

    def _committed(self, found: list[tuple[Chunk, float]]) -> list[tuple[Chunk, float]]:
        whole = self.snapshot.docstore.whole([c for c, _ in found])
        return [(w, s) for w, (_, s) in zip(whole, found, strict=True) if w is not None]

    def _search(
        self, queries: Any, k: int, options: dict[str, Any]
    ) -> list[list[tuple[Chunk, float]]]:
        self.store.refresh()
        depth = k + SLACK
        out = []
        for i, found in enumerate(self.store.search_many(queries, depth, **options)):
            kept = self._committed(found)
            while len(kept) < k and len(found) >= depth and depth < self.store.count():
                depth *= 4  # many uncommitted hits: look deeper for committed ones
                found = self.store.search_many(queries[i : i + 1], depth, **options)[0]
                kept = self._committed(found)
            out.append(kept[:k])
        return out

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        whole = self.snapshot.docstore.whole(self.store.get(ids))
        return [c for c in whole if c is not None]


def committed_store(index: Any, name: str) -> CommittedStore:
    """Encoder ``name``'s store of ``index``, as its readers see it."""
    return CommittedStore(index.store(name), snapshot(index))


def pin_runs(index: Any, fused: Any) -> Any:
    """Make ``fused`` (a FusionRetriever) run all its members under one manifest."""
    runs = fused.retrieve_runs
    snap = snapshot(index)

    def pinned(*args: Any, **kwargs: Any) -> Any:
        return snap.run(lambda: runs(*args, **kwargs))

    fused.retrieve_runs = pinned
    return fused
