"""What a Ray worker runs: parse, chunk and embed one shard of files (no Ray import here).

A worker process runs many shards of one job; its models are loaded once, on its first shard,
and kept in :data:`_INDEXES` (Ray reuses worker processes between tasks). Chunks and vectors are
made by the same code as a local ingest (:func:`rag.index.ingest.chunk_document`,
:meth:`rag.index.Index.chunk_embedder`), so chunk ids and vectors are the same.

Files are listed and read with the folder walk of :mod:`connectors.directory` (its
``is_selected`` and ``load_entry``: the one reading of a file, its limits and its errors), so a
file's id, source and failure reason are those of ``load_directory``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.index.ingest import DEFAULT_MAX_CHUNKS, ChunkedDocument, chunk_document, indexed_document
from rag.types import Chunk, IngestError

if TYPE_CHECKING:
    from connectors.directory import UnchangedFile
    from rag.base import Chunker, Encoder
    from rag.index import Index


@dataclass
class _Loaded:
    index: Index
    chunker: Chunker


# (index root, configuration, environment) -> what this process loaded for them
_LOADED: dict[str, _Loaded] = {}
# environment -> encoder name -> the model, shared by the indexes above ($RAG_BACKEND and the
# like decide how a model computes, so a model is shared only under the same environment)
_ENCODERS: dict[str, dict[str, Encoder]] = {}


@dataclass(frozen=True)
class ShardFile:
    rel: str  # POSIX path relative to the folder walked (as found on disk)
    size: int
    known_hash: str | None = None  # the manifest's hash: unchanged bytes are not parsed


@dataclass(frozen=True)
class Job:
    """What every shard of one run shares (sent to each worker once, by reference)."""

    root: str  # the index folder, resolved: trained adapters and pgvector table names
    config: dict[str, Any]  # the driver's IndexConfig.to_json()
    folder: str  # the folder walked, as given
    direct: bool  # workers write their vectors to the stores (pgvector), else return them
    env: Mapping[str, str] = field(default_factory=dict)  # RAG_PGVECTOR_DSN, offline settings
    max_chunks: int = DEFAULT_MAX_CHUNKS
    # called with the shard number once its vectors are made (and written when direct), before
    # it returns: fault-injection tests kill the worker or the driver there
    shard_hook: Callable[[int], None] | None = None


@dataclass
class ShardResult:
    number: int
    items: list[ChunkedDocument | IngestError | UnchangedFile]
    vectors: dict[str, Any]  # encoder -> matrix over the items' chunks in order (not direct)
    embedded: int  # chunks this worker embedded (when direct, those it wrote)
    pid: int


def list_files(
    folder: Path, include: Sequence[str], exclude: Sequence[str], follow_links: bool
) -> tuple[list[ShardFile], list[IngestError]]:
    """The files ``load_directory`` would read (sorted), and the records of what it would not."""
    from connectors.directory import compile_glob, is_selected
    from connectors.walk import display_name, walk

    includes = [compile_glob(p) for p in include]
    excludes = [compile_glob(p) for p in exclude]
    base = folder.resolve()
    files, skipped = [], []
    for entry in sorted(walk(folder, follow_links=follow_links), key=lambda e: e.rel):
        if not is_selected(entry, includes, excludes):
            continue
        if entry.skip is not None:
            skipped.append(IngestError(display_name(str(base / entry.rel)), entry.skip))
            continue
        try:
            size = (folder / entry.rel).stat().st_size
        except OSError:
            size = 0  # the worker's read reports why
        files.append(ShardFile(entry.rel, size))
    return files, skipped


def source_of(folder: Path, rel: str) -> str:
    from connectors.walk import display_name

    return display_name(str(folder.resolve() / rel))


def make_shards(files: Sequence[ShardFile], shard_files: int) -> list[list[ShardFile]]:
    """Consecutive runs of at most ``shard_files`` files (a shard is the unit of retry)."""
    return [list(files[i : i + shard_files]) for i in range(0, len(files), shard_files)]


def process_shard(job: Job, number: int, files: Sequence[ShardFile]) -> ShardResult:
    """Parse, chunk and embed one shard (the Ray task's body)."""
    from connectors.directory import DEFAULT_MAX_BYTES, UnchangedFile, load_entry
    from connectors.limits import Limits
    from connectors.walk import display_name

    loaded = _loaded(job)
    folder = Path(job.folder)
    items: list[ChunkedDocument | IngestError | UnchangedFile] = []
    chunks: list[Chunk] = []
    for file in files:
        found = load_entry(
            folder / file.rel,
            id=display_name(file.rel),
            source=source_of(folder, file.rel),
            format=None,
            max_bytes=DEFAULT_MAX_BYTES,
            limits=Limits(),
            known_hash=file.known_hash,
        )
        if isinstance(found, (IngestError, UnchangedFile)):
            items.append(found)
            continue
        doc = indexed_document(found)
        made = chunk_document(loaded.chunker, doc, job.max_chunks)
        if isinstance(made, IngestError):
            items.append(made)
            continue
        items.append(ChunkedDocument(replace(doc, text=""), made))  # the text is in the chunks
        chunks.extend(made)
    vectors, embedded = _embed(loaded.index, chunks, job.direct)
    if job.shard_hook is not None:
        job.shard_hook(number)
    return ShardResult(number, items, vectors, embedded, os.getpid())


def _embed(index: Index, chunks: list[Chunk], direct: bool) -> tuple[dict[str, Any], int]:
    """Every dense encoder's vectors of ``chunks``: returned, or (direct) upserted by id, which
    a retried shard repeats harmlessly (what a killed attempt wrote is not embedded again)."""
    vectors: dict[str, Any] = {}
    embedded = 0
    if not chunks:
        return vectors, embedded
    for entry in index.config.encoders:
        if entry.kind == "lexical":
            continue  # the driver indexes terms: cheap, and the BM25 store is one folder
        embed = index.chunk_embedder(entry, False)
        if not direct:
            vectors[entry.name] = embed(chunks)
            continue
        store = index.store(entry.name)
        have = store.existing_ids([c.id for c in chunks])
        todo = [c for c in chunks if c.id not in have]
        if todo:
            store.add(todo, embed(todo))
            embedded += len(todo)
    return vectors, embedded


def _loaded(job: Job) -> _Loaded:
    """This process's Index (encoders, situated wrappers, stores) and chunker for ``job``."""
    import json

    from rag.chunking import get_chunker
    from rag.index import Index, IndexConfig

    env = json.dumps(sorted(job.env.items()))
    key = json.dumps([job.root, job.config, env], sort_keys=True)
    if key not in _LOADED:
        os.environ.update(job.env)
        config = IndexConfig.from_json(job.config)
        # the driver's configuration (what the folder holds, merged with what it asked for);
        # the folder is only read here (a trained adapter), the driver holds its writer lock
        index = Index(job.root, config)
        index.config = config
        index.share_encoders(_ENCODERS.setdefault(env, {}))  # a model once per process
        chunker = get_chunker(config.chunker, **config.chunker_options)
        _LOADED[key] = _Loaded(index, chunker)
    return _LOADED[key]
