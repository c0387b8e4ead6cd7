"""``rag search "query" --index DIR -k 5``: ranked chunks with source, page/section, score."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search an index")
    p.add_argument("query")
    p.add_argument("--index", type=Path, default=Path(".rag_index"))
    p.add_argument("-k", type=int, default=5)
    p.add_argument(
        "--encoder",
        default=None,
        help="use one of the index's encoders (default: all of them, fused)",
    )
    p.add_argument("--fusion", default="default", help="fusion method when several encoders")
    p.add_argument("--json", action="store_true", help="print hits as JSON lines")
    p.set_defaults(func=run)


def location(hit_chunk) -> str:  # type: ignore[no-untyped-def]
    parts = []
    if hit_chunk.page is not None:
        parts.append(f"p. {hit_chunk.page}")
    if hit_chunk.section:
        parts.append(" > ".join(hit_chunk.section))
    return ", ".join(parts)


def run(args: argparse.Namespace) -> int:
    from rag.index import Index

    index = Index(args.index)
    if args.encoder is None and len(index.config.encoders) > 1:
        retriever = index.fused_retriever(args.fusion)
    else:
        retriever = index.retriever(args.encoder)
    hits = retriever.retrieve(args.query, k=args.k)
    if args.json:
        for h in hits:
            row = {
                "rank": h.rank,
                "score": h.score,
                "source": h.chunk.source,
                "page": h.chunk.page,
                "section": list(h.chunk.section),
                "start": h.chunk.start,
                "end": h.chunk.end,
                "text": h.chunk.text,
                "components": {
                    n: {"score": c.score, "rank": c.rank} for n, c in h.components.items()
                },
            }
            print(json.dumps(row, ensure_ascii=False))
        return 0
    if not hits:
        print("no results")
    for h in hits:
        where = location(h.chunk)
        print(f"{h.rank}. [{h.score:.3f}] {h.chunk.source}" + (f" ({where})" if where else ""))
        if h.components:
            parts = ", ".join(f"{n} #{c.rank} {c.score:.3f}" for n, c in h.components.items())
            print(f"   from: {parts}")
        body = " ".join(h.chunk.text.split())
        print(textwrap.indent(textwrap.shorten(body, 300, placeholder=" ..."), "   "))
    return 0
