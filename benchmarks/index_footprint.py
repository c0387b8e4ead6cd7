"""Memory and disk an index takes per MB of text: peak RSS of an ingest and of a search, and the
bytes of each part of the index folder, at several corpus sizes.

    python benchmarks/index_footprint.py WORKDIR [SIZES_MB ...] [--encoder NAME] [--store STORE]

For each size (default 1 5 20 MB) a folder of plain-text files is written under WORKDIR from the
shared corpora (the five novels in ``books/``, then SciFact and Climate-FEVER abstracts, 50 per
file, repeated with a copy number when more text is asked for), then ``rag ingest`` and one
``rag search`` run as child processes whose peak RSS is read from ``getrusage`` (the first
search after an ingest also fits the relevance model; the second is a search as usual). Sizes on disk
are those of the index's parts (docstore, lexical, memory, chroma), divided by the text's bytes.

The default encoder is BM25 on the memory store (no model: RSS then shows the index's own cost,
not a model's); ``--encoder wordllama`` adds a dense store cheaply. ``PYTHONPATH`` picks the
code measured, so the same script measures two versions side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

DATA = Path(os.environ.get("RAG_SHARED_DATA", "/work/shared/data"))
MB = 1_000_000


def texts() -> Iterator[tuple[str, str]]:
    """(name, text) pieces: each novel, then abstracts 50 to a file."""
    for book in sorted((DATA / "books").glob("*.txt")):
        yield book.stem, book.read_text("utf-8")
    for corpus in ("scifact", "climate_fever"):
        batch: list[str] = []
        with open(DATA / corpus / "corpus.jsonl", encoding="utf-8") as fh:
            for n, line in enumerate(fh):
                row = json.loads(line)
                batch.append(f"{row.get('title', '')}\n\n{row['text']}\n")
                if len(batch) == 50:
                    yield f"{corpus}-{n // 50:05d}", "\n".join(batch)
                    batch = []


def write_corpus(folder: Path, size_mb: float) -> int:
    """Text files under ``folder`` adding up to about ``size_mb`` MB; returns the bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    total, copy = 0, 0
    while total < size_mb * MB:
        for name, text in texts():
            data = text.encode("utf-8")
            (folder / f"{copy}-{name}.txt").write_bytes(data)
            total += len(data)
            if total >= size_mb * MB:
                break
        copy += 1
    return total


def peak_rss_of(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; its peak RSS in MB (this process's children high-water mark, so each call
    runs in a fresh measuring process) and its wall seconds."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, time.perf_counter() - t)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *cmd], check=True, capture_output=True, text=True
    )
    kb, seconds = out.stdout.split()
    return int(kb) / 1024, float(seconds)


def folder_bytes(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("sizes", nargs="*", type=float, default=[1.0, 5.0, 20.0])
    ap.add_argument("--encoder", default="bm25")
    ap.add_argument("--store", default="memory")
    args = ap.parse_args()
    rag = [sys.executable, "-c", "import sys; from rag.cli import main; sys.exit(main())"]
    print(f"encoder {args.encoder}, store {args.store}; python {sys.executable}")
    print(
        "| text MB | ingest s | ingest RSS MB | first search RSS MB | search RSS MB "
        "| docstore / text "
        "| lexical / text | vectors / text | (docstore + lexical) / text |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        corpus, index = args.workdir / f"corpus-{size:g}", args.workdir / f"index-{size:g}"
        shutil.rmtree(index, ignore_errors=True)
        if not corpus.exists():
            write_corpus(corpus, size)
        text = folder_bytes(corpus)
        ingest = [*rag, "ingest", str(corpus), "--index", str(index), "--no-progress"]
        ingest += ["--encoder", args.encoder, "--store", args.store]
        rss_in, seconds = peak_rss_of(ingest)
        query = [*rag, "search", "the marriage of the eldest daughter", "--index", str(index)]
        rss_q, _ = peak_rss_of(query)  # the first search also fits the relevance model
        rss_warm, _ = peak_rss_of(query)
        doc = folder_bytes(index / "docstore") + folder_bytes(index / "manifest.json")
        lex = folder_bytes(index / "lexical")
        vec = folder_bytes(index / "memory") + folder_bytes(index / "chroma")
        print(
            f"| {text / MB:.1f} | {seconds:.0f} | {rss_in:.0f} | {rss_q:.0f} | {rss_warm:.0f} "
            f"| {doc / text:.2f} "
            f"| {lex / text:.2f} | {vec / text:.2f} | {(doc + lex) / text:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
