"""Contrastive training of a situated (late-chunking) encoder's low-rank adapter.

A batch holds windows of different documents; every chunk of every window is pooled from the
window's forward pass (late chunking, Günther et al., arXiv:2409.04701) and each query must pick
its positives among them: the other chunks of its own window are the in-sequence negatives of
InSeNT (Conti et al., arXiv:2505.24782), the chunks of the other windows in-batch negatives. The
loss is InfoNCE with several positives (``-log sum_pos / sum_all`` over ``exp(sim / t)``).

Deterministic given the seed (the batch order of every step comes from it, so a resumed run
sees the batches an uninterrupted one would); checkpoints hold the adapter, the optimiser's
moments and the losses, as ``.npz`` + JSON.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.encoders.lora import LoraSettings, add_lora, lora_arrays, set_lora_arrays
from rag.files import write_atomic, write_json_atomic
from rag.tuning.examples import Example


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 300
    batch_size: int = 16
    learning_rate: float = 5e-4
    temperature: float = 0.05
    seed: int = 0
    max_seconds: float | None = None
    checkpoint_every: int = 25
    # beta of late chunking's l2(s + beta * w) (w: the window pooled whole), as at encode time
    context_weight: float = 0.0
    lora: LoraSettings = field(default_factory=LoraSettings)


@dataclass
class TrainLog:
    """What a run did: one loss per step, the seconds it trained, and whether it finished."""

    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    finished: bool = False

    @property
    def steps(self) -> int:
        return len(self.losses)


def batch_order(n_examples: int, settings: TrainSettings, step: int) -> list[int]:
    """The examples of ``step``: epochs are seeded permutations, read in consecutive slices."""
    per_epoch = max(n_examples // settings.batch_size, 1)
    epoch, offset = divmod(step, per_epoch)
    order = np.random.default_rng([settings.seed, epoch]).permutation(n_examples)
    return [
        int(i) for i in order[offset * settings.batch_size : (offset + 1) * settings.batch_size]
    ]


def distinct_documents(examples: Sequence[Example], picked: Sequence[int]) -> list[int]:
    """``picked`` less repeats of a document already in the batch (they would be false
    negatives of each other)."""
    seen: set[str] = set()
    out = []
    for i in picked:
        if examples[i].doc_id not in seen:
            seen.add(examples[i].doc_id)
            out.append(i)
    return out


def _padded(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def batch_loss(
    model: Any,
    batch: Sequence[Example],
    temperature: float,
    pad_id: int,
    context_weight: float = 0.0,
) -> Any:
    """InfoNCE of the batch's queries against every chunk pooled from the batch's windows
    (each chunk pooled as the encoder pools it: ``l2(s + context_weight * w)``)."""
    import torch
    import torch.nn.functional as F

    ids, mask = _padded([e.window for e in batch], pad_id)
    states = model(input_ids=ids, attention_mask=mask).last_hidden_state
    pooled, owner = [], []
    for row, example in enumerate(batch):
        for first, end in example.spans:
            pooled.append(states[row, first:end].mean(dim=0))
            owner.append(row)
    chunks = F.normalize(torch.stack(pooled), dim=-1)
    if context_weight:
        lengths = torch.tensor([len(e.window) for e in batch], dtype=states.dtype)
        windows = F.normalize((states * mask.unsqueeze(-1)).sum(1) / lengths[:, None], dim=-1)
        chunks = F.normalize(chunks + context_weight * windows[torch.tensor(owner)], dim=-1)
    q_ids, q_mask = _padded([e.query for e in batch], pad_id)
    q_states = model(input_ids=q_ids, attention_mask=q_mask).last_hidden_state
    weights = q_mask.unsqueeze(-1).float()
    queries = F.normalize((q_states * weights).sum(1) / weights.sum(1), dim=-1)
    logits = queries @ chunks.T / temperature
    starts = np.cumsum([0] + [len(e.spans) for e in batch])
    positive = torch.zeros_like(logits, dtype=torch.bool)
    for row, example in enumerate(batch):
        for p in example.positives:
            positive[row, int(starts[row]) + p] = True
    both = torch.logsumexp(logits.masked_fill(~positive, -torch.inf), dim=1)
    return (torch.logsumexp(logits, dim=1) - both).mean()


def train_adapter(
    model: Any,
    examples: Sequence[Example],
    settings: TrainSettings,
    *,
    pad_id: int,
    checkpoint: str | Path | None = None,
    progress: Callable[[int, int, float], None] | None = None,
    initial: dict[str, np.ndarray] | None = None,
) -> TrainLog:
    """Wrap ``model`` (a Hugging Face encoder) with adapters and train them on ``examples``;
    the adapters start from ``initial`` (an adapter's matrices) when given, else at zero;
    resumes from ``checkpoint`` when it holds an earlier state of the same run."""
    import torch

    if not examples:
        raise ValueError("no training examples: the corpus has no chunk with a sentence")
    torch.manual_seed(settings.seed)
    add_lora(model, settings.lora, seed=settings.seed)
    if initial is not None:
        set_lora_arrays(model, initial)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=0.0)
    log = TrainLog()
    if checkpoint is not None and Path(checkpoint, "state.json").is_file():
        log = _restore(Path(checkpoint), model, optimiser, settings)
    model.train()
    started = time.perf_counter() - log.seconds
    warmup = max(settings.steps // 10, 1)
    for step in range(log.steps, settings.steps):
        if (
            settings.max_seconds is not None
            and time.perf_counter() - started > settings.max_seconds
        ):
            break
        scale = (
            min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / settings.steps))
        )
        for group in optimiser.param_groups:
            group["lr"] = settings.learning_rate * scale
        torch.manual_seed(settings.seed * 1_000_003 + step)  # dropout: the same masks on resume
        picked = distinct_documents(examples, batch_order(len(examples), settings, step))
        loss = batch_loss(
            model,
            [examples[i] for i in picked],
            settings.temperature,
            pad_id,
            settings.context_weight,
        )
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        log.losses.append(float(loss.detach()))
        log.seconds = time.perf_counter() - started
        if progress is not None:
            progress(step + 1, settings.steps, log.losses[-1])
        if checkpoint is not None and (step + 1) % settings.checkpoint_every == 0:
            _save(Path(checkpoint), model, optimiser, settings, log)
    log.finished = log.steps >= settings.steps
    model.eval()
    if checkpoint is not None:
        _save(Path(checkpoint), model, optimiser, settings, log)
    return log


def _settings_key(settings: TrainSettings) -> dict[str, Any]:
    key = asdict(settings)
    key.pop("max_seconds")
    if not key["context_weight"]:  # checkpoints written before the option existed still match
        key.pop("context_weight")
    key["lora"]["targets"] = list(key["lora"]["targets"])
    return key


def _save(folder: Path, model: Any, optimiser: Any, settings: TrainSettings, log: TrainLog) -> None:
    """The adapter and the optimiser's moments (``.npz``), then the state JSON that names them."""
    import io

    folder.mkdir(parents=True, exist_ok=True)
    arrays = {f"lora/{k}": v for k, v in lora_arrays(model).items()}
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    state = optimiser.state_dict()["state"]
    for i, name in enumerate(names):
        if i in state:
            arrays[f"m/{name}"] = state[i]["exp_avg"].numpy()
            arrays[f"v/{name}"] = state[i]["exp_avg_sq"].numpy()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(folder / "state.npz", buffer.getvalue())
    meta = {"settings": _settings_key(settings), "losses": log.losses, "seconds": log.seconds}
    write_json_atomic(folder / "state.json", meta)


def _restore(folder: Path, model: Any, optimiser: Any, settings: TrainSettings) -> TrainLog:
    import torch

    meta = json.loads((folder / "state.json").read_text("utf-8"))
    if meta["settings"] != _settings_key(settings):
        raise ValueError(
            f"checkpoint {folder} is of another run (settings {meta['settings']}); "
            "remove it or train with the same settings"
        )
    with np.load(folder / "state.npz", allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    set_lora_arrays(model, {k[5:]: v for k, v in arrays.items() if k.startswith("lora/")})
    steps = len(meta["losses"])
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    state = optimiser.state_dict()
    for i, name in enumerate(names):
        if f"m/{name}" in arrays:
            state["state"][i] = {
                "step": torch.tensor(float(steps)),
                "exp_avg": torch.from_numpy(arrays[f"m/{name}"].copy()),
                "exp_avg_sq": torch.from_numpy(arrays[f"v/{name}"].copy()),
            }
    optimiser.load_state_dict(state)
    return TrainLog(losses=list(meta["losses"]), seconds=float(meta["seconds"]))
