"""``rag eval DATASET_DIR --encoder NAME [...]``: retrieval quality on a BEIR folder.

Prints nDCG@10, Recall@100 and MRR@10 per run (one run per encoder, named after it, and one per
``--fusion NAME``, named ``fusion:NAME``); ``--json PATH`` writes
``{"dataset", "split", "protocol", "runs": [{"name", "ndcg@10", "recall@100", "seconds", ...}]}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate retrieval on a BEIR-format data set",
        description="Evaluate encoders (and their fusions) on a BEIR folder: corpus.jsonl, "
        "queries.jsonl, qrels/SPLIT.tsv.",
    )
    p.add_argument("dataset", type=Path, metavar="DATASET_DIR", help="a BEIR-format folder")
    p.add_argument("--split", default="test", help="qrels split to evaluate (default: test)")
    p.add_argument(
        "--encoder",
        action="append",
        required=True,
        metavar="NAME",
        help="encoder to evaluate (repeat for several; e.g. bm25, minilm)",
    )
    p.add_argument(
        "--fusion",
        action="append",
        default=[],
        metavar="NAME",
        help="also fuse the encoders' rankings with this method (repeatable; e.g. rrf)",
    )
    p.add_argument(
        "--protocol",
        choices=["whole", "chunked"],
        default="whole",
        help="index whole documents, or chunks scored by their document's best chunk",
    )
    p.add_argument(
        "--chunk-tokens", type=int, default=64, help="max tokens per chunk (chunked protocol)"
    )
    p.add_argument("--batch-size", type=int, default=32, help="encoder batch size")
    p.add_argument("--limit-queries", type=int, default=None, metavar="N", help="first N queries")
    p.add_argument(
        "--ignore-identical-ids",
        action="store_true",
        help="drop a retrieved document whose id equals the query id (BEIR's ArguAna/Quora rule)",
    )
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="write results here")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def format_table(report: dict[str, Any]) -> str:
    """The runs as an aligned text table."""
    header = ("run", "nDCG@10", "Recall@100", "MRR@10", "seconds")
    rows = [
        (
            str(r["name"]),
            _fmt(r.get("ndcg@10")),
            _fmt(r.get("recall@100")),
            _fmt(r.get("mrr@10")),
            f"{r['seconds']:.1f}",
        )
        for r in report["runs"]
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *rows]
    ]
    title = (
        f"{report['dataset']} ({report['split']}, {report['num_queries']} queries, "
        f"{report['num_docs']} docs, protocol {report['protocol']}"
        + (f", {report['chunk_tokens']}-token chunks" if report["protocol"] == "chunked" else "")
        + ")"
    )
    return "\n".join([title, *lines])


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def run(args: argparse.Namespace) -> int:
    from rag.eval.beir import load_beir
    from rag.eval.runner import EvalConfig, evaluate_encoders

    config = EvalConfig(
        protocol=args.protocol,
        chunk_tokens=args.chunk_tokens,
        batch_size=args.batch_size,
        fusions=tuple(args.fusion),
        ignore_identical_ids=args.ignore_identical_ids,
        show_progress=not args.no_progress,
    )
    dataset = load_beir(args.dataset, args.split).limit_queries(args.limit_queries)
    report = evaluate_encoders(dataset, args.encoder, config)
    print(format_table(report))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
