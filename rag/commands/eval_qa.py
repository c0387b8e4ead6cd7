"""``rag eval-qa DATASET_DIR``: answer quality of every strategy on a short-answer QA set.

The folder is in the BEIR layout plus ``answers.jsonl`` (``{"_id", "answer"}``), e.g. HotpotQA
dev-100. Prints accuracy (normalised answer containment), token F1, AUROC of the confidence at
separating correct from wrong answers, and seconds per question, for the runs ``vanilla-llm``,
``vanilla-rag:ENCODER``, ``mixture``, ``confident:METRIC`` and ``confident-fast:METRIC``.
``--json OUT`` writes ``{"runs": [{"name", "accuracy", "f1", "auroc", "seconds_per_question",
...}], "records": [per question, per run: text, correct, f1, scores, ...]}``; ``--plot PATH`` a
PNG of accuracy and confidence per strategy (needs matplotlib).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag.commands import choice, fusion_name
from rag.commands.ask import add_generator_args, generator_from_args, template_from_args
from rag.names import FUSION_METHODS, METRICS, listed

DEFAULT_ENCODERS = ["minilm", "bm25", "wordllama"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval-qa",
        help="evaluate answer quality (vanilla LLM/RAG, mixture, Confident RAG) on a QA set",
        description="Answer every question of a BEIR folder with answers.jsonl with every "
        "strategy and score the answers.",
    )
    p.add_argument(
        "dataset", type=Path, metavar="DATASET_DIR", help="a BEIR-format folder with answers.jsonl"
    )
    p.add_argument("--split", default="test", help="qrels split to answer (default: test)")
    p.add_argument(
        "--encoder",
        action="append",
        default=None,
        metavar="NAME",
        help=f"encoders (repeatable; default: {' '.join(DEFAULT_ENCODERS)})",
    )
    p.add_argument(
        "--metric",
        action="append",
        default=None,
        metavar="NAME",
        type=choice("confidence metric", METRICS),
        help=f"{listed(METRICS)}: metrics for Confident RAG (repeatable; default: all)",
    )
    p.add_argument("-k", type=int, default=3, help="sources per answer")
    p.add_argument("--prefix-tokens", type=int, default=8, help="tokens scored in fast mode")
    p.add_argument("--no-fast", action="store_true", help="skip the fast mode's runs")
    p.add_argument(
        "--fusion",
        default="mixture",
        type=fusion_name,
        metavar="NAME",
        help=f"fusion of the mixture run: {listed(FUSION_METHODS)} (default: mixture)",
    )
    p.add_argument("--limit", type=int, default=None, metavar="N", help="first N questions")
    p.add_argument("--no-cache", action="store_true", help="do not cache corpus embeddings")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="write results here")
    p.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="PATH",
        help="also draw accuracy and confidence per strategy as a PNG here (needs matplotlib)",
    )
    p.add_argument("--no-progress", action="store_true", help="no per-question progress lines")
    add_generator_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rag.confidence import METRICS, get_metric
    from rag.eval.qa_benchmark import (
        QAConfig,
        build_retrievers,
        load_qa_dataset,
        print_table,
        run_benchmark,
    )

    metrics = args.metric or list(METRICS)
    for m in metrics:
        get_metric(m)
    encoders = args.encoder or DEFAULT_ENCODERS
    dataset = load_qa_dataset(args.dataset, args.split).limit(args.limit)
    config = QAConfig(
        encoders=list(encoders),
        metrics=list(metrics),
        k=args.k,
        max_new_tokens=args.max_new_tokens,
        prefix_tokens=args.prefix_tokens,
        fusion=args.fusion,
        fast=not args.no_fast,
        template=template_from_args(args),
    )
    progress = None if args.no_progress else (lambda line: print(line, file=sys.stderr))
    if progress:
        progress(f"indexing {len(dataset.chunks)} passages with {', '.join(encoders)}")
    retrievers = build_retrievers(
        dataset.chunks, encoders, cache=not args.no_cache, label=f"{dataset.name}/qa"
    )
    generator = generator_from_args(args)
    result = run_benchmark(dataset, generator, retrievers, config, progress=progress)
    print_table(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", "utf-8")
    if args.plot:
        from rag.eval.plot import plot_qa

        print(f"wrote {plot_qa(result, args.plot)}", file=sys.stderr)
    return 0
