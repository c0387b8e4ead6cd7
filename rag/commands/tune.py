"""``rag tune --index DIR``: adapt the situated encoder to the index's corpus, then re-embed."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rag.commands import existing_index

if TYPE_CHECKING:
    from rag.index import Index


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="train a situated adapter on the index's own chunks (self-supervised) and re-embed",
    )
    p.add_argument("--index", type=Path, default=Path(".rag_index"))
    p.add_argument("--encoder", help="the dense encoder to tune (default: the index's first)")
    p.add_argument("--steps", type=int, default=60, help="training steps (default 60)")
    p.add_argument("--batch-size", type=int, default=24, help="windows per step (default 24)")
    p.add_argument("--max-seconds", type=float, help="stop training after this many seconds")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--restart", action="store_true", help="discard an earlier run's checkpoint and adapter"
    )
    p.add_argument(
        "--from-scratch",
        action="store_true",
        help="train a new adapter from zero (default: start from the one shipped for the encoder)",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rag.index.tune import dense_entry_name

    index = existing_index(args.index)
    with index.writing():  # the checkpoint removed below is the one a running tune writes
        return _run(args, index, dense_entry_name(index, args.encoder))


def _run(args: argparse.Namespace, index: Index, name: str) -> int:
    from rag.encoders.lora import LoraSettings
    from rag.index.tune import TUNED, tune_index
    from rag.tuning.trainer import TrainSettings

    if args.restart:
        shutil.rmtree(index.root / TUNED / f"{name}.ckpt", ignore_errors=True)
    settings = TrainSettings(
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        max_seconds=args.max_seconds,
        lora=LoraSettings(),
    )
    progress, close = (None, lambda: None)
    if not args.no_progress:
        from rag.tuning.situated import tqdm_progress

        progress, close = tqdm_progress(f"tuning {name}")
    try:
        report = tune_index(
            index,
            settings,
            encoder=name,
            progress=progress,
            show_progress=not args.no_progress,
            start=None if args.from_scratch else "shipped",
        )
    finally:
        close()
    print(report.summary())
    if not report.finished:
        print(
            "training stopped before its last step; run `rag tune` again to resume", file=sys.stderr
        )
    return 0
