"""``rag ask "question" --index DIR --strategy confident --metric self_certainty``.

Prints the answer (streamed as it is generated where the strategy allows), its citations, every
candidate's confidence and which encoder won. The model is loaded once per process and shared
by every generator built for it, so ``answer_many`` and repeated calls reuse it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rag.commands import choice
from rag.names import METRICS, STRATEGIES, listed

GENERATOR_CHOICES = ("transformers", "llamacpp", "openai", "echo")
# Room for an ordinary answer of a few sentences or a short list (32 cut answers mid-sentence).
DEFAULT_MAX_NEW_TOKENS = 256


def add_generator_args(p: argparse.ArgumentParser) -> None:
    """Options that choose and configure the LLM (shared with ``rag eval-qa``)."""
    g = p.add_argument_group("LLM")
    g.add_argument(
        "--generator",
        choices=GENERATOR_CHOICES,
        default="transformers",
        help=f"{listed(GENERATOR_CHOICES)}: the LLM backend (default: transformers, with "
        "SmolLM2-135M-Instruct offline)",
    )
    g.add_argument(
        "--model",
        default=None,
        help="model folder, hub name, .gguf file (llamacpp) or served model name (openai)",
    )
    g.add_argument("--gguf-file", default=None, help="a .gguf file inside --model (transformers)")
    g.add_argument("--base-url", default=None, help="OpenAI-compatible server, e.g. .../v1")
    g.add_argument(
        "--style",
        choices=["chat", "completion"],
        default="chat",
        help="chat | completion: chat messages, or a plain completion prompt for base models",
    )
    g.add_argument(
        "--max-new-tokens",
        type=int,
        default=DEFAULT_MAX_NEW_TOKENS,
        metavar="N",
        help="stop each answer after N new tokens (default: %(default)s)",
    )
    g.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )


def generator_from_args(args: argparse.Namespace) -> Any:
    from rag.generation import get_generator

    chat = None if args.style == "chat" else False
    if args.threads is not None and args.generator == "transformers":
        import torch

        torch.set_num_threads(args.threads)
    if args.generator == "transformers":
        return get_generator(
            "transformers", model_path=args.model, gguf_file=args.gguf_file, chat_template=chat
        )
    if args.generator == "llamacpp":
        return get_generator(
            "llamacpp", model_path=args.model, n_threads=args.threads, chat_template=chat
        )
    if args.generator == "openai":
        if not args.base_url or not args.model:
            raise ValueError("--generator openai needs --base-url and --model")
        return get_generator("openai", base_url=args.base_url, model=args.model)
    return get_generator("echo")


def template_from_args(args: argparse.Namespace) -> Any:
    from rag.answering.prompts import get_template

    return get_template(args.style)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ask",
        help="answer a question from an index with an LLM",
        description="Answer from the index's chunks. Strategies: llm (no retrieval), vanilla "
        "(one encoder), mixture (fused hits of every encoder), confident (one answer per "
        "encoder, the most confident kept; arXiv 2507.17442).",
    )
    p.add_argument("question", help="the question, quoted")
    p.add_argument("--index", type=Path, default=Path(".rag_index"), help="index folder")
    p.add_argument(
        "--strategy",
        type=choice("strategy", STRATEGIES),
        default="confident",
        metavar="NAME",
        help=f"{listed(STRATEGIES)} (default: %(default)s; see the description above)",
    )
    p.add_argument(
        "--encoder",
        action="append",
        default=None,
        metavar="NAME",
        help="encoder(s) of the index to use (repeatable; default: all of the index's)",
    )
    p.add_argument(
        "--metric",
        type=choice("confidence metric", METRICS),
        default="self_certainty",
        metavar="NAME",
        help=f"{listed(METRICS)}: the confidence that picks the answer (default: %(default)s)",
    )
    p.add_argument("-k", type=int, default=4, help="sources per answer")
    p.add_argument(
        "--fast",
        action="store_true",
        help="confident: score candidates on their first tokens, finish only the best",
    )
    p.add_argument("--prefix-tokens", type=int, default=8, help="tokens scored in --fast mode")
    p.add_argument(
        "--abstain-below",
        type=float,
        default=None,
        metavar="SCORE",
        help="answer 'not enough evidence in the sources' below this confidence",
    )
    p.add_argument("--no-stream", action="store_true", help="print the answer when complete")
    p.add_argument("--json", action="store_true", help="print the Answer as JSON")
    add_generator_args(p)
    p.set_defaults(func=run)


def build_strategy(args: argparse.Namespace, index: Any, generator: Any) -> Any:
    from rag.answering.registry import make_strategy

    retrievers = []
    if args.strategy != "llm":
        names = args.encoder or [e.name for e in index.config.encoders]
        if args.strategy == "vanilla":
            names = names[:1]
        retrievers = [index.retriever(n) for n in names]
    options: dict[str, Any] = {
        "k": args.k,
        "metric": args.metric,
        "threshold": args.abstain_below,
        "max_new_tokens": args.max_new_tokens,
        "template": template_from_args(args),
    }
    if args.strategy == "confident":
        options.update(mode="fast" if args.fast else "full", prefix_tokens=args.prefix_tokens)
    return make_strategy(args.strategy, generator, retrievers, **options)


def format_report(answer: Any) -> str:
    """Citations, each candidate's confidence and the winner, as printed after the answer."""
    lines = []
    if answer.abstained:
        lines.append(f"(abstained; best draft: {answer.draft!r})")
    if answer.citations:
        lines.append("Sources:")
        for c in answer.citations:
            mark = "*" if c.cited else " "
            lines.append(f" {mark}[{c.n}] {c.location()}")
    if answer.metric and (len(answer.candidates) > 1 or answer.confidence is not None):
        lines.append(f"Candidates ({answer.metric}):")
        for i, cand in enumerate(answer.candidates):
            score = cand.confidence.get(answer.metric)
            shown = "n/a" if score is None else f"{score:.4f}"
            won = "  <- chosen" if i == answer.chosen else ""
            partial = "" if cand.complete else " (prefix)"
            lines.append(f"  {cand.name:<16} {shown:>10}  {cand.text!r}{partial}{won}")
    lines.append(f"winner: {answer.winner}   ({answer.seconds:.1f}s)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from rag.index import Index

    index = Index(args.index)
    if args.strategy != "llm" and not index.exists:
        raise FileNotFoundError(f"no index at {args.index} (run `rag ingest PATH --index ...`)")
    strategy = build_strategy(args, index, generator_from_args(args))
    if args.json:
        print(json.dumps(strategy.answer(args.question).to_dict(), ensure_ascii=False, indent=2))
        return 0
    if args.no_stream:
        answer = strategy.answer(args.question)
        print(answer.text)
    else:
        stream = strategy.stream(args.question)
        for piece in stream:
            sys.stdout.write(piece)
            sys.stdout.flush()
        print()
        answer = stream.answer
    note = limit_note(answer, args.max_new_tokens)
    if note:
        print(note)
    print(format_report(answer))
    return 0


def limit_note(answer: Any, limit: int) -> str | None:
    """Say so when the chosen answer stopped at the token limit rather than where it ended."""
    if answer.abstained or answer.chosen is None or not answer.candidates:
        return None
    generation = answer.candidates[answer.chosen].generation
    if generation.finish_reason == "repeat":
        return "(stopped where the answer began repeating itself)"
    # fast mode keeps the scored prefix here (cut at its own, smaller limit): not the answer's
    if generation.finish_reason != "length" or 0 < generation.completion_tokens < limit:
        return None
    return f"(stopped at the {limit}-token limit; pass --max-new-tokens N for more)"
