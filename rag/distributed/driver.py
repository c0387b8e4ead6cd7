"""The driver of a Ray ingest: it lists and shards the files, keeps the manifest and commits.

Ray tasks (one per shard, retried by Ray when their worker process dies) parse, chunk and
embed; the driver feeds what each shard returns into :meth:`rag.index.Index.ingest` as
:class:`~rag.index.ingest.ChunkedDocument` items with the vectors precomputed, and commits
after every shard (:class:`~rag.index.ingest.Commit`), so the crash safety of a local ingest
holds unchanged. With a pgvector index the workers upsert their vectors into the database
themselves (by chunk id: a retried shard writes the same rows again); otherwise they return
the vectors and the driver stores them. Lexical (BM25) encoders are indexed by the driver.

A driver killed mid-run leaves the last committed manifest, which is consistent; with pgvector
its workers may have written rows no manifest names. ``DIR/ray_ingest.json`` is written when a
run starts and removed when it ends: the next run that finds it sweeps those rows first
(:func:`rag.index.journal.sweep`), then redoes the files the manifest does not hold.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.distributed.worker import (
    Job,
    ShardFile,
    list_files,
    make_shards,
    process_shard,
    source_of,
)
from rag.files import write_json_atomic
from rag.index import journal
from rag.index.ingest import ChunkedDocument, Commit
from rag.types import Chunk

if TYPE_CHECKING:
    from rag.index import Index, IngestReport
    from rag.index.ingest import Item

INSTALL = "pip install 'situated-rag[ray]'"
MARKER = "ray_ingest.json"  # a run in progress (or a driver that died): see the module's doc
DEFAULT_SHARD_FILES = 4


def require_ray(local: bool = True) -> Any:
    """The ``ray`` module, or ImportError saying what to install. ``local``: this process may
    start a Ray of its own, which then listens on loopback only (Ray otherwise binds the
    machine's address, which a single-machine run does not need); set before Ray is imported,
    since it reads the setting then."""
    if local:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no telemetry
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"--ray needs Ray, which is not installed: {INSTALL}") from exc
    return ray


def ray_ingest(
    index: Index,
    path: str | os.PathLike[str],
    *,
    address: str | None = None,
    workers: int | None = None,
    shard_files: int = DEFAULT_SHARD_FILES,
    include: Sequence[str] = ("**/*",),
    exclude: Sequence[str] = (),
    follow_links: bool = False,
    prune: bool = False,
    max_retries: int = 3,
    batch_chunks: int = 256,
    progress: Callable[[str], None] | None = None,
    on_chunks: Callable[[int], None] | None = None,
    shard_hook: Callable[[int], None] | None = None,
) -> IngestReport:
    """Ingest the folder (or file) ``path`` into ``index`` on Ray; the same index as
    ``index.ingest(load_directory(path, ...))`` builds (same chunk ids and vectors).

    ``address``: a running cluster (``ray.init(address=...)``, e.g. ``ray://head:10001`` or
    ``HOST:6379``); without it, the Ray this process already joined, else a local one started
    for the run (with ``workers`` CPUs, default all) and stopped after it. ``workers``: at most
    this many shards run at once (default: the cluster's CPUs); ``shard_files``: files per
    shard, the unit of retry and of commit; ``max_retries``: how often Ray reruns a shard whose
    worker died. ``include``, ``exclude``, ``follow_links`` and ``prune`` are as for
    ``load_directory`` and ``Index.ingest``. ``shard_hook(number)`` runs in the worker once a
    shard's vectors are made (fault-injection tests kill the process there).

    The workers read the files and (for a trained situated mode) the index folder by the paths
    the driver sees: on a cluster of several machines those must be shared (or the same)."""
    ray = require_ray(local=address is None)
    if shard_files < 1 or (workers is not None and workers < 1):
        raise ValueError("--ray-workers and --ray-shard-files must be at least 1")
    path = Path(path)
    if path.is_dir():
        folder = path
        files, skipped = list_files(path, include, exclude, follow_links)
    else:
        folder, files, skipped = path.parent, [ShardFile(path.name, 0)], []
    with index.writing():
        known = index.known_hashes()
        files = [replace(f, known_hash=known.get(source_of(folder, f.rel))) for f in files]
        marker, stores = index.root / MARKER, [index.store(e.name) for e in index.config.encoders]
        # before any worker writes (Ingestion would do it later, deleting rows they just wrote):
        # what a killed writer listed in pending.json, and, when a driver died mid-run, every row
        # no manifest names (its workers wrote them)
        journal.recover(index.docstore, stores)
        if marker.exists():
            journal.sweep(index.docstore, stores)
        index.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(marker, {"pid": os.getpid(), "started": time.time()})
        started = _connect(ray, address, workers)
        try:
            job = Job(
                root=str(index.root.resolve()),
                config=index.config.to_json(),
                folder=str(folder),
                direct=index.config.store == "pgvector",
                env=_worker_env(),
                shard_hook=shard_hook,
            )
            dense = [e for e in index.config.encoders if e.kind != "lexical"]
            made = {e.name: Precomputed(index.chunk_embedder(e, False)) for e in dense}
            limit = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            stream = Shards(ray, job, make_shards(files, shard_files), made, limit, max_retries)
            items = iter(stream)
            head: list[Item] = []
            if job.direct:  # the workers make the tables: the driver opens them once they exist
                head = _first_stored(items)
                index.forget_stores()
            report = index.ingest(
                _chain([*skipped, *head], items),
                prune_missing_under=str(path.resolve()) if prune and path.is_dir() else None,
                batch_chunks=batch_chunks,
                progress=progress,
                on_chunks=on_chunks,
                embedders=made,
                prefetch=0,  # the shard stream reopens the index's stores between shards
            )
            report.chunks_embedded += stream.embedded_by_workers
        finally:
            if started:
                ray.shutdown()
        marker.unlink(missing_ok=True)  # the run finished: nothing unnamed is left
    return report


def _first_stored(items: Iterator[Item]) -> list[Item]:
    """The items up to the commit of the first shard with chunks (by then its worker has made
    every dense table; a store opened before would not see them)."""
    head: list[Item] = []
    chunked = False
    for item in items:
        head.append(item)
        chunked = chunked or isinstance(item, ChunkedDocument)
        if chunked and isinstance(item, Commit):
            break
    return head


def _chain(first: Sequence[Item], then: Iterator[Item]) -> Iterator[Item]:
    yield from first
    yield from then


def _connect(ray: Any, address: str | None, workers: int | None) -> bool:
    """Join (or start) Ray; True when this call did, and so must stop it."""
    if ray.is_initialized():
        return False  # the caller's Ray (a notebook, the tests' cluster): used as it is
    if address is None:
        ray.init(
            num_cpus=workers or os.cpu_count() or 1,
            include_dashboard=False,
            log_to_driver=False,
        )
    else:
        ray.init(address=address, log_to_driver=False)
    return True


def _worker_env() -> dict[str, str]:
    """What a worker takes from this process's environment (a remote worker has its own): the
    project's settings (``RAG_*``: the database, the encoder backend, the model cache) and the
    offline ones."""
    from rag.offline import OFFLINE_DEFAULTS

    env = {k: v for k, v in os.environ.items() if k.startswith("RAG_") or k in OFFLINE_DEFAULTS}
    # a task holds one CPU: one thread each, not the free cores an encoder would otherwise take
    # from the load average (two workers on two cores would each take both)
    env.setdefault("RAG_THREADS", "1")
    return env


class Precomputed:
    """An encoder's target embedder over vectors the workers made, by chunk id. Chunks no worker
    embedded (a file's stored chunks, for an encoder added to the index) are embedded here."""

    def __init__(self, fallback: Callable[[Sequence[Chunk]], Any]) -> None:
        self.fallback = fallback
        self.rows: dict[str, np.ndarray] = {}

    def add(self, chunks: Sequence[Chunk], matrix: Any) -> None:
        self.rows.update(zip((c.id for c in chunks), np.asarray(matrix), strict=True))

    def __call__(self, chunks: Sequence[Chunk]) -> np.ndarray:
        missing = [c for c in chunks if c.id not in self.rows]
        if missing:
            self.add(missing, self.fallback(missing))
        return np.stack([self.rows.pop(c.id) for c in chunks])


class Shards:
    """The items of every shard as its task finishes, each shard followed by a commit; at most
    ``limit`` tasks in flight (a bounded queue: results wait in the object store, not here)."""

    def __init__(
        self,
        ray: Any,
        job: Job,
        shards: list[list[ShardFile]],
        made: dict[str, Precomputed],
        limit: int,
        max_retries: int,
    ) -> None:
        self.ray, self.shards, self.made, self.limit = ray, shards, made, limit
        self.task = ray.remote(num_cpus=1, max_retries=max_retries)(process_shard)
        self.job = job
        self.embedded_by_workers = 0
        self.pids: set[int] = set()  # the worker processes that returned a shard

    def __iter__(self) -> Iterator[Item]:
        ray = self.ray
        job = ray.put(self.job)  # sent once, not with every task
        waiting = deque(enumerate(self.shards))
        running: dict[Any, int] = {}
        try:
            while waiting or running:
                while waiting and len(running) < self.limit:
                    number, files = waiting.popleft()
                    running[self.task.remote(job, number, files)] = number
                done, _ = ray.wait(list(running), num_returns=1)
                running.pop(done[0])
                result = ray.get(done[0])  # a shard out of retries raises: the run stops here
                self.pids.add(result.pid)
                self.embedded_by_workers += result.embedded
                chunks = [
                    c for i in result.items if isinstance(i, ChunkedDocument) for c in i.chunks
                ]
                for name, matrix in result.vectors.items():
                    self.made[name].add(chunks, matrix)
                yield from result.items
                yield Commit()
                for made in self.made.values():
                    made.rows.clear()  # committed, or already stored and skipped
        finally:
            for ref in running:  # the run failed: what is still queued is not wanted
                ray.cancel(ref)
