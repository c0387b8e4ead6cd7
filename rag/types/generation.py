"""What a generator returns: the text plus, per generated token, what the confidence metrics need.

Memory matters: a full next-token distribution is ``V`` floats (150k x 4 bytes = 600 kB per token,
60 MB for a 100-token answer). So a :class:`TokenStep` keeps only

* the chosen token and its log-probability,
* the top-k alternatives (ids, strings, log-probs) for inspection, and
* three exact summaries of the full distribution (entropy, sum of squared probabilities and
  KL(U || p)) computed at generation time by backends that see the whole distribution
  (transformers, llama.cpp).

Backends that only see top-k log-probs (OpenAI-compatible servers, LangChain chat models) leave
the summaries as ``None`` and :mod:`rag.confidence` approximates them from the top-k, saying so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def _empty_logprobs() -> np.ndarray:
    return np.zeros(0, dtype=np.float32)


@dataclass(frozen=True, eq=False, slots=True)
class TokenStep:
    """One generated token and a summary of the next-token distribution it was chosen from.

    ``logprob`` is the natural-log probability of ``token`` under the model's own distribution
    (temperature 1, before any sampling temperature). ``top_logprobs`` is sorted best first and
    ``top_tokens`` / ``top_ids`` line up with it (``top_ids`` is ``None`` when the backend reports
    strings only). When ``k >= vocab_size`` the top arrays hold the whole distribution.

    ``entropy`` (nats), ``sum_sq`` (sum of squared probabilities) and ``kl_uniform``
    (KL(U || p) = -log V - mean_j log p_j) are exact values over the full vocabulary, or ``None``
    when the backend never saw the full distribution.
    """

    token: str
    token_id: int | None
    logprob: float
    top_tokens: tuple[str, ...] = ()
    top_logprobs: np.ndarray = field(default_factory=_empty_logprobs)
    top_ids: np.ndarray | None = None
    vocab_size: int | None = None
    entropy: float | None = None
    sum_sq: float | None = None
    kl_uniform: float | None = None

    @property
    def exact(self) -> bool:
        """Whether the full-distribution summaries are present (metrics need no approximation)."""
        return self.entropy is not None and self.sum_sq is not None and self.kl_uniform is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "token_id": self.token_id,
            "logprob": self.logprob,
            "top_tokens": list(self.top_tokens),
            "top_logprobs": [float(x) for x in self.top_logprobs],
            "top_ids": None if self.top_ids is None else [int(x) for x in self.top_ids],
            "vocab_size": self.vocab_size,
            "entropy": self.entropy,
            "sum_sq": self.sum_sq,
            "kl_uniform": self.kl_uniform,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenStep:
        top_ids = data.get("top_ids")
        return cls(
            token=data["token"],
            token_id=data.get("token_id"),
            logprob=float(data["logprob"]),
            top_tokens=tuple(data.get("top_tokens", ())),
            top_logprobs=np.asarray(data.get("top_logprobs", ()), dtype=np.float32),
            top_ids=None if top_ids is None else np.asarray(top_ids, dtype=np.int64),
            vocab_size=data.get("vocab_size"),
            entropy=data.get("entropy"),
            sum_sq=data.get("sum_sq"),
            kl_uniform=data.get("kl_uniform"),
        )


@dataclass
class Generation:
    """A generated answer with one :class:`TokenStep` per generated token.

    ``steps`` cover the tokens that make up ``text``; an end-of-sequence token is not included,
    and when a stop string ends the answer, tokens lying wholly inside the stop string are dropped
    (the last kept token may extend past ``text``). ``steps`` is empty when the backend returned
    no token information (e.g. a chat model without log-probs). ``finish_reason`` is ``"stop"``
    (end of sequence or a stop string), ``"length"`` (``max_new_tokens`` reached) or what a
    remote backend reported.
    """

    text: str
    steps: list[TokenStep]
    finish_reason: str
    model: str
    prompt_tokens: int | None = None
    seconds: float = 0.0

    @property
    def completion_tokens(self) -> int:
        return len(self.steps)

    @property
    def exact(self) -> bool:
        """True when every step carries full-distribution summaries (and there is at least one)."""
        return bool(self.steps) and all(s.exact for s in self.steps)

    @property
    def logprobs(self) -> np.ndarray:
        return np.array([s.logprob for s in self.steps], dtype=np.float64)

    @property
    def tokens_per_second(self) -> float:
        return len(self.steps) / self.seconds if self.seconds > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (no pickle); :meth:`from_dict` reverses it."""
        return {
            "text": self.text,
            "steps": [s.to_dict() for s in self.steps],
            "finish_reason": self.finish_reason,
            "model": self.model,
            "prompt_tokens": self.prompt_tokens,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Generation:
        return cls(
            text=data["text"],
            steps=[TokenStep.from_dict(s) for s in data.get("steps", [])],
            finish_reason=data["finish_reason"],
            model=data["model"],
            prompt_tokens=data.get("prompt_tokens"),
            seconds=float(data.get("seconds", 0.0)),
        )
