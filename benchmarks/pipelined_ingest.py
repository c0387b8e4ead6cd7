"""Parsing beside embedding, measured: the same ingest with ``prefetch`` on (the default: files
parsed in the caller's thread while a second thread chunks, embeds and stores) and off (one
thread, in turn), interleaved, each into a fresh index.

    python benchmarks/pipelined_ingest.py FOLDER [--encoder minilm] [--repeats 2]

Prints each run's seconds and the median ratio. The encoder is loaded before timing (shared by
every run), so the figures are parsing + chunking + embedding + storing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from connectors.directory import load_directory
from rag.index import EncoderEntry, Index, IndexConfig


def one_run(folder: Path, encoder: str, prefetch: int, loaded: dict) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="rag-pipe-") as root:
        index = Index(Path(root) / "idx", IndexConfig([EncoderEntry(encoder)], store="memory"))
        index.share_encoders(loaded)
        start = time.perf_counter()
        report = index.ingest(load_directory(folder), prefetch=prefetch)
        return time.perf_counter() - start, report.chunks_added


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--encoder", default="minilm")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    loaded: dict = {}
    from rag.encoders import load_encoder

    loaded[args.encoder] = load_encoder(args.encoder)
    times: dict[str, list[float]] = {"in turn": [], "beside": []}
    for repeat in range(args.repeats):
        for name, depth in (("in turn", 0), ("beside", 8)):
            seconds, chunks = one_run(args.folder, args.encoder, depth, loaded)
            times[name].append(seconds)
            print(f"repeat {repeat + 1}, {name}: {seconds:.1f} s, {chunks} chunks", flush=True)
    turn, beside = (statistics.median(times[k]) for k in ("in turn", "beside"))
    print(f"median: in turn {turn:.1f} s, beside {beside:.1f} s, speed-up {turn / beside:.2f}x")


if __name__ == "__main__":
    main()
