"""Ingestion on Ray (rag.distributed) against a local ingest of the same folder, in one run.

Prints a markdown table: steady-state throughput (models already loaded, in the driver for the
local runs and in every Ray worker for the Ray runs) of a local ingest (all cores; one thread,
the per-core baseline), then Ray with 1 and 2 workers (a worker runs with one thread, as Ray
sets OMP_NUM_THREADS=1 for a one-CPU task), with ratios; then Ray's overhead: an empty task's
round trip, and per file and per chunk the difference between a Ray ingest and a local one of
an index with only BM25 (workers parse and chunk, nothing is embedded, so what remains is
Ray's: scheduling, pickling chunks, the object store). Finally, whether the 2-worker index
equals the local one: chunk ids per file, and the vectors' largest difference.

    python benchmarks/ray_ingest.py ../shared/data/documents --encoder minilm
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectors.directory import load_directory
from rag.distributed import ray_ingest, require_ray
from rag.index import Index


def local_run(root: Path, folder: Path, encoders: list[str], threads: int) -> float:
    """A local ingest with ``threads`` encoder threads (``RAG_THREADS``; unset for Ray runs,
    whose workers take one thread each)."""
    os.environ["RAG_THREADS"] = str(threads)
    try:
        index = Index.create(root, encoders, store="memory")
        for name in encoders:
            index.encoder(name).embed_documents(["warm up"] * 4, show_progress=False)  # loaded
        start = time.perf_counter()
        index.ingest(load_directory(folder))
        seconds = time.perf_counter() - start
        print(
            f"  {root.name}: local, {threads} threads, {seconds:.1f} s", file=sys.stderr, flush=True
        )
        return seconds
    finally:
        del os.environ["RAG_THREADS"]


def ray_run(root: Path, folder: Path, encoders: list[str], workers: int, shard_files: int) -> float:
    index = Index.create(root, encoders, store="memory")
    start = time.perf_counter()
    ray_ingest(index, folder, workers=workers, shard_files=shard_files)
    seconds = time.perf_counter() - start
    print(f"  {root.name}: Ray, {workers} workers, {seconds:.1f} s", file=sys.stderr, flush=True)
    return seconds


def task_round_trip(ray, calls: int = 200) -> float:
    @ray.remote(num_cpus=1)
    def empty(x: int) -> int:
        return x

    ray.get([empty.remote(i) for i in range(8)])  # workers started
    times = []
    for i in range(calls):
        start = time.perf_counter()
        ray.get(empty.remote(i))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def counts(root: Path) -> tuple[int, int]:
    files = Index(root).manifest["files"]
    return len(files), sum(len(e["chunk_ids"]) for e in files.values())


def compare(a: Path, b: Path, encoder: str) -> str:
    x, y = Index(a), Index(b)
    ids_x = {d: e["chunk_ids"] for d, e in x.manifest["files"].items()}
    ids_y = {d: e["chunk_ids"] for d, e in y.manifest["files"].items()}
    ids = sorted(i for v in ids_x.values() for i in v)
    vx, vy = x.store(encoder).vectors(ids), y.store(encoder).vectors(ids)
    diff = max(float(np.abs(vx[i] - vy[i]).max()) for i in ids)
    cosine = min(
        float(vx[i] @ vy[i] / (np.linalg.norm(vx[i]) * np.linalg.norm(vy[i]))) for i in ids
    )
    same = "equal" if ids_x == ids_y else "DIFFERENT"
    return (
        f"chunk ids per file: {same} ({len(ids_x)} files, {len(ids)} chunks); vectors: "
        f"max |diff| {diff:.2e}, min cosine {cosine:.6f}"
    )


def synthetic(folder: Path, files: int, chunks_per_file: int) -> Path:
    folder.mkdir(parents=True)
    words = [
        "ray",
        "shard",
        "worker",
        "driver",
        "manifest",
        "commit",
        "chunk",
        "vector",
        "index",
        "store",
    ]
    for n in range(files):
        # every word its own (repeated text is refused as spam by the connectors)
        paragraphs = [
            " ".join(f"{words[(n + p + i) % len(words)]}{n}x{p}x{i}" for i in range(60))
            for p in range(chunks_per_file)
        ]
        (folder / f"f{n:05d}.txt").write_text("\n\n".join(paragraphs), "utf-8")
    return folder


def overhead(ray, work: Path, files: int, chunks_per_file: int) -> tuple[float, int]:
    """(Ray seconds - local seconds, items) for a BM25-only ingest of a synthetic folder."""
    folder = synthetic(work / f"syn-{files}-{chunks_per_file}", files, chunks_per_file)
    local = local_run(work / f"l-{files}", folder, ["bm25"], 1)
    remote = ray_run(work / f"r-{files}", folder, ["bm25"], 1, 1)
    return remote - local, counts(work / f"l-{files}")


def print_overhead(ray, work: Path) -> None:
    trip = task_round_trip(ray)
    per_file, (n_files, _) = overhead(ray, work, 200, 1)
    per_chunk, (_, n_chunks) = overhead(ray, work, 4, 750)
    print()
    print("| Ray overhead | value |")
    print("|---|---|")
    print(f"| empty task round trip (median of 200) | {trip * 1e3:.2f} ms |")
    print(
        f"| per file (200 one-chunk files, a shard each, BM25 only) | "
        f"{per_file / n_files * 1e3:.1f} ms |"
    )
    print(
        f"| per chunk ({n_chunks} chunks in 4 files, BM25 only) | "
        f"{per_chunk / n_chunks * 1e3:.3f} ms |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--shard-files", type=int, default=4)
    parser.add_argument("--overhead-only", action="store_true", help="skip the throughput runs")
    args = parser.parse_args()
    # Ray runs its workers at nice 15; on a shared machine that would measure the other users'
    # load, not Ray: the workers get the priority the local runs have
    os.environ.setdefault("RAY_worker_niceness", "0")
    ray = require_ray(local=True)
    work = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        encoders = [args.encoder]
        rows = []
        if args.overhead_only:
            print_overhead(ray, work)
            return
        local = local_run(work / "local", args.folder, encoders, os.cpu_count() or 1)
        files, chunks = counts(work / "local")
        rows.append(("local ingest (all cores)", local))
        rows.append(("local ingest (1 thread)", local_run(work / "l1", args.folder, encoders, 1)))
        # warm every worker process (models loaded once per worker), then measure
        ray_run(work / "warm", args.folder, encoders, 2, args.shard_files)
        for workers in (1, 2):
            seconds = ray_run(
                work / f"ray{workers}", args.folder, encoders, workers, args.shard_files
            )
            rows.append((f"Ray, {workers} worker{'s' * (workers > 1)}", seconds))
        print(
            f"{args.folder}: {files} files, {chunks} chunks, encoder {args.encoder}, "
            f"{os.cpu_count()} CPUs, shards of {args.shard_files} files\n"
        )
        print("| run | seconds | chunks/s | vs local (all cores) | vs local (1 thread) |")
        print("|---|---|---|---|---|")
        for name, seconds in rows:
            print(
                f"| {name} | {seconds:.1f} | {chunks / seconds:.0f} | "
                f"{local / seconds:.2f}x | {rows[1][1] / seconds:.2f}x |"
            )
        print()
        print("2 workers against local:", compare(work / "local", work / "ray2", args.encoder))
        print_overhead(ray, work)
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
