"""Wall time to ingest one new small file into an index that already holds ~100k BM25 chunks.

    python benchmarks/lexical_incremental.py ROOT [N_CHUNKS] [REPEATS]

ROOT is an index folder: if it holds no index yet, it is built first from SciFact abstracts
(``/work/shared/data/scifact/corpus.jsonl``, or ``$SCIFACT_CORPUS``), copied with new ids until
the token chunker (64 tokens) gives ``N_CHUNKS`` chunks (default 100000), and the build time is
printed. Then, ``REPEATS`` times (default 3), the index is opened and two new small files are
ingested one at a time, each timed (the first on the freshly opened index, the second warm).

The index has one encoder, BM25, on the memory store. Only API that exists both before and
after the issue-9 refactor is used (``Index``, ``IndexConfig``, ``EncoderEntry``, ``Document``,
``get_chunker``), so the same script measures both versions (``PYTHONPATH`` picks the code).
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import rag
from rag.chunking import get_chunker
from rag.index import EncoderEntry, Index, IndexConfig
from rag.types import Document

CORPUS = Path(os.environ.get("SCIFACT_CORPUS", "/work/shared/data/scifact/corpus.jsonl"))
CHUNKER = "token"
CHUNKER_OPTIONS = {"max_tokens": 64}


def make_document(doc_id: str, title: str, text: str) -> Document:
    return Document(
        id=doc_id,
        text=text,
        source=f"/bench/{doc_id}.txt",
        content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        title=title,
    )


def scifact_records() -> list[tuple[str, str, str]]:
    with open(CORPUS, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    return [(r["_id"], r.get("title", ""), r["text"]) for r in rows if r["text"].strip()]


def corpus_documents(n_chunks: int) -> Iterator[tuple[Document, int]]:
    """SciFact abstracts (copy k has ids ``k-<id>``) and their chunk counts, up to ``n_chunks``."""
    chunker = get_chunker(CHUNKER, **CHUNKER_OPTIONS)
    records = scifact_records()
    total, copy = 0, 0
    while total < n_chunks:
        for doc_id, title, text in records:
            doc = make_document(f"{copy}-{doc_id}", title, f"{title}\n\n{text}")
            n = len(chunker.chunk(doc))
            yield doc, n
            total += n
            if total >= n_chunks:
                return
        copy += 1


def config() -> IndexConfig:
    return IndexConfig(
        encoders=[EncoderEntry("bm25", kind="lexical")],
        store="memory",
        chunker=CHUNKER,
        chunker_options=dict(CHUNKER_OPTIONS),
    )


def build(root: Path, n_chunks: int) -> None:
    docs, chunks = [], 0
    for doc, n in corpus_documents(n_chunks):
        docs.append(doc)
        chunks += n
    start = time.perf_counter()
    report = Index(root, config()).ingest(docs)
    seconds = time.perf_counter() - start
    print(f"built {root}: {len(docs)} files, {report.chunks_added} chunks in {seconds:.1f} s")
    print(f"  (the chunker counted {chunks} chunks beforehand)")


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 3:
        print(__doc__)
        return 2
    root = Path(argv[0])
    n_chunks = int(argv[1]) if len(argv) > 1 else 100_000
    repeats = int(argv[2]) if len(argv) > 2 else 3
    print(f"rag imported from {rag.__file__}")
    if not (root / "index.json").exists():
        build(root, n_chunks)
    records = scifact_records()
    cold, warm = [], []
    for i in range(repeats):
        index = Index(root, config())  # what one `rag ingest FILE` run does: open, then ingest
        for times in (cold, warm):  # the second file goes into the index already open
            _, title, text = records[(time.time_ns() // 1000 + i) % len(records)]
            doc = make_document(f"new-{time.time_ns()}", title, f"{title}\n\n{text}")
            start = time.perf_counter()
            report = index.ingest([doc])
            times.append(time.perf_counter() - start)
            label = "freshly opened" if times is cold else "already open"
            print(
                f"ingest 1 new file ({report.chunks_added} chunks), index {label}: "
                f"{times[-1]:.3f} s"
            )
    print(
        f"median over {repeats}: freshly opened {statistics.median(cold):.3f} s, "
        f"already open {statistics.median(warm):.3f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
