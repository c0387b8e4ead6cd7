"""The index folder facade: configuration, docstore and stores, ingestion, retrievers.

Layout of ``DIR`` (transparent, versioned files; no pickle)::

    index.json        format version, chunker settings, encoders, store kind
    manifest.json     per source file: content hash, chunk ids, which encoders hold them
    docstore/         one JSON file per document with its chunks (the source of truth for text)
    chroma/           the embedded Chroma database (one collection per dense encoder)
    memory/NAME/      or the exact numpy store, one folder per dense encoder (or pgvector tables)
    lexical/NAME/     one BM25 store per lexical encoder, updated per file like the others
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.files import write_json_atomic
from rag.index.config import EncoderEntry, IndexConfig, merge_config
from rag.index.docstore import Docstore
from rag.index.external import drop_external, pgvector_table
from rag.index.ingest import Ingestion, IngestReport, Target, remove_documents
from rag.index.lock import WriterLock, commit_state
from rag.index.names import check_request
from rag.index.prefetch import DEFAULT_DEPTH, consume_beside
from rag.index.residual import ResidualQueries, residual_store_vectors
from rag.index.snapshot import TextlessStore
from rag.types import Chunk, Hit

if TYPE_CHECKING:
    from collections.abc import Callable

    from rag.base import Encoder, Store
    from rag.index.ingest import Item
    from rag.retrieval.filters import WhereLike
    from rag.retrieval.multi import FusionConfig, FusionRetriever
    from rag.retrieval.normalize import ScoreStats
    from rag.retrieval.store_retriever import StoreRetriever

# What an index folder may hold: only these are removed by a rebuild.
_PARTS = ("index.json", "manifest.json", "docstore", "chroma", "memory", "lexical", "bm25")


def collection_name(encoder: str) -> str:
    """A store-safe folder/collection name for an encoder name."""
    from rag.stores._codec import safe_collection_name

    return safe_collection_name(encoder)


class Index:
    """Open (or create) an index folder. Encoders and stores are loaded on first use.

    ``config`` is what the caller asks for: on a new folder it is the configuration; on an
    existing one its encoders are added, and a different chunker, chunker option or store
    raises :class:`~rag.index.config.IndexConfigError` (``rebuild=True`` starts the folder
    again with ``config`` instead). Writes hold the folder's lock (see :meth:`writing`).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        config: IndexConfig | None = None,
        *,
        rebuild: bool = False,
        lock_timeout: float | None = None,
    ) -> None:
        self.root, self.lock_timeout, self._writing = Path(root), lock_timeout, 0
        self._encoders: dict[str, Encoder] = {}  # kept when the folder is re-read
        if config is not None:  # every name checked before the folder is touched (or cleared)
            check_request(config, None if rebuild else self.stored_config(self.root))
        if rebuild and self.root.is_dir():
            with WriterLock(self.root, lock_timeout):
                self._clear()
        self._load(config)
        if self.config.format == 1:
            with self.writing():
                if self.config.format == 1:  # not migrated by a writer we waited for
                    self._migrate_lexical()

    def _load(self, config: IndexConfig | None) -> None:
        """(Re)read the folder, adding ``config``'s encoders; opened stores are dropped."""
        stored = self.stored_config(self.root)
        if stored is None:
            self.config = config or IndexConfig()
        elif config is None:
            self.config = stored
        else:
            self.config = merge_config(stored, config, str(self.root))
        self.docstore = Docstore(self.root)
        self._stores: dict[str, Store] = {}
        self._situated_encoders: dict[tuple[str, str], Any] = {}
        self._seen = commit_state(self.root)

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the folder's writer lock (:mod:`rag.index.lock`, re-entrant; ``lock_timeout``:
        how long to wait, ``None`` for ever), first re-reading the folder if another writer
        committed since this object read it (so that what that writer added stays)."""
        with WriterLock(self.root, self.lock_timeout):
            if self._writing == 0 and commit_state(self.root) != self._seen:
                self._load(self.config)  # what this object has (added encoders) on what is there
            self._writing += 1
            try:
                yield
            finally:
                self._writing -= 1
                self._seen = commit_state(self.root)  # what this object has seen (and written)

    @classmethod
    def create(
        cls,
        root: str | os.PathLike[str],
        encoders: Sequence[str | EncoderEntry] = ("minilm",),
        *,
        store: str = "chroma",
        chunker: str = "recursive",
        chunker_options: Mapping[str, Any] | None = None,
        situated: str = "plain",
        residual: float | None = None,
        rebuild: bool = False,
    ) -> Index:
        """An index at ``root`` with these encoders (each one's kind from the registry; dense ones
        embed with the ``situated`` mode, scored residually with alpha ``residual`` when given).
        Opening an existing, matching index is fine; a mismatch raises unless ``rebuild``."""
        entries = [
            e if isinstance(e, EncoderEntry) else _entry(e, situated, residual) for e in encoders
        ]
        config = IndexConfig(
            encoders=entries,
            store=store,  # type: ignore[arg-type]
            chunker=chunker,
            chunker_options=dict(chunker_options or {}),
        )
        return cls(root, config, rebuild=rebuild)

    @staticmethod
    def stored_config(root: str | os.PathLike[str]) -> IndexConfig | None:
        """The configuration saved in ``root``, or ``None`` when there is no index there."""
        path = Path(root) / "index.json"
        if not path.exists():
            return None
        return IndexConfig.from_json(json.loads(path.read_text("utf-8")))

    def _save_config(self) -> None:
        write_json_atomic(self.root / "index.json", self.config.to_json())

    def _clear(self) -> None:
        drop_external(self.root)
        for name in _PARTS:
            part = self.root / name
            if part.is_dir():
                shutil.rmtree(part)
            else:
                part.unlink(missing_ok=True)

    # -- what it holds -----------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        return (self.root / "index.json").exists()

    @property
    def manifest(self) -> dict[str, Any]:
        return self.docstore.manifest

    def known_hashes(self) -> dict[str, str]:
        """Source path -> content hash of every indexed file (lets connectors skip parsing)."""
        return self.docstore.known_hashes()

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        return self.docstore.chunks_of(doc_id)

    def all_chunks(self) -> Iterator[Chunk]:
        return self.docstore.iter_chunks()

    # -- components ----------------------------------------------------------------------------

    def encoder(self, name: str) -> Encoder:
        if name not in self._encoders:
            from rag.encoders.registry import load_encoder

            self._encoders[name] = load_encoder(name)
        return self._encoders[name]

    def share_encoders(self, loaded: dict[str, Encoder]) -> None:
        """Keep encoders in ``loaded``, shared by a process's indexes (a Ray worker's)."""
        loaded.update(self._encoders)
        self._encoders = loaded

    def forget_stores(self) -> None:
        """Open the stores again on next use (another process made their tables: pgvector)."""
        self._stores.clear()

    def store(self, name: str) -> Store:
        if name not in self._stores:
            from rag.stores import get_store

            entry = self.config.entry(name)
            folder = collection_name(name)
            if entry.kind == "lexical":
                store = get_store("bm25", path=self.root / "lexical" / folder)
            elif self.config.store == "chroma":
                store = get_store("chroma", path=self.root / "chroma", collection=folder)
            elif self.config.store == "pgvector":  # the database in RAG_PGVECTOR_DSN
                store = get_store("pgvector", table=pgvector_table(self.root, folder))
            else:
                store = get_store("memory", path=self.root / "memory" / folder)
            self._stores[name] = TextlessStore(store)  # text and context live in the docstore
        return self._stores[name]

    def query_encoder(self, entry: EncoderEntry) -> Any:
        """What embeds queries for ``entry``: the encoder, or its situated wrapper (SitEmb,
        arXiv 2508.01959; late chunking, arXiv 2409.04701; a prefix header); with a residual,
        the plain query vector with the 0 that matches the stored vectors' extra coordinate."""
        if entry.situated == "plain" or entry.kind == "lexical":
            return self.encoder(entry.name)
        situated = self._situated(entry)
        return situated if entry.residual is None else ResidualQueries(situated)

    def _situated(self, entry: EncoderEntry) -> Any:
        """The entry's situated encoder, built once (a trained one copies and adapts a model);
        ``trained:PATH`` with a relative path names a file inside the index (``rag tune``)."""
        from rag.encoders.situated import get_situated

        key = (entry.name, entry.situated)
        if key not in self._situated_encoders:
            mode, colon, argument = entry.situated.partition(":")
            if colon and (self.root / argument).is_file():
                mode = f"{mode}:{self.root / argument}"
            else:
                mode = entry.situated
            pinned = {"window_tokens": entry.window_tokens} if entry.window_tokens else {}
            self._situated_encoders[key] = get_situated(mode, self.encoder(entry.name), **pinned)
        return self._situated_encoders[key]

    def forget_situated(self, name: str) -> None:
        """Drop the cached situated encoders of encoder ``name`` (its mode or adapter changed)."""
        for key in [k for k in self._situated_encoders if k[0] == name]:
            del self._situated_encoders[key]

    def chunk_embedder(
        self, entry: EncoderEntry, show_progress: bool | None = None
    ) -> Callable[[Sequence[Chunk]], Any]:
        """How ``entry`` turns chunks into what its store holds (the shown text stays
        ``chunk.text``): a lexical encoder indexes the mode's text, a dense one embeds through
        its situated encoder."""

        def embed(chunks: Sequence[Chunk]) -> Any:
            show = len(chunks) > 64 if show_progress is None else show_progress
            if entry.kind == "lexical" or entry.situated == "plain":
                from rag.encoders.situated import situated_text

                texts = [situated_text(c, entry.situated) for c in chunks]
                return self.encoder(entry.name).embed_documents(texts, show_progress=show)
            if entry.residual is None:
                return self._situated(entry).embed_chunks(chunks, show_progress=show).situated
            found = self._situated(entry).embed_chunks(
                chunks, show_progress=show, chunk_vectors=True
            )
            return residual_store_vectors(found.situated, found.chunk, entry.residual)

        return embed

    # -- ingest --------------------------------------------------------------------------------

    def ingest(
        self,
        documents: Iterable[Item],
        *,
        prune_missing_under: str | os.PathLike[str] | None = None,
        batch_chunks: int = 256,
        progress: Callable[[str], None] | None = None,
        on_chunks: Callable[[int], None] | None = None,
        embedders: Mapping[str, Callable[[Sequence[Chunk]], Any]] | None = None,
        prefetch: int = DEFAULT_DEPTH,
    ) -> IngestReport:
        """Add new and changed documents; skip unchanged ones; report failures.

        ``prune_missing_under``: a folder; indexed files inside it (by path components) that
        were not in ``documents`` are removed (a deleted file's chunks go only when asked).
        ``embedders``: per encoder name, what embeds its chunks instead of
        :meth:`chunk_embedder` (vectors computed elsewhere, :mod:`rag.distributed`).
        ``prefetch``: how many documents parsing may run ahead of embedding, which works in a
        second thread (0: one thread, in turn).
        """
        from rag.chunking import get_chunker

        chosen = embedders or {}
        with self.writing():
            targets = [
                Target(
                    e.name,
                    self.store(e.name),
                    chosen.get(e.name) or self.chunk_embedder(e, False),
                    e.kind or "dense",
                    reads_context=e.kind != "lexical" and e.situated != "plain",
                )
                for e in self.config.encoders
            ]
            chunker = get_chunker(self.config.chunker, **self.config.chunker_options)
            run = Ingestion(
                self.docstore, chunker, targets, batch_chunks=batch_chunks, progress=progress
            )
            run.on_chunks, run.before_write = on_chunks, self._save_config  # at the first batch
            return consume_beside(  # parsing here, embedding beside it: the two overlap
                lambda items: run.run(items, prune_missing_under=prune_missing_under),
                documents,
                prefetch,
            )

    def remove(self, doc_ids: Sequence[str]) -> None:
        """Remove documents (by id, which is their source path) from every store."""
        with self.writing():
            ids = [d for d in doc_ids if d in self.docstore.files]
            remove_documents(self.docstore, [self.store(e.name) for e in self.config.encoders], ids)
            self.docstore.save_manifest()

    def _migrate_lexical(self) -> None:
        """Format 1 kept BM25 outside the stores: fill each lexical store from the docstore
        once, then record format 2 (the old ``bm25/`` folder goes last)."""
        lexical = [e for e in self.config.encoders if e.kind == "lexical"]
        chunks = list(self.docstore.iter_chunks())
        for entry in lexical:
            store = self.store(entry.name)
            if chunks and store.count() == 0:
                store.add(chunks, self.chunk_embedder(entry)(chunks))
        self.config.format = 2
        self._save_config()
        if (self.root / "bm25").is_dir():
            shutil.rmtree(self.root / "bm25")

    # -- search --------------------------------------------------------------------------------

    def retriever(
        self, encoder: str | None = None, *, dedup: bool = True, mmr: float | None = None
    ) -> StoreRetriever | FusionRetriever:
        """A retriever over one configured encoder; by default the only one, or all of them
        fused with the default fusion when the index has several. ``dedup`` folds copies of a
        passage into one hit, ``mmr`` is an MMR lambda (:mod:`rag.retrieval.diversity`)."""
        if not self.exists:
            raise FileNotFoundError(f"no index at {self.root}: ingest documents into it first")
        if encoder is None and len(self.config.encoders) > 1:
            return self.fused_retriever(dedup=dedup, mmr=mmr)
        from rag.index.relevance import with_relevance
        from rag.index.search import encoder_retriever

        return with_relevance(self, encoder_retriever(self, encoder, dedup=dedup, mmr=mmr))

    def fused_retriever(
        self,
        fusion: str | FusionConfig = "default",
        *,
        encoders: Sequence[str] | None = None,
        candidates: int = 100,
        calibration: Mapping[str, ScoreStats] | None = None,
        calibration_queries: int = 256,
        dedup: bool = True,
        mmr: float | None = None,
    ) -> FusionRetriever:
        """All (or the named) encoders queried concurrently, their hits fused (see
        :mod:`rag.retrieval.multi` for the default fusion and why). A ``calibration`` fusion
        without ``calibration`` is calibrated on pseudo-queries drawn from the index's chunks."""
        from rag.index.relevance import with_relevance
        from rag.index.search import fused_retriever

        found = fused_retriever(
            self,
            fusion,
            encoders=encoders,
            candidates=candidates,
            calibration=calibration,
            calibration_queries=calibration_queries,
            dedup=dedup,
            mmr=mmr,
        )
        return with_relevance(self, found)  # Hit.relevance: rag.index.relevance

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        where: WhereLike = None,
        dedup: bool = True,
        mmr: float | None = None,
        min_score: float | None = None,
    ) -> list[Hit]:
        """The top ``k`` hits for ``query`` from the default retriever; ``where``: a filter
        (:class:`rag.retrieval.filters.Where`, a dict or ``KEY=VALUE`` strings); ``min_score``
        drops hits whose ``relevance`` (in [0, 1], :mod:`rag.retrieval.relevance`) is lower."""
        from rag.retrieval.relevance import above

        hits = self.retriever(dedup=dedup, mmr=mmr).retrieve(query, k, where=where)
        return above(hits, min_score)

    def info(self) -> dict[str, Any]:
        """What ``rag info`` prints: settings, counts and each encoder's stored count."""
        from rag.index.info import index_info

        return index_info(self)


def _entry(name: str, situated: str, residual: float | None = None) -> EncoderEntry:
    """``name`` with the situated mode and residual when it is dense (lexical ones keep plain)."""
    kind = EncoderEntry(name).kind
    if kind != "dense":
        return EncoderEntry(name, kind)
    return EncoderEntry(name, kind, situated, residual)
