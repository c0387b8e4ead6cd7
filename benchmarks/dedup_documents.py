"""How many of a search's top 5 are copies of one passage, before and after de-duplication.

The documents folder (../shared/data/documents) holds the Debian reference manual three times
(HTML chapters, the PDF, the plain-text export) beside unrelated test files. For each of ten
queries this prints, among the top ``k`` of ``Index.search``: the hits that repeat a passage
already shown (``copies``: ``k`` minus the number of distinct passages), first with
``dedup=False`` and then with the default de-duplication, and how many copies the latter
listed under its hits. Two hits are copies when their shingle resemblance
(:func:`rag.retrieval.diversity.resemblance`) reaches the threshold; the Jaccard column counts
pairs whose 3-shingle Jaccard alone is >= 0.5, a looser independent check.

Usage: python benchmarks/dedup_documents.py [--docs DIR] [--index DIR] [--encoders minilm,bm25]
       [-k 5]   (the first run ingests DIR into --index, about 3 minutes with MiniLM)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from rag.index import EncoderEntry, Index, IndexConfig
from rag.retrieval.diversity import THRESHOLD, jaccard, resemblance, shingles
from rag.types import Hit

QUERIES = (
    "how do I add a new user account",
    "difference between apt-get update and apt-get upgrade",
    "configure a network interface with ifupdown",
    "what is the root user and how to become root",
    "file permissions and chmod",
    "search for a package with aptitude",
    "Debian archive areas main contrib non-free",
    "reconfigure a package with dpkg-reconfigure",
    "the filesystem hierarchy and /etc configuration files",
    "set up the hostname and DNS resolver",
)


def copies(hits: Sequence[Hit], threshold: float = THRESHOLD) -> tuple[int, int]:
    """(hits repeating an earlier passage by resemblance, pairs with Jaccard >= 0.5)."""
    sets = [shingles(h.chunk.text) for h in hits]
    repeated = sum(
        any(resemblance(sets[i], sets[j]) >= threshold for j in range(i)) for i in range(len(sets))
    )
    loose = sum(jaccard(sets[i], sets[j]) >= 0.5 for i in range(len(sets)) for j in range(i))
    return repeated, loose


def open_index(docs: Path, folder: Path, encoders: list[str]) -> Index:
    if (folder / "index.json").exists():
        return Index(folder)
    from connectors.directory import load_directory

    entries = [EncoderEntry(n, kind="lexical" if n == "bm25" else "dense") for n in encoders]
    index = Index(folder, IndexConfig(encoders=entries, store="memory"))
    start = time.perf_counter()
    report = index.ingest(load_directory(docs))
    print(
        f"ingested {len(report.ingested)} files ({len(report.failed)} failed) "
        f"in {time.perf_counter() - start:.0f}s"
    )
    return index


def print_distribution(index: Index, depth: int = 20) -> None:
    """How pairs of hits in each query's top ``depth`` resemble each other (after the table)."""
    bins = [0] * 11
    for query in QUERIES:
        sets = [shingles(h.chunk.text) for h in index.search(query, depth, dedup=False)]
        for i in range(len(sets)):
            for j in range(i):
                bins[int(resemblance(sets[i], sets[j]) * 10 + 1e-9)] += 1
    shown = ", ".join(f"{b / 10:.1f}: {n}" for b, n in enumerate(bins))
    print(f"pairs in the top {depth} by resemblance (bin floor: count): {shown}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=Path, default=Path("../shared/data/documents"))
    p.add_argument("--index", type=Path, default=None, help="reused when it exists")
    p.add_argument("--encoders", default="minilm,bm25")
    p.add_argument("-k", type=int, default=5)
    args = p.parse_args()
    folder = args.index or Path(tempfile.mkdtemp(prefix="dedup-bench-"))
    index = open_index(args.docs, folder, args.encoders.split(","))
    print(f"index {folder}: {index.docstore.chunk_count()} chunks, encoders {args.encoders}")
    print(f"{'query':<55} {'copies before':>13} {'after':>5} {'listed':>6} {'jacc>=.5':>8}")
    totals = [0, 0, 0, 0]
    for query in QUERIES:
        before = index.search(query, args.k, dedup=False)
        after = index.search(query, args.k)
        (b, loose), (a, _) = copies(before), copies(after)
        listed = sum(len(h.duplicates) for h in after)
        for i, value in enumerate((b, a, listed, loose)):
            totals[i] += value
        print(f"{query[:55]:<55} {b:>13} {a:>5} {listed:>6} {loose:>8}")
        for h in after:
            if h.duplicates:
                others = ", ".join(Path(c.source).name for c in h.duplicates)
                print(f"    {Path(h.chunk.source).name} also in: {others}")
    print_distribution(index)
    n = len(QUERIES) * args.k
    print(
        f"{'total (of ' + str(n) + ' hits)':<55} {totals[0]:>13} {totals[1]:>5} "
        f"{totals[2]:>6} {totals[3]:>8}"
    )


if __name__ == "__main__":
    main()
