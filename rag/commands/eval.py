"""``rag eval DATASET_DIR --encoder NAME [...]``: retrieval quality on a BEIR folder.

Prints nDCG@10, Recall@100 and MRR@10 per run (one run per encoder, named after it, and one per
``--fusion NAME``, named ``fusion:NAME``); ``--json PATH`` writes
``{"dataset", "split", "protocol", "runs": [{"name", "ndcg@10", "recall@100", "seconds", ...}]}``
and ``--plot PATH`` a PNG bar chart of nDCG@10 and Recall@100 per run (needs matplotlib).
With fusions, ``--peers`` adds LangChain's and LlamaIndex's fusion over the same encoders
(``peer:...`` runs), ``--optimize`` a fusion learned on ``--train-split`` (``fusion:optimized``),
and runs carry query latency (``p50_ms``, ``p95_ms``; fusion alone: ``fusion_p50_ms``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rag.commands import situated_mode


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
        help="also fuse the encoders' rankings (repeatable): 'default', a method (rrf, "
        "combsum-zscore, combmnz-minmax, mixture, relative_score, ...), METHOD@STATS with STATS "
        "background, calibration or corpus, or 'all' for every one of them",
    )
    p.add_argument(
        "--peers",
        action="store_true",
        help="also run LangChain's EnsembleRetriever and LlamaIndex's QueryFusionRetriever "
        "(reciprocal_rerank, relative_score, dist_based_score) over the same encoders",
    )
    p.add_argument(
        "--optimize",
        action="store_true",
        help="learn the fusion (method, normalisation, weights) on --train-split and report it "
        "on --split as fusion:optimized",
    )
    p.add_argument(
        "--train-split", default="train", help="qrels split --optimize learns on (default: train)"
    )
    p.add_argument(
        "--latency-queries",
        type=int,
        default=100,
        metavar="N",
        help="with fusions: time this many single queries per run (p50/p95 ms; 0: none)",
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
    p.add_argument(
        "--chunking",
        choices=["packed", "sentence", "record"],
        default="packed",
        help="chunked protocol: sentences packed up to --chunk-tokens (default), one sentence "
        "per chunk, or each corpus record as one chunk",
    )
    p.add_argument(
        "--situated",
        action="append",
        default=[],
        metavar="MODE",
        type=situated_mode,
        help="embed chunks in their context with this situated encoder (repeatable: plain, "
        "prefix, sitemb, late, contextual, trained or trained:ADAPTER; chunked protocol); runs "
        "are named ENCODER+MODE",
    )
    p.add_argument(
        "--residual",
        type=float,
        nargs="?",
        const=0.5,
        default=None,
        metavar="ALPHA",
        help="also score each situated mode as sim(q, s) + ALPHA * sim(q, c) (default 0.5)",
    )
    p.add_argument("--batch-size", type=int, default=32, help="encoder batch size")
    p.add_argument("--limit-queries", type=int, default=None, metavar="N", help="first N queries")
    p.add_argument(
        "--ignore-identical-ids",
        action="store_true",
        help="drop a retrieved document whose id equals the query id (BEIR's ArguAna/Quora rule)",
    )
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="write results here")
    p.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="PATH",
        help="also draw nDCG@10 and Recall@100 per run as a PNG here (needs matplotlib)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def format_table(report: dict[str, Any]) -> str:
    """The runs as an aligned text table (with latency columns when a run was timed)."""
    timed = any("p50_ms" in r or "fusion_p50_ms" in r for r in report["runs"])
    header: tuple[str, ...] = ("run", "nDCG@10", "Recall@100", "MRR@10", "seconds")
    if timed:
        header += ("p50 ms", "p95 ms", "fusion p50 ms")
    rows = []
    for r in report["runs"]:
        row: tuple[str, ...] = (
            str(r["name"]),
            _fmt(r.get("ndcg@10")),
            _fmt(r.get("recall@100")),
            _fmt(r.get("mrr@10")),
            f"{r['seconds']:.1f}",
        )
        if timed:
            row += tuple(_ms(r.get(key)) for key in ("p50_ms", "p95_ms", "fusion_p50_ms"))
        rows.append(row)
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


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def fusion_names(requested: list[str]) -> tuple[str, ...]:
    """``--fusion`` values in order, ``all`` expanded to every benchmarked fusion."""
    from rag.eval.fusion_bench import ALL_FUSIONS

    names: list[str] = []
    for name in requested:
        names.extend(ALL_FUSIONS if name == "all" else [name])
    return tuple(dict.fromkeys(names))


def _train_split(args: argparse.Namespace) -> Any:
    """The train split for --optimize, or a clear error when the data set has none."""
    from rag.eval.beir import available_splits, load_beir

    splits = available_splits(args.dataset)
    if args.train_split not in splits:
        raise SystemExit(
            f"rag eval: --optimize needs a train split, but {args.dataset} has no "
            f"qrels/{args.train_split}.tsv (its splits: {', '.join(splits) or 'none'}); "
            "pass --train-split NAME, or run without --optimize"
        )
    if args.train_split == args.split:
        raise SystemExit(
            "rag eval: --train-split must differ from --split (learn on one, report on the other)"
        )
    return load_beir(args.dataset, args.train_split)


def run(args: argparse.Namespace) -> int:
    from rag.eval.beir import load_beir
    from rag.eval.runner import EvalConfig, evaluate_encoders

    fusions = fusion_names(args.fusion)
    # Fusions (with peers, learning, latency and the stores' statistics) run in the fusion
    # benchmark; with situated encoders the runner fuses the systems' document runs itself.
    bench = bool(fusions or args.peers or args.optimize) and not args.situated
    train = _train_split(args) if args.optimize else None
    config = EvalConfig(
        protocol=args.protocol,
        chunk_tokens=args.chunk_tokens,
        batch_size=args.batch_size,
        fusions=() if bench else fusions,
        ignore_identical_ids=args.ignore_identical_ids,
        show_progress=not args.no_progress,
        chunking=args.chunking,
        situated=tuple(args.situated),
        residual=args.residual,
    )
    dataset = load_beir(args.dataset, args.split).limit_queries(args.limit_queries)
    if bench:
        from rag.eval.fusion_bench import FusionBenchConfig, evaluate_fusion

        report = evaluate_fusion(
            dataset,
            args.encoder,
            config,
            FusionBenchConfig(
                fusions=fusions,
                peers=args.peers,
                train=train,
                latency_queries=max(0, args.latency_queries),
            ),
        )
    else:
        report = evaluate_encoders(dataset, args.encoder, config)
    print(format_table(report))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot is not None:
        from rag.eval.plot import plot_eval

        print(f"wrote {plot_eval(report, args.plot)}", file=sys.stderr)
    return 0
