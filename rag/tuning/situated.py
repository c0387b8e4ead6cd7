"""Tune a situated encoder on a corpus: examples from its chunks, an adapter trained on them.

Used by ``rag tune --index DIR`` (a user's own corpus, self-supervised) and by
``benchmarks/train_situated.py`` (the adapter shipped with the package, trained on the public
corpora and the SciFact train split, never a test split).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.base import Encoder
from rag.encoders.lora import save_adapter
from rag.tuning.examples import SENTENCE_END, Example, cloze_example, judged_examples, windows_of
from rag.tuning.trainer import TrainLog, TrainSettings, train_adapter
from rag.types import Chunk

# The windows the trained mode reads (TRAINED_WINDOW_TOKENS). Training the shipped adapter on
# for 300 steps over 128-token windows scored SciFact's held-out train queries 0.6894 against
# its own 0.6712 (BENCHMARKS.md, "Retraining on 128-token windows"), at half the tokens a step.
TRAIN_WINDOW_TOKENS = 128


def make_examples(
    base: Encoder,
    chunks: Sequence[Chunk],
    *,
    seed: int = 0,
    queries: Mapping[str, str] | None = None,
    qrels: Mapping[str, Mapping[str, int]] | None = None,
    window_tokens: int = TRAIN_WINDOW_TOKENS,
    keep_probability: float = 0.1,
) -> list[Example]:
    """Inverse-cloze examples from every window of ``chunks`` (one per window), plus one example
    per judged (query, document) pair when ``queries`` and ``qrels`` (a train split) are given."""
    from rag.encoders.situated.late import LateChunkingEncoder

    late = LateChunkingEncoder(base, window_tokens=window_tokens)
    tokenizer = base.model.tokenizer  # type: ignore[attr-defined]
    stops = {int(tokenizer.convert_tokens_to_ids(t)) for t in SENTENCE_END}
    cls, sep = late._prefix_ids, late._suffix_ids
    windows = windows_of(late, chunks)
    rng = np.random.default_rng(seed)
    examples = [
        e
        for w in windows
        if (
            e := cloze_example(
                w, rng, stops=stops, cls=cls, sep=sep, keep_probability=keep_probability
            )
        )
    ]
    if queries and qrels:
        tokenised = {
            qid: (*cls, *tokenizer(text, add_special_tokens=False)["input_ids"][:64], *sep)
            for qid, text in queries.items()
        }
        examples += judged_examples(windows, tokenised, qrels)
    return examples


def trainable_copy(base: Encoder) -> Any:
    """A deep copy of the encoder's sentence-transformers model (the loaded one is shared by
    every encoder of this process and must stay the base model)."""
    model = getattr(base, "model", None)
    if model is None or not hasattr(model[0], "auto_model"):
        raise ValueError(
            f"encoder {base.name!r} has no Hugging Face transformer to tune (use minilm or mpnet)"
        )
    return copy.deepcopy(model)


def tune_situated(
    base: Encoder,
    examples: Sequence[Example],
    settings: TrainSettings,
    *,
    out: str | Path,
    checkpoint: str | Path | None = None,
    info: Mapping[str, Any] | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    initial: str | Path | None = None,
) -> TrainLog:
    """Train an adapter for ``base`` on ``examples`` and write it to ``out`` (with ``info``);
    ``initial`` is an adapter file to start from (same LoRA settings)."""
    model = trainable_copy(base)
    auto_model = model[0].auto_model
    pad_id = int(model.tokenizer.pad_token_id or 0)
    start = None
    if initial is not None:
        from rag.encoders.lora import read_adapter

        lora, _, start = read_adapter(initial)
        if lora != settings.lora:
            raise ValueError(f"adapter {initial} has LoRA settings {lora}, not {settings.lora}")
    log = train_adapter(
        auto_model,
        examples,
        settings,
        pad_id=pad_id,
        checkpoint=checkpoint,
        progress=progress,
        initial=start,
    )
    record = {
        "base": base.name,
        "examples": len(examples),
        "steps": log.steps,
        "finished": log.finished,
        "seconds": round(log.seconds, 1),
        "seed": settings.seed,
        "batch_size": settings.batch_size,
        "learning_rate": settings.learning_rate,
        "temperature": settings.temperature,
        "context_weight": settings.context_weight,
        **(info or {}),
    }
    save_adapter(out, auto_model, settings.lora, record)
    return log


def tqdm_progress(desc: str) -> tuple[Callable[[int, int, float], None], Callable[[], None]]:
    """A progress callback showing steps and the running loss, and a function closing the bar."""
    from tqdm.auto import tqdm

    bar: dict[str, Any] = {}

    def update(step: int, total: int, loss: float) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, initial=step - 1, desc=desc, unit="step")
        bar["bar"].update(1)
        bar["bar"].set_postfix(loss=f"{loss:.3f}")

    def close() -> None:
        if "bar" in bar:
            bar["bar"].close()

    return update, close
