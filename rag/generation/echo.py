"""A deterministic fake LLM for tests and demos: fixed (or echoed) text, given distributions."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from rag.generation._decoding import step_from_logprobs
from rag.generation.base import Generator, Prompt, as_messages
from rag.generation.options import GenerationOptions, find_stop
from rag.types import Generation

_PIECE = re.compile(r"\s*\S+")


def prompt_text(prompt: Prompt) -> str:
    """The prompt as one string: itself, or the messages' contents joined by blank lines."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(m["content"] for m in as_messages(prompt))


def _pieces(text: str) -> list[str]:
    """Word-like tokens (leading whitespace attached); joined they give back ``text``."""
    pieces = _PIECE.findall(text)
    tail = text[len("".join(pieces)) :]
    return [*pieces, tail] if tail else pieces


class EchoGenerator(Generator):
    """Answers without a model, deterministically, with full next-token distributions.

    ``text`` is the answer: a fixed string, a function of the prompt text, or ``None`` to echo
    the last message (or the string prompt). Each whitespace-separated word is one token. Each
    token's distribution over a toy vocabulary of ``vocab_size`` tokens is row ``i % m`` of
    ``distributions`` (an ``(m, V)`` array of probabilities; the chosen token is the row's
    argmax) or, without it, ``[c, (1-c)/(V-1), ...]`` where ``c`` is ``confidence`` (a number in
    (0, 1) or a function of the prompt text), so tests can make one answer more confident than
    another. Every prompt received is appended to ``calls``.
    """

    def __init__(
        self,
        text: str | Callable[[str], str] | None = None,
        *,
        confidence: float | Callable[[str], float] = 0.9,
        distributions: np.ndarray | Sequence[Sequence[float]] | None = None,
        vocab_size: int = 8,
        name: str = "echo",
    ) -> None:
        if distributions is not None:
            dist = np.asarray(distributions, dtype=np.float64)
            if dist.ndim != 2 or not np.allclose(dist.sum(axis=1), 1.0, atol=1e-6):
                raise ValueError("distributions must be an (m, V) array whose rows sum to 1")
            self.distributions: np.ndarray | None = dist
        else:
            self.distributions = None
        if vocab_size < 2:
            raise ValueError("vocab_size must be >= 2")
        self.text = text
        self.confidence = confidence
        self.vocab_size = vocab_size
        self.name = name
        self.calls: list[Prompt] = []

    def _answer(self, prompt: Prompt) -> str:
        if self.text is None:
            return prompt if isinstance(prompt, str) else as_messages(prompt)[-1]["content"]
        if isinstance(self.text, str):
            return self.text
        return self.text(prompt_text(prompt))

    def _rows(self, prompt: Prompt) -> np.ndarray:
        if self.distributions is not None:
            return self.distributions
        c = self.confidence(prompt_text(prompt)) if callable(self.confidence) else self.confidence
        if not 0.0 < c < 1.0:
            raise ValueError(f"confidence must lie strictly between 0 and 1, got {c}")
        row = np.full(self.vocab_size, (1.0 - c) / (self.vocab_size - 1))
        row[0] = c
        return row[None, :]

    def _generate(self, prompt: Prompt, options: GenerationOptions) -> Generation:
        self.calls.append(prompt)
        pieces = _pieces(self._answer(prompt))
        finish = "stop"
        if len(pieces) > options.max_new_tokens:
            pieces, finish = pieces[: options.max_new_tokens], "length"
        text = "".join(pieces)
        starts = np.cumsum([0, *(len(p) for p in pieces)])[:-1]
        cut = find_stop(text, options.stop)
        if cut is not None:
            keep = [i for i, s in enumerate(starts) if s < cut]
            pieces, text, finish = [pieces[i] for i in keep], text[:cut], "stop"
        rows = np.log(self._rows(prompt))
        steps = []
        for i, piece in enumerate(pieces):
            logprobs = rows[i % len(rows)]
            chosen = int(np.argmax(logprobs))

            def decode_one(j: int, piece: str = piece, chosen: int = chosen) -> str:
                return piece if j == chosen else f"<{j}>"

            steps.append(step_from_logprobs(logprobs, chosen, options.top_k_logprobs, decode_one))
        return Generation(
            text=text,
            steps=steps,
            finish_reason=finish,
            model=self.name,
            prompt_tokens=len(_pieces(prompt_text(prompt))),
            seconds=0.0,
        )

    def _stream(self, prompt: Prompt, options: GenerationOptions) -> Iterator[str]:
        """The answer word by word."""
        yield from _pieces(self._generate(prompt, options).text)
