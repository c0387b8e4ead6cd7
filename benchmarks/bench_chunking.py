"""Chunking throughput on the five Austen novels (../shared/data/books) and on SciFact abstracts.

Two tables. The first: seconds and chunks/s per chunker and size on the novels. The second: the
recursive chunker beside the "tiktoken floor" (encode each text once, slice the ids into
``max_tokens`` pieces, decode each slice) and chonkie's ``RecursiveChunker`` (when installed)
on the same tiktoken encoding: time as a multiple of the floor, chunks, mean tokens per chunk
and chunks over the limit (tiktoken on each chunk's text). Times are the best of ``--repeats``.

Usage: python benchmarks/bench_chunking.py [BOOKS_DIR] [--scifact CORPUS_JSONL] [--docs N]
       [--repeats R] [--max-bytes B]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from rag.chunking import get_chunker
from rag.tokens import DEFAULT_ENCODING, get_encoding
from rag.types import Document, Span, sha256_hex

CHAPTER = re.compile(r"^(?:CHAPTER|Chapter) [0-9IVXLC]+\.?$", re.MULTILINE)
SIZES = (64, 256)


def book(path: Path, max_bytes: int | None = None) -> Document:
    text = path.read_text(encoding="utf-8")
    if max_bytes:
        text = text[:max_bytes]
    title = text.strip().splitlines()[0].strip()
    heads = [(m.start(), m.group()) for m in CHAPTER.finditer(text)]
    spans = [Span(0, heads[0][0])] if heads else [Span(0, len(text))]
    bounds = [a for a, _ in heads[1:]] + [len(text)]
    spans += [Span(a, b, (title, h)) for (a, h), b in zip(heads, bounds, strict=True)]
    return Document(path.name, text, str(path), sha256_hex(text), title, spans)


def abstracts(path: Path, limit: int | None) -> list[Document]:
    docs = []
    for line in path.read_text(encoding="utf-8").splitlines()[:limit]:
        record = json.loads(line)
        text = record["text"]
        if text.strip():
            spans = [Span(0, len(text), (record["title"],))]
            docs.append(Document(record["_id"], text, "scifact", sha256_hex(text), None, spans))
    return docs


def best(fn: Callable[[], list[str]], repeats: int) -> tuple[float, list[str]]:
    times, out = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def floor(docs: list[Document], max_tokens: int) -> list[str]:
    enc = get_encoding(DEFAULT_ENCODING)
    out = []
    for d in docs:
        ids = enc.encode_ordinary(d.text)
        out += [enc.decode(ids[i : i + max_tokens]) for i in range(0, len(ids), max_tokens)]
    return out


def ours(docs: list[Document], max_tokens: int) -> list[str]:
    chunker = get_chunker("recursive", max_tokens=max_tokens, fill=True)  # the fuller packing
    return [c.text for c in chunker.chunk_many(docs)]


def chonkie_runner() -> Callable[[list[Document], int], list[str]] | None:
    try:
        from chonkie import RecursiveChunker
    except ImportError:
        return None
    enc = get_encoding(DEFAULT_ENCODING)

    def run(docs: list[Document], max_tokens: int) -> list[str]:
        chunker = RecursiveChunker(tokenizer=enc, chunk_size=max_tokens)
        return [c.text for d in docs for c in chunker.chunk(d.text)]

    return run


def throughput(docs: list[Document]) -> None:
    print("| chunker | max_tokens | chunks | seconds | chunks/s |\n|---|---|---|---|---|")
    for name in ("token", "sentence", "recursive"):
        for max_tokens in SIZES:
            chunker = get_chunker(name, max_tokens=max_tokens)
            start = time.perf_counter()
            n = len(chunker.chunk_many(docs))
            s = time.perf_counter() - start
            print(f"| {name} | {max_tokens} | {n} | {s:.2f} | {n / s:,.0f} |")


def against_floor(sets: dict[str, list[Document]], repeats: int) -> None:
    enc = get_encoding(DEFAULT_ENCODING)
    runners: dict[str, Callable[[list[Document], int], list[str]] | None] = {
        "floor": floor,
        "recursive": ours,
        "chonkie": chonkie_runner(),
    }
    print(
        "\n| input | max_tokens | chunker | seconds | x floor | chunks | mean tokens | over limit |"
        "\n|---|---|---|---|---|---|---|---|"
    )
    for label, docs in sets.items():
        for max_tokens in SIZES:
            floor_s = 0.0
            for name, run in runners.items():
                if run is None:
                    print(f"| {label} | {max_tokens} | {name} | not installed | | | | |")
                    continue
                seconds, texts = best(lambda run=run: run(docs, max_tokens), repeats)
                floor_s = floor_s or seconds
                counts = [len(t) for t in enc.encode_ordinary_batch(texts)]
                mean = sum(counts) / max(len(counts), 1)
                over = sum(n > max_tokens for n in counts)
                print(
                    f"| {label} | {max_tokens} | {name} | {seconds:.3f} | {seconds / floor_s:.2f} "
                    f"| {len(texts)} | {mean:.1f} | {over} |"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("books", nargs="?", default="../shared/data/books")
    parser.add_argument("--scifact", default="../shared/data/scifact/corpus.jsonl")
    parser.add_argument("--docs", type=int, default=None, help="first N SciFact abstracts")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-bytes", type=int, default=None, help="cut each novel to B chars")
    args = parser.parse_args()
    docs = [book(p, args.max_bytes) for p in sorted(Path(args.books).glob("*.txt"))]
    get_chunker("recursive").chunk(Document("w", "Warm up.", "w", "0", None, [Span(0, 8)]))
    print(f"{len(docs)} books, {sum(len(d.text) for d in docs) / 1e6:.1f} MB")
    throughput(docs)
    sets = {"novels": docs}
    scifact = Path(args.scifact)
    if scifact.is_file():
        sets[f"scifact ({args.docs or 'all'} abstracts)"] = abstracts(scifact, args.docs)
    against_floor(sets, args.repeats)


if __name__ == "__main__":
    main()
