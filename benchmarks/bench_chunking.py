"""Chunking throughput on the five Austen novels (../shared/data/books): prints seconds and
chunks/s per chunker and size. Usage: python benchmarks/bench_chunking.py [BOOKS_DIR]"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from rag.chunking import get_chunker
from rag.types import Document, Span, sha256_hex

CHAPTER = re.compile(r"^(?:CHAPTER|Chapter) [0-9IVXLC]+\.?$", re.MULTILINE)


def book(path: Path) -> Document:
    text = path.read_text(encoding="utf-8")
    title = text.strip().splitlines()[0].strip()
    heads = [(m.start(), m.group()) for m in CHAPTER.finditer(text)]
    spans = [Span(0, heads[0][0])] if heads else [Span(0, len(text))]
    bounds = [a for a, _ in heads[1:]] + [len(text)]
    spans += [Span(a, b, (title, h)) for (a, h), b in zip(heads, bounds, strict=True)]
    return Document(path.name, text, str(path), sha256_hex(text), title, spans)


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/books")
    docs = [book(p) for p in sorted(folder.glob("*.txt"))]
    get_chunker("recursive").chunk(Document("w", "Warm up.", "w", "0", None, [Span(0, 8)]))
    print(f"{len(docs)} books, {sum(len(d.text) for d in docs) / 1e6:.1f} MB")
    print("| chunker | max_tokens | chunks | seconds | chunks/s |\n|---|---|---|---|---|")
    for name in ("token", "sentence", "recursive"):
        for max_tokens in (64, 256):
            chunker = get_chunker(name, max_tokens=max_tokens)
            start = time.perf_counter()
            n = len(chunker.chunk_many(docs))
            s = time.perf_counter() - start
            print(f"| {name} | {max_tokens} | {n} | {s:.2f} | {n / s:,.0f} |")


if __name__ == "__main__":
    main()
