"""Bookkeeping shared by the local decode loops (transformers, llama.cpp): per-sequence text,
stop strings, streaming hold-back, and TokenSteps from a full log-prob row (numpy)."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

import numpy as np

from rag.confidence import distribution_stats
from rag.generation.options import find_stop, repeat_cut
from rag.types import Generation, TokenStep


class SequenceState:
    """One sequence being decoded: its token ids, steps, decoded text and finish state."""

    def __init__(self, stops: Sequence[str], stop_on_repeat: bool = False) -> None:
        self.stops = tuple(stops)
        self.stop_on_repeat = stop_on_repeat
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.ids: list[int] = []
        self.steps: list[TokenStep] = []
        self.starts: list[int] = []  # character offset where each token's text begins
        self.text = ""
        self.cut: int | None = None
        self.finish_reason: str | None = None
        self.emitted = 0

    @property
    def done(self) -> bool:
        return self.finish_reason is not None

    def add(self, token_id: int, step: TokenStep, text: str) -> None:
        """Record a generated token; ``text`` is the decoding of all ids so far, this one included.

        A stop string anywhere in the text ends the sequence (searching the whole text, as a stop
        string may span tokens).
        """
        self.starts.append(len(self.text))
        self.ids.append(token_id)
        self.steps.append(step)
        self.text = text
        cut = find_stop(text, self.stops)
        if cut is not None:
            self.cut = cut
            self.finish_reason = "stop"
        elif self.stop_on_repeat and repeat_cut(text) is not None:
            # ends here, keeping the one repeated copy: what was streamed stays the answer
            self.finish_reason = "repeat"

    def finish(self, reason: str) -> None:
        if self.finish_reason is None:
            self.finish_reason = reason

    @property
    def final_text(self) -> str:
        return self.text if self.cut is None else self.text[: self.cut]

    def take_piece(self) -> str:
        """Text not yet streamed that can no longer change: while decoding, hold back what could
        be the start of a stop string and a trailing incomplete UTF-8 character."""
        if self.done:
            end = len(self.final_text)
        else:
            end = max(len(self.text) - self.hold, 0)
            while end > self.emitted and self.text[end - 1] == "\ufffd":
                end -= 1
        if end <= self.emitted:
            return ""
        piece = self.text[self.emitted : end]
        self.emitted = end
        return piece

    def result(self, model: str, prompt_tokens: int, seconds: float) -> Generation:
        """The Generation; steps are those of tokens that contribute text before any stop string."""
        steps = list(self.steps)  # a copy: the state may go on decoding (best_prefix)
        if self.cut is not None:
            steps = [
                s for s, start in zip(self.steps, self.starts, strict=True) if start < self.cut
            ]
        return Generation(
            text=self.final_text,
            steps=steps,
            finish_reason=self.finish_reason or "length",
            model=model,
            prompt_tokens=prompt_tokens,
            seconds=seconds,
        )


R = TypeVar("R")


def drain(decoding: Generator[Any, None, R]) -> R:
    """Run a decode generator to its end and return its return value."""
    while True:
        try:
            next(decoding)
        except StopIteration as done:
            return done.value


def top_k_indices(logprobs: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest entries, largest first."""
    k = min(k, logprobs.shape[-1])
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.argpartition(-logprobs, k - 1)[:k]
    return idx[np.argsort(-logprobs[idx], kind="stable")].astype(np.int64)


def choose_token(logprobs: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """Greedy argmax at temperature 0, else a sample from ``softmax(logprobs / temperature)``."""
    if temperature == 0:
        return int(np.argmax(logprobs))
    z = logprobs.astype(np.float64) / temperature
    z -= z.max()
    p = np.exp(z)
    return int(rng.choice(p.shape[0], p=p / p.sum()))


def step_from_logprobs(
    logprobs: np.ndarray, token_id: int, k: int, decode_one: Callable[[int], str]
) -> TokenStep:
    """A TokenStep with exact summaries, from the full log-prob row the token was chosen from."""
    stats = distribution_stats(logprobs)
    top = top_k_indices(logprobs, k)
    return TokenStep(
        token=decode_one(token_id),
        token_id=token_id,
        logprob=float(logprobs[token_id]),
        top_tokens=tuple(decode_one(int(i)) for i in top),
        top_logprobs=logprobs[top].astype(np.float32),
        top_ids=top,
        vocab_size=int(logprobs.shape[-1]),
        entropy=stats.entropy,
        sum_sq=stats.sum_sq,
        kl_uniform=stats.kl_uniform,
    )


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    m = np.max(z[np.isfinite(z)]) if np.isfinite(z).any() else 0.0
    z = z - m
    return z - np.log(np.exp(z).sum())
