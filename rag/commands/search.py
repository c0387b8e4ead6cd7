"""``rag search "query" --index DIR -k 5``: ranked chunks with source, page/section, score."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

from rag.commands import fusion_name
from rag.names import FUSION_METHODS, FUSION_STATS, listed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search an index")
    p.add_argument("query", help="what to search for, quoted")
    p.add_argument("--index", type=Path, default=Path(".rag_index"))
    p.add_argument("-k", type=int, default=5)
    p.add_argument(
        "--encoder",
        default=None,
        help="use one of the index's encoders (default: all of them, fused)",
    )
    p.add_argument(
        "--fusion",
        default="default",
        type=fusion_name,
        metavar="NAME",
        help=f"how several encoders' hits are fused: default, {listed(FUSION_METHODS)}, or "
        f"METHOD@STATS with STATS {listed(FUSION_STATS)}",
    )
    p.add_argument("--json", action="store_true", help="print hits as JSON lines")
    p.add_argument(
        "--min-score",
        type=relevance_cut,
        default=None,
        metavar="R",
        help="drop hits whose relevance (in [0, 1], the same scale for every query) is below R",
    )
    add_filter_args(p)
    p.set_defaults(func=run)


def where_item(text: str) -> str:
    """An argparse type: one ``KEY=VALUE`` filter, checked now so a typo fails before loading."""
    from rag.retrieval.filters import FilterError, Where

    try:
        Where.parse([text])
    except FilterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def relevance_cut(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"--min-score is a relevance in [0, 1], got {text!r}")
    return value


def relevance_text(hit) -> str:  # type: ignore[no-untyped-def]
    return "" if hit.relevance is None else f" relevance {hit.relevance:.2f}"


def mmr_lambda(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"the MMR lambda is a number in [0, 1], got {text!r}")
    return value


def add_filter_args(p: argparse.ArgumentParser) -> None:
    """``--where`` (repeatable, AND), ``--no-dedup`` and ``--mmr`` (shared with the server)."""
    p.add_argument(
        "--where",
        action="append",
        default=[],
        type=where_item,
        metavar="KEY=VALUE",
        help="keep only matching chunks; KEY: source (a glob, e.g. '*.pdf' or 'docs/*'), "
        "type (html, pdf, text, markdown, docx; a,b for either), page (N or N-M), "
        "section (a heading prefix); repeat to combine (AND)",
    )
    p.add_argument(
        "--no-dedup",
        dest="dedup",
        action="store_false",
        help="list every copy of a passage (default: copies fold into one hit, 'also in')",
    )
    p.add_argument(
        "--mmr",
        type=mmr_lambda,
        default=None,
        metavar="LAMBDA",
        help="re-rank for diversity by MMR: LAMBDA in [0, 1], 1 = relevance only (e.g. 0.5)",
    )
    p.add_argument(
        "--rerank",
        default=None,
        metavar="MODEL_FOLDER",
        help="rerank the candidates with this sentence-transformers CrossEncoder folder",
    )
    p.add_argument(
        "--rerank-candidates",
        type=int,
        default=30,
        help="candidates the cross-encoder reads (default: %(default)s)",
    )


def duplicate_rows(hit) -> list[dict]:  # type: ignore[no-untyped-def]
    return [
        {"source": c.source, "page": c.page, "section": list(c.section)} for c in hit.duplicates
    ]


def also_in(hit) -> str:  # type: ignore[no-untyped-def]
    """``also in: a.pdf (p. 3), a.txt``: where the collapsed copies of a hit are."""
    places = []
    for c in hit.duplicates:
        page = f" (p. {c.page})" if c.page is not None else ""
        places.append(f"{c.source}{page}")
    return "also in: " + ", ".join(dict.fromkeys(places))


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
    diversity = {"dedup": args.dedup, "mmr": args.mmr}
    if args.encoder is None and len(index.config.encoders) > 1:
        retriever = index.fused_retriever(args.fusion, **diversity)
    else:
        retriever = index.retriever(args.encoder, **diversity)
    if args.rerank is not None:
        from rag.retrieval.rerank import CrossEncoderReranker, RerankingRetriever

        reranker = CrossEncoderReranker(args.rerank)
        retriever = RerankingRetriever(retriever, reranker, candidates=args.rerank_candidates)
    hits = retriever.retrieve(args.query, k=args.k, where=args.where or None)
    if args.min_score is not None:
        from rag.retrieval.relevance import above

        hits = above(hits, args.min_score)
    if args.json:
        for h in hits:
            row = {
                "rank": h.rank,
                "score": h.score,
                "relevance": h.relevance,
                "source": h.chunk.source,
                "page": h.chunk.page,
                "section": list(h.chunk.section),
                "start": h.chunk.start,
                "end": h.chunk.end,
                "text": h.chunk.text,
                "components": {
                    n: {"score": c.score, "rank": c.rank} for n, c in h.components.items()
                },
                "duplicates": duplicate_rows(h),
            }
            print(json.dumps(row, ensure_ascii=False))
        return 0
    if not hits:
        print("no results")
    for h in hits:
        where = location(h.chunk)
        head = f"{h.rank}. [{h.score:.3f}{relevance_text(h)}] {h.chunk.source}"
        print(head + (f" ({where})" if where else ""))
        if h.components:
            parts = ", ".join(f"{n} #{c.rank} {c.score:.3f}" for n, c in h.components.items())
            print(f"   from: {parts}")
        if h.duplicates:
            print(f"   {also_in(h)}")
        body = " ".join(h.chunk.text.split())
        print(textwrap.indent(textwrap.shorten(body, 300, placeholder=" ..."), "   "))
    return 0
