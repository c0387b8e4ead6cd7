"""``late``: late chunking. Encode a context window once with a token-level model, then mean-pool
each chunk's token span, so every chunk vector has seen the whole window.

Günther et al., "Late Chunking: Contextual Chunk Embeddings Using Long-Context Embedding Models",
arXiv:2409.04701 (2024). Text longer than the model's window is cut into overlapping
*macro-windows* (their "long late chunking"); a chunk is pooled in the window where it sits
furthest from an edge. All chunks of a window share its forward pass, and windows are batched
(sorted by length, so padding stays small).

The windows are the chunks' context spans (``Chunk.context``), merged per document: under the
chunkers' ``"section"`` context mode that is each section, under ``"window"`` a stretch of text
across sections. The document title and section path are put before each window (read by the
model, not pooled).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.encoders.situated.base import (
    ChunkBatch,
    SituatedEncoder,
    as_vectors,
    context_segments,
    header,
    l2_normalise,
)
from rag.types import Chunk

if TYPE_CHECKING:
    from rag.base import Encoder

DEFAULT_WINDOW_TOKENS = 512
DEFAULT_WINDOW_BATCH = 8


@dataclass(frozen=True)
class WindowJob:
    """One forward pass input: token ids (special tokens included) and, for each chunk pooled
    from it, ``(chunk index, first token, end token)`` as positions in ``input_ids``."""

    input_ids: tuple[int, ...]
    spans: tuple[tuple[int, int, int], ...]


def macro_windows(n_tokens: int, capacity: int, overlap: int) -> list[tuple[int, int]]:
    """Token ranges of at most ``capacity`` covering ``range(n_tokens)``, consecutive ones
    sharing ``overlap`` tokens (the last one is moved back to end exactly at ``n_tokens``)."""
    if capacity < 1:
        raise ValueError(f"window capacity must be positive, got {capacity}")
    if n_tokens <= capacity:
        return [(0, n_tokens)]
    overlap = min(max(overlap, 0), capacity - 1)
    stride = capacity - overlap
    windows = []
    start = 0
    while start + capacity < n_tokens:
        windows.append((start, start + capacity))
        start += stride
    windows.append((n_tokens - capacity, n_tokens))
    return windows


def token_span(offsets: Sequence[tuple[int, int]], start: int, end: int) -> tuple[int, int]:
    """The tokens whose characters overlap ``[start, end)``: ``(first, end)`` token indices.
    A range that no token overlaps (only whitespace) gives the nearest token."""
    first = next((i for i, (_, e) in enumerate(offsets) if e > start), len(offsets) - 1)
    last = first
    for i in range(first, len(offsets)):
        if offsets[i][0] >= end:
            break
        last = i
    return first, last + 1


def token_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Consecutive indices of ``lengths`` (sorted ascending) grouped so that each group's
    padded size, ``len(group) * max(length)``, stays within ``budget`` (a longer item alone)."""
    batches: list[list[int]] = []
    for i, length in enumerate(lengths):
        if batches and (len(batches[-1]) + 1) * length <= budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def best_window(windows: Sequence[tuple[int, int]], first: int, end: int) -> int:
    """The window holding tokens ``[first, end)`` whole and furthest from its edges; if none
    holds them whole, the one that overlaps them most."""
    best, best_key = 0, (-1, -(10**9))
    for w, (ws, we) in enumerate(windows):
        inside = ws <= first and end <= we
        overlap = min(end, we) - max(first, ws)
        key = (1, min(first - ws, we - end)) if inside else (0, overlap)
        if key > best_key:
            best, best_key = w, key
    return best


class LateChunkingEncoder(SituatedEncoder):
    """Late chunking over a sentence-transformers model with token outputs (``base.model``:
    its first module's ``auto_model`` and its fast ``tokenizer``).

    - ``window_tokens``: tokens per forward pass, special tokens included (default: the model's
      position limit, at most 512);
    - ``overlap_tokens``: tokens shared by consecutive macro-windows (default a quarter window);
    - ``window_batch_size``: full windows per forward pass (default 8; batching matters on
      CPU); shorter windows are packed into the same token budget (padded tokens counted), so
      a corpus of one-sentence records batches like plain chunks do;
    - ``with_header``: read the title and section path before each window;
    - ``context_weight``: ``beta`` in ``l2(s + beta * w)``, where ``w`` is the mean of every
      token state of the chunk's window (the window read as one text, from the same forward
      pass, so it costs nothing): a chunk then also scores by what its whole context matches
      (0 keeps the chunk's span alone).

    Pooling is the mean of the chunk's token states, followed by the model's own modules after
    pooling (e.g. ``Normalize``, ``Dense``), then L2 normalisation.
    """

    mode = "late"

    def __init__(
        self,
        base: Encoder,
        *,
        window_tokens: int | None = None,
        overlap_tokens: int | None = None,
        window_batch_size: int = DEFAULT_WINDOW_BATCH,
        with_header: bool = True,
        context_weight: float = 0.0,
    ) -> None:
        model = getattr(base, "model", None)
        try:
            self._auto_model = model[0].auto_model  # type: ignore[index]
            self._tokenizer = model.tokenizer  # type: ignore[union-attr]
        except (AttributeError, IndexError, TypeError, KeyError):
            raise ValueError(
                f"late chunking needs token-level outputs; encoder {base.name!r} has no "
                "sentence-transformers model with a Hugging Face transformer (use minilm, mpnet "
                "or a sentence-transformers folder)"
            ) from None
        if not getattr(self._tokenizer, "is_fast", False):
            raise ValueError("late chunking needs a fast tokenizer (for character offsets)")
        if window_batch_size < 1:
            raise ValueError(f"window_batch_size must be positive, got {window_batch_size}")
        self.base = base
        self._model = model
        limit = getattr(self._auto_model.config, "max_position_embeddings", None)
        limit = DEFAULT_WINDOW_TOKENS if not isinstance(limit, int) else limit
        self.window_tokens = int(window_tokens or min(DEFAULT_WINDOW_TOKENS, limit))
        self.overlap_tokens = (
            self.window_tokens // 4 if overlap_tokens is None else int(overlap_tokens)
        )
        self.window_batch_size = window_batch_size
        self.with_header = with_header
        self.context_weight = float(context_weight)
        if not np.isfinite(self.context_weight) or self.context_weight < 0:
            raise ValueError(f"context_weight must be a finite number >= 0, got {context_weight!r}")
        self._prefix_ids, self._suffix_ids = self._special_tokens()
        if self.window_tokens <= len(self._prefix_ids) + len(self._suffix_ids):
            raise ValueError(f"window_tokens={self.window_tokens} leaves no room for text")

    def options(self) -> dict[str, Any]:
        settings = ("window_tokens", "overlap_tokens", "window_batch_size", "with_header")
        options = {"mode": self.mode, **{name: getattr(self, name) for name in settings}}
        if self.context_weight:  # only when set, so indexes built before it keep their options
            options["context_weight"] = self.context_weight
        return options

    def _special_tokens(self) -> tuple[list[int], list[int]]:
        """The special token ids the tokenizer puts before and after a text ([CLS] / [SEP])."""
        probe = self._tokenizer("a", add_special_tokens=True, return_special_tokens_mask=True)
        ids, mask = list(probe["input_ids"]), list(probe["special_tokens_mask"])
        content = [i for i, m in enumerate(mask) if not m]
        if not content:
            return [], []
        return ids[: content[0]], ids[content[-1] + 1 :]

    def _tokens(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self._tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        return list(enc["input_ids"]), [(int(s), int(e)) for s, e in enc["offset_mapping"]]

    def jobs(self, chunks: Sequence[Chunk]) -> list[WindowJob]:
        """The forward passes that embed ``chunks``: one per macro-window of each context
        segment, each listing the chunks pooled from it (every chunk exactly once)."""
        jobs: list[WindowJob] = []
        specials = len(self._prefix_ids) + len(self._suffix_ids)
        for segment in context_segments(chunks):
            members = [chunks[i] for i in segment.chunks]
            head_ids: list[int] = []
            if self.with_header:
                sections = {c.section for c in members}
                lead = members[0] if len(sections) == 1 else _title_only(members[0])
                head = header(lead)
                if head:
                    head_ids = self._tokens(head + "\n")[0]
            ids, offsets = self._tokens(segment.text)
            capacity = self.window_tokens - specials - len(head_ids)
            if capacity < 16:  # an overlong header: drop it rather than starve the text
                head_ids, capacity = [], self.window_tokens - specials
            windows = macro_windows(len(ids), capacity, self.overlap_tokens)
            pooled: list[list[tuple[int, int, int]]] = [[] for _ in windows]
            for index in segment.chunks:
                chunk = chunks[index]
                if not ids:
                    raise ValueError(f"chunk {chunk.id} has no tokens to pool")
                first, end = token_span(
                    offsets, chunk.start - segment.start, chunk.end - segment.start
                )
                w = best_window(windows, first, end)
                ws, we = windows[w]
                first, end = max(first, ws), min(end, we)
                if end <= first:  # cannot happen for a chunk inside the segment; stay safe
                    first, end = ws, min(ws + 1, we)
                shift = len(self._prefix_ids) + len(head_ids) - ws
                pooled[w].append((index, first + shift, end + shift))
            for (ws, we), spans in zip(windows, pooled, strict=True):
                if spans:
                    input_ids = [*self._prefix_ids, *head_ids, *ids[ws:we], *self._suffix_ids]
                    jobs.append(WindowJob(tuple(input_ids), tuple(spans)))
        return jobs

    def situated_vectors(self, batch: ChunkBatch) -> np.ndarray:
        return self._embed_late(batch.chunks, batch.show_progress)

    def _embed_late(self, chunks: Sequence[Chunk], show_progress: bool) -> np.ndarray:
        spans, windows = self.late_parts(chunks, show_progress)
        if not self.context_weight:
            return spans
        return l2_normalise(spans + np.float32(self.context_weight) * windows)

    def late_parts(
        self, chunks: Sequence[Chunk], show_progress: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Two unit vectors per chunk from one forward pass per window: its own span pooled,
        and its whole window pooled (every real token, as the model pools a text)."""
        import torch

        out = np.zeros((len(chunks), self.dim), dtype=np.float32)
        whole = np.zeros((len(chunks), self.dim), dtype=np.float32)
        if not chunks:
            return as_vectors(out, self.dim), as_vectors(whole, self.dim)
        jobs = sorted(self.jobs(chunks), key=lambda j: len(j.input_ids))
        device = next(self._auto_model.parameters()).device
        pad_id = self._tokenizer.pad_token_id or 0
        batches = token_batches(
            [len(j.input_ids) for j in jobs], self.window_batch_size * self.window_tokens
        )
        batches = [[jobs[i] for i in batch] for batch in batches]
        if show_progress:
            import sys

            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="late chunking", unit="batch", file=sys.stderr)
        pooled_rows: list[torch.Tensor] = []
        pooled_index: list[int] = []
        window_rows: list[torch.Tensor] = []
        window_of: list[int] = []  # per pooled row: its window's row in window_rows
        forward = getattr(self.base, "forward_context", None)  # bf16 when the base uses it
        with forward(len(chunks)) if forward else contextlib.nullcontext(), torch.inference_mode():
            for batch in batches:
                width = max(len(j.input_ids) for j in batch)
                ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, job in enumerate(batch):
                    ids[row, : len(job.input_ids)] = torch.tensor(job.input_ids)
                    mask[row, : len(job.input_ids)] = 1
                states = self._auto_model(
                    input_ids=ids.to(device), attention_mask=mask.to(device)
                ).last_hidden_state
                for row, job in enumerate(batch):
                    window_rows.append(states[row, : len(job.input_ids)].float().mean(dim=0))
                    for index, first, end in job.spans:
                        pooled_rows.append(states[row, first:end].float().mean(dim=0))
                        pooled_index.append(index)
                        window_of.append(len(window_rows) - 1)
            pooled = self._after_pooling(torch.stack(pooled_rows))
            windows = self._after_pooling(torch.stack(window_rows))
        rows = np.asarray(pooled_index)
        out[rows] = pooled.cpu().numpy()
        whole[rows] = windows.cpu().numpy()[np.asarray(window_of)]
        return l2_normalise(out), l2_normalise(whole)

    def _after_pooling(self, embeddings: Any) -> Any:
        """Apply the sentence-transformers modules that follow its Pooling module."""
        modules = list(self._model)
        names = [type(m).__name__ for m in modules]
        if "Pooling" not in names:
            return embeddings
        features = {"sentence_embedding": embeddings}
        for module in modules[names.index("Pooling") + 1 :]:
            features = module(features)
        return features["sentence_embedding"]


def _title_only(chunk: Chunk) -> Chunk:
    from dataclasses import replace

    return replace(chunk, section=())
