"""Train the situated adapter shipped with the package (or one for the cross-corpus table).

    python benchmarks/train_situated.py ../shared/data/scifact:packed \
        ../shared/data/climate_fever:record ../shared/data/hotpotqa_dev100:sentence \
        --out rag/encoders/situated/adapters/minilm.npz --log benchmarks/results/train_minilm.json

Each data set is ``FOLDER[:CHUNKING]`` (the chunking of the chunked-document protocol for that
set: packed, sentence or record; 64-token chunks). Training reads the corpus texts
(self-supervised inverse-cloze examples) and, where a folder has ``qrels/train.tsv``, its judged
train queries. Test splits are never read. Prints the loss every 25 steps and writes the loss
curve with the adapter's record to ``--log``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from rag.encoders.lora import LoraSettings
from rag.encoders.registry import load_encoder
from rag.eval.beir import available_splits, load_beir
from rag.eval.units import chunked_units, make_chunker
from rag.tuning.situated import make_examples, tqdm_progress, tune_situated
from rag.tuning.trainer import TrainSettings


def is_dev_query(qid: str, fraction: float) -> bool:
    """Whether a judged train query is held out of training, to choose settings on (a stable
    hash of its id, so training and evaluation agree without a file between them)."""
    return int(hashlib.sha256(qid.encode()).hexdigest()[:8], 16) % 1000 < fraction * 1000


def examples_of(spec: str, base: object, args: argparse.Namespace) -> list:
    folder, _, chunking = spec.partition(":")
    use_train = not args.no_train_queries
    split = "train" if use_train and "train" in available_splits(folder) else None
    dataset = load_beir(folder, split or available_splits(folder)[0])
    units = chunked_units(dataset, make_chunker(args.chunk_tokens, chunking=chunking or "packed"))
    qrels = {q: r for q, r in dataset.qrels.items() if not is_dev_query(q, args.dev_fraction)}
    judged = {"queries": dataset.queries, "qrels": qrels} if split == "train" else {}
    examples = make_examples(
        base, units.chunks, seed=args.seed, window_tokens=args.window_tokens, **judged
    )  # type: ignore[arg-type]
    print(
        f"{Path(folder).name}: {len(units.chunks)} chunks, {len(examples)} examples"
        + (f" ({len(qrels)} judged train queries)" if judged else " (corpus text only)"),
        file=sys.stderr,
    )
    return examples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="+", help="FOLDER[:CHUNKING]")
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--out", required=True, help="the adapter file (.npz)")
    parser.add_argument("--log", help="write the training record and loss curve here (JSON)")
    parser.add_argument("--checkpoint", help="a folder to checkpoint to and resume from")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--first-layer", type=int, default=4, help="adapt blocks from this one")
    parser.add_argument("--window-tokens", type=int, default=256)
    parser.add_argument(
        "--encode-window",
        type=int,
        help="record this window length in the adapter, so the trained mode reads windows of it",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float)
    parser.add_argument("--chunk-tokens", type=int, default=64)
    parser.add_argument("--no-train-queries", action="store_true", help="corpus text only")
    parser.add_argument(
        "--dev-fraction",
        type=float,
        default=0.0,
        help="hold this share of the judged train queries out of training (see is_dev_query)",
    )
    parser.add_argument(
        "--context-weight",
        type=float,
        default=0.0,
        help="pool each chunk as l2(s + W * window), as the trained mode will encode it",
    )
    parser.add_argument("--init", help="start from this adapter file (.npz) instead of zero")
    args = parser.parse_args(argv)

    import torch

    torch.manual_seed(args.seed)
    base = load_encoder(args.encoder)
    t0 = time.perf_counter()
    examples = []
    for spec in args.datasets:
        examples += examples_of(spec, base, args)
    prepare = time.perf_counter() - t0
    settings = TrainSettings(
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        max_seconds=args.max_seconds,
        context_weight=args.context_weight,
        lora=LoraSettings(rank=args.rank, alpha=2.0 * args.rank, first_layer=args.first_layer),
    )
    update, close = tqdm_progress("training")

    def progress(step: int, total: int, loss: float) -> None:
        update(step, total, loss)
        if step % 25 == 0:
            print(f"step {step}/{total} loss {loss:.4f}", file=sys.stderr, flush=True)

    info: dict[str, object] = {
        "datasets": [Path(s.partition(":")[0]).name for s in args.datasets],
        "train_window_tokens": args.window_tokens,
        "dev_fraction": args.dev_fraction,
    }
    if args.encode_window:
        info["window_tokens"] = args.encode_window
    if args.init:
        info["initial"] = Path(args.init).name
    log = tune_situated(
        base,
        examples,
        settings,
        out=args.out,
        checkpoint=args.checkpoint,
        info=info,
        progress=progress,
        initial=args.init,
    )
    close()
    size = Path(args.out).stat().st_size
    print(
        f"trained {log.steps} steps on {len(examples)} examples in {log.seconds:.0f} s "
        f"(examples prepared in {prepare:.0f} s); adapter {args.out}: {size / 1e6:.2f} MB"
    )
    if args.log:
        record = {
            "command": " ".join(sys.argv),
            "datasets": args.datasets,
            "examples": len(examples),
            "prepare_seconds": round(prepare, 1),
            "train_seconds": round(log.seconds, 1),
            "steps": log.steps,
            "adapter_bytes": size,
            "losses": [round(x, 4) for x in log.losses],
        }
        Path(args.log).parent.mkdir(parents=True, exist_ok=True)
        Path(args.log).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
