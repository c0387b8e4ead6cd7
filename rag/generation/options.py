"""The options of one generation call, stated once for every backend and every method, and the
stop strings they carry."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def normalise_stop(stop: str | Sequence[str] | None) -> tuple[str, ...]:
    """Stop strings as a tuple; a lone string is one stop string (not one per character)."""
    if stop is None:
        return ()
    stops = (stop,) if isinstance(stop, str) else tuple(stop)
    if any(not s for s in stops):
        raise ValueError("stop strings must be non-empty")
    return stops


def find_stop(text: str, stops: Sequence[str]) -> int | None:
    """Index where the earliest stop string starts in ``text``, or None."""
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None


def repeat_cut(text: str, min_chars: int = 16, max_chars: int = 400) -> int | None:
    """Where ``text`` began repeating itself, or None: when it ends with the same span twice in
    a row (at least ``min_chars`` characters and three words), the offset of the second copy.

    Small models decoding greedily fall into loops ("The answer is: The answer is: ..."); the
    loop adds no information, wastes the token budget and inflates confidence (a repeated span
    is predicted with near certainty), so local backends end the answer where it starts."""
    n = len(text)
    for period in range(min_chars, min(max_chars, n // 2) + 1):
        tail = text[n - period :]
        if text[n - 2 * period : n - period] == tail and len(tail.split()) >= 3:
            return n - period
    return None


@dataclass(frozen=True)
class GenerationOptions:
    """How one call generates; every Generator method takes these and nothing else.

    ``max_new_tokens``: at most this many tokens are generated (>= 1).
    ``temperature``: 0 is greedy decoding; above 0 tokens are sampled from the distribution
    tempered by it (the confidence summaries always describe the untempered one).
    ``stop``: strings that end the answer, which does not include them; a lone string (or
    ``None``) is accepted and stored as a tuple.
    ``stop_on_repeat``: local backends (transformers, llama.cpp) end the answer once it has
    repeated a span of its own (see :func:`repeat_cut`; the one repeated copy stays, so the
    streamed text is the answer), with finish reason ``"repeat"``.
    ``top_k_logprobs``: how many alternatives each :class:`~rag.types.TokenStep` keeps for
    inspection; local backends compute the confidence summaries from the full distribution
    whatever its value.

    Invalid values raise ValueError when the options are made, before any backend runs.
    Seeds are not options: a backend that samples owns one random stream, seeded when built.
    """

    max_new_tokens: int = 256
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    top_k_logprobs: int = 5
    stop_on_repeat: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop", normalise_stop(self.stop))
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k_logprobs < 0:
            raise ValueError(f"top_k_logprobs must be >= 0, got {self.top_k_logprobs}")

    @classmethod
    def of(cls, options: GenerationOptions | None = None, **changes: Any) -> GenerationOptions:
        """``options`` (default: the defaults above) with the fields named in ``changes``
        replaced; an unknown name is a TypeError."""
        base = cls() if options is None else options
        return dataclasses.replace(base, **changes) if changes else base

    def replace(self, **changes: Any) -> GenerationOptions:
        """A copy with the named fields replaced (validated like any options)."""
        return dataclasses.replace(self, **changes)
