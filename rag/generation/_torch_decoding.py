"""The batched decode loop of :class:`~rag.generation.transformers.TransformersGenerator`: left
padding, a token prefix every prompt shares computed once, one forward pass per step for the
whole batch, and the confidence summaries of every row computed in torch. torch is imported by
the functions that use it, never at import time."""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from rag.generation._decoding import SequenceState
from rag.types import Generation, TokenStep

MIN_SHARED_TOKENS = 8
"""Shortest common token prefix of a batch's prompts that is computed once for all of them."""


def last_logits_only(model: Any) -> dict[str, int]:
    """``logits_to_keep=1`` where the model accepts it: the prompt pass then computes one row of
    logits instead of one per prompt token (prompt length x vocabulary floats)."""
    accepts = "logits_to_keep" in inspect.signature(model.forward).parameters
    return {"logits_to_keep": 1} if accepts else {}


def cache_name(model: Any) -> str:
    """The key-value cache's argument and output name: ``cache`` in recent transformers (5.2x),
    ``past_key_values`` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def shared_prefix(encoded: Sequence[Sequence[int]]) -> int:
    """Tokens every prompt starts with, leaving each prompt at least one token of its own (the
    prompt pass must end on a token of every row). 0 for a single prompt."""
    if len(encoded) < 2:
        return 0
    limit = min(len(ids) for ids in encoded) - 1
    n = 0
    while n < limit and all(ids[n] == encoded[0][n] for ids in encoded):
        n += 1
    return n


def cache_repeats() -> bool:
    """Whether this transformers' key-value cache can be repeated along the batch (4.4x+)."""
    from transformers import cache_utils

    return hasattr(getattr(cache_utils, "DynamicCache", None), "batch_repeat_interleave")


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """Every token id that ends a sequence (the tokenizer's and the generation config's)."""
    ids: set[int] = set()
    for value in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids


@dataclass
class Batch:
    """Prompts being decoded together: their states, what the next forward pass feeds (the
    padded prompts first, then the last chosen tokens), the attention mask and positions so
    far, the length of the token prefix every prompt shares (0: none is shared), and the
    key-value cache (None before the prompt pass)."""

    encoded: list[list[int]]
    states: list[SequenceState]
    feed: Any
    mask: Any
    positions: Any
    eos: set[int]
    pad_id: int
    started: float
    shared: int = 0
    cache: Any = None

    def keep(self, row: int) -> None:
        """Drop every row but ``row`` (its cache included) to go on decoding it alone."""
        import torch

        index = torch.tensor([row])
        self.cache.batch_select_indices(index)
        self.encoded = [self.encoded[row]]
        self.states = [self.states[row]]
        self.feed, self.mask, self.positions = (
            t[row : row + 1] for t in (self.feed, self.mask, self.positions)
        )

    def results(self, model: str) -> list[Generation]:
        seconds = time.perf_counter() - self.started
        return [
            s.result(model, len(ids), seconds)
            for s, ids in zip(self.states, self.encoded, strict=True)
        ]


@dataclass
class Decoder:
    """Decodes batches with one model on one device; ``rng`` is the torch generator sampling
    draws from (greedy decoding never uses it)."""

    model: Any
    tokenizer: Any
    device: str
    rng: Any

    @cached_property
    def cache_name(self) -> str:
        return cache_name(self.model)

    def start(
        self,
        encoded: list[list[int]],
        stops: tuple[str, ...],
        share_prefix: bool,
        started: float,
        stop_on_repeat: bool = False,
    ) -> Batch:
        """Left-pad the encoded prompts; the prompt pass itself runs in :meth:`run`."""
        import torch

        if not all(encoded):
            raise ValueError("a prompt encodes to no tokens; give some text")
        eos = eos_ids(self.model, self.tokenizer)
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = next(iter(eos), 0)
        shared = shared_prefix(encoded) if share_prefix else 0
        if shared < MIN_SHARED_TOKENS or not cache_repeats():
            shared = 0
        # left padding keeps every row's last token aligned; with a shared prefix the padding
        # sits between that prefix (computed once) and each prompt's own tokens
        tails = [ids[shared:] for ids in encoded]
        width = max(len(t) for t in tails)
        input_ids = torch.full((len(tails), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(tails), width), dtype=torch.long)
        for row, tail in enumerate(tails):
            input_ids[row, width - len(tail) :] = torch.tensor(tail, dtype=torch.long)
            mask[row, width - len(tail) :] = 1
        positions = (shared + mask.cumsum(-1) - 1).clamp(min=0)
        mask = torch.cat([torch.ones((len(tails), shared), dtype=torch.long), mask], dim=1)
        return Batch(
            encoded=encoded,
            states=[SequenceState(stops, stop_on_repeat) for _ in encoded],
            feed=input_ids,
            mask=mask,
            positions=positions,
            eos=eos,
            pad_id=pad_id,
            started=started,
            shared=shared,
        )

    def _cache_args(self, batch: Batch) -> dict[str, Any]:
        """Extra arguments of the next forward pass: the cache so far; before the prompt pass,
        one row of logits per prompt and, when the prompts share a prefix, that prefix's cache
        (computed once, then repeated for every row)."""
        import torch

        name = self.cache_name
        if batch.cache is not None:
            return {name: batch.cache}
        extra: dict[str, Any] = dict(last_logits_only(self.model))
        if batch.shared:
            head = torch.tensor([batch.encoded[0][: batch.shared]], dtype=torch.long)
            out = self.model(
                input_ids=head.to(self.device),
                attention_mask=torch.ones_like(head).to(self.device),
                position_ids=torch.arange(batch.shared)[None].to(self.device),
                use_cache=True,
                **extra,
            )
            cache = getattr(out, name)
            cache.batch_repeat_interleave(len(batch.encoded))
            extra[name] = cache
        return extra

    def _forward(self, batch: Batch) -> Any:
        """One forward pass over ``batch.feed``; the full log-probs of every row's next token."""
        import torch

        out = self.model(
            input_ids=batch.feed.to(self.device),
            attention_mask=batch.mask.to(self.device),
            position_ids=batch.positions.to(self.device),
            use_cache=True,
            **self._cache_args(batch),
        )
        batch.cache = getattr(out, self.cache_name)
        logits = out.logits[:, -1, :].to("cpu", torch.float64)
        return torch.log_softmax(logits, dim=-1)

    def _choose(self, logprobs: Any, temperature: float) -> Any:
        import torch

        if temperature == 0:
            return logprobs.argmax(dim=-1)
        probs = torch.softmax(logprobs / temperature, dim=-1)
        return torch.multinomial(probs, 1, generator=self.rng)[:, 0]

    def _advance(self, batch: Batch, chosen: Any) -> None:
        """Feed the chosen tokens next; finished rows idle on padding until the batch ends."""
        import torch

        feed = chosen.clone()
        for row, state in enumerate(batch.states):
            if state.done and state.finish_reason != "length":
                feed[row] = batch.pad_id
        batch.feed = feed[:, None]
        n = len(batch.states)
        batch.mask = torch.cat([batch.mask, torch.ones((n, 1), dtype=torch.long)], dim=1)
        batch.positions = batch.positions[:, -1:] + 1

    def run(
        self, batch: Batch, upto: int, temperature: float, top_k_logprobs: int
    ) -> Iterator[tuple[int, str]]:
        """Decode ``batch`` until every row has stopped or holds ``upto`` tokens; yields
        ``(row, text piece)``. The last chosen tokens stay in ``batch.feed``, so a later call
        (with a larger ``upto``, after :meth:`Batch.keep`) continues where this one ended."""
        import torch

        with torch.inference_mode():
            while True:
                logprobs = self._forward(batch)
                summary = summaries(logprobs)
                chosen = self._choose(logprobs, temperature)
                top_lp, top_ids = logprobs.topk(min(top_k_logprobs, logprobs.shape[-1]), dim=-1)
                for row, state in enumerate(batch.states):
                    if state.done:
                        continue
                    token_id = int(chosen[row])
                    if token_id in batch.eos:
                        state.finish("stop")
                    else:
                        step = token_step(
                            self.tokenizer,
                            token_id,
                            logprobs[row],
                            top_lp[row],
                            top_ids[row],
                            summary[row],
                        )
                        text = self.tokenizer.decode(
                            state.ids + [token_id], skip_special_tokens=True
                        )
                        state.add(token_id, step, text)
                    if not state.done and len(state.ids) >= upto:
                        state.finish("length")
                    piece = state.take_piece()
                    if piece:
                        yield row, piece
                self._advance(batch, chosen)
                if all(s.done for s in batch.states):
                    return


def summaries(logprobs: Any) -> np.ndarray:
    """(B, 3) float64: entropy, sum of squares, KL(U || p) per row of full log-probs.

    The same definitions as :func:`rag.confidence.distribution_stats` (``-inf`` entries count as
    absent), computed on the whole batch in torch.
    """
    import torch

    finite = torch.isfinite(logprobs)
    if bool(finite.all()):  # the usual case: no masked tokens
        lp, p = logprobs, logprobs.exp()
        n = torch.full(lp.shape[:-1], lp.shape[-1], dtype=lp.dtype)
    else:
        lp = torch.where(finite, logprobs, torch.zeros_like(logprobs))
        p = torch.where(finite, lp.exp(), torch.zeros_like(lp))
        n = finite.sum(dim=-1).to(lp.dtype)
    entropy = -(p * lp).sum(dim=-1)
    sum_sq = (p * p).sum(dim=-1)
    kl = -torch.log(n) - lp.sum(dim=-1) / n
    return torch.stack([entropy, sum_sq, kl], dim=-1).numpy()


def token_step(
    tokenizer: Any,
    token_id: int,
    logprobs: Any,
    top_lp: Any,
    top_ids: Any,
    summary: np.ndarray,
) -> TokenStep:
    """The TokenStep of ``token_id``, chosen from one row of full log-probs (torch)."""
    ids = top_ids.numpy().astype(np.int64)
    return TokenStep(
        token=tokenizer.decode([token_id]),
        token_id=token_id,
        logprob=float(logprobs[token_id]),
        top_tokens=tuple(tokenizer.decode([int(i)]) for i in ids),
        top_logprobs=top_lp.numpy().astype(np.float32),
        top_ids=ids,
        vocab_size=int(logprobs.shape[-1]),
        entropy=float(summary[0]),
        sum_sq=float(summary[1]),
        kl_uniform=float(summary[2]),
    )
