"""``rag tune``: adapt an index's situated encoder to its own corpus, then re-embed the index.

Self-supervised only (inverse-cloze examples from the index's chunks, :mod:`rag.tuning`): the
user's corpus is all it reads. Training starts from the adapter shipped for the encoder when
there is one (``start="shipped"``, the default: a few steps then adapt an encoder that already
reads context, with the shipped adapter's ``context_weight``) or from zero (``start=None``). The adapter goes to ``ROOT/tuned/ENCODER.npz``, the encoder's
situated mode becomes ``trained:tuned/ENCODER.npz`` (a path inside the index, so the folder can
move), and every stored chunk is embedded again with it. Training checkpoints to
``ROOT/tuned/ENCODER.ckpt``: an interrupted run resumes where it stopped; a run whose training
finished but whose re-embedding did not goes straight to re-embedding.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rag.files import write_json_atomic

if TYPE_CHECKING:
    from rag.index.folder import Index
    from rag.tuning.trainer import TrainSettings

TUNED = "tuned"


@dataclass
class TuneReport:
    encoder: str
    chunks: int
    examples: int
    steps: int
    finished: bool
    train_seconds: float
    embed_seconds: float
    adapter: Path
    situated: str

    def summary(self) -> str:
        state = "finished" if self.finished else "stopped early (run again to resume)"
        return (
            f"tuned {self.encoder} on {self.chunks} chunks ({self.examples} examples, "
            f"{self.steps} steps, {state}) in {self.train_seconds:.0f}s; re-embedded in "
            f"{self.embed_seconds:.0f}s; situated mode {self.situated} ({self.adapter})"
        )


def dense_entry_name(index: Index, encoder: str | None) -> str:
    dense = [e.name for e in index.config.encoders if e.kind == "dense"]
    if encoder is None:
        if not dense:
            raise ValueError(f"index {index.root} has no dense encoder to tune")
        return dense[0]
    if encoder not in dense:
        raise ValueError(
            f"encoder {encoder!r} is not a dense encoder of index {index.root}; "
            f"its dense encoders: {', '.join(dense) or 'none'}"
        )
    return encoder


def tune_index(
    index: Index,
    settings: TrainSettings,
    *,
    encoder: str | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    batch_chunks: int = 256,
    show_progress: bool | None = None,
    start: str | Path | None = "shipped",
) -> TuneReport:
    """Train an adapter on ``index``'s chunks for one dense encoder and re-embed with it (all
    under the index's writer lock: another writer's chunks would miss the new vectors)."""
    with index.writing():
        return _tune(index, settings, encoder, progress, batch_chunks, show_progress, start)


def starting_adapter(base_name: str, start: str | Path | None) -> Path | None:
    """The adapter file training starts from: the one shipped for ``base_name`` (None when
    there is none), a given file, or None for zero."""
    from rag.encoders.situated.trained import ADAPTER_DIR, adapter_path

    if start is None:
        return None
    if start == "shipped":
        shipped = ADAPTER_DIR / f"{base_name}.npz"
        return shipped if shipped.is_file() else None
    return adapter_path(start)


def _tune(
    index: Index,
    settings: TrainSettings,
    encoder: str | None,
    progress: Callable[[int, int, float], None] | None,
    batch_chunks: int,
    show_progress: bool | None,
    start: str | Path | None,
) -> TuneReport:
    from rag.encoders.lora import read_adapter
    from rag.tuning.situated import make_examples, tune_situated

    name = dense_entry_name(index, encoder)
    chunks = list(index.all_chunks())
    if not chunks:
        raise ValueError(f"index {index.root} holds no chunks: ingest documents first")
    folder = index.root / TUNED
    adapter = folder / f"{name}.npz"
    checkpoint = folder / f"{name}.ckpt"
    base = index.encoder(name)
    initial = starting_adapter(base.name, start)
    info: dict[str, object] = {"index": str(index.root), "chunks": len(chunks)}
    if initial is not None:
        _, shipped, _ = read_adapter(initial)
        settings = replace(settings, context_weight=float(shipped.get("context_weight", 0.0)))
        info["initial"] = initial.name
    t0 = time.perf_counter()
    examples = make_examples(base, chunks, seed=settings.seed)
    log = tune_situated(
        base,
        examples,
        settings,
        out=adapter,
        checkpoint=checkpoint,
        info=info,
        progress=progress,
        initial=initial,
    )
    train_seconds = time.perf_counter() - t0
    situated = f"trained:{TUNED}/{name}.npz"
    entries = [  # every chunk is re-embedded, so at today's default window
        replace(e, situated=situated, window_tokens=None) if e.name == name else e
        for e in index.config.encoders
    ]
    index.config = replace(index.config, encoders=entries)
    index.forget_situated(name)
    entry = next(e for e in entries if e.name == name)
    embed = index.chunk_embedder(entry, show_progress)
    store = index.store(name)
    t1 = time.perf_counter()
    for start in range(0, len(chunks), batch_chunks):
        batch = chunks[start : start + batch_chunks]
        store.add(batch, embed(batch))  # an upsert by chunk id: every vector is replaced
    # The mode is recorded once every vector is the new one; an interrupted re-embedding
    # leaves the old mode in index.json and the next run embeds again.
    write_json_atomic(index.root / "index.json", index.config.to_json())
    return TuneReport(
        encoder=name,
        chunks=len(chunks),
        examples=len(examples),
        steps=log.steps,
        finished=log.finished,
        train_seconds=train_seconds,
        embed_seconds=time.perf_counter() - t1,
        adapter=adapter,
        situated=situated,
    )
