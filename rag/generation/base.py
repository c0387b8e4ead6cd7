"""The Generator role: one required method, ``generate``; the base class supplies the rest."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from rag.generation.types import Generation

Message = Mapping[str, str]
"""A chat message: ``{"role": "system" | "user" | "assistant", "content": "..."}``."""

Prompt = str | Sequence[Message]
"""A plain string, or a list of chat messages. Chat backends wrap a string as one user message."""


@dataclass
class PrefixChoice:
    """What :meth:`Generator.best_prefix` returns: every prompt's prefix, the index that was
    chosen (None: none was), and the chosen prompt's whole answer (None when none was chosen)."""

    prefixes: list[Generation]
    chosen: int | None
    final: Generation | None


def as_messages(prompt: Prompt) -> list[dict[str, str]]:
    """``prompt`` as a list of ``{"role", "content"}`` dicts (a string becomes one user message)."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    messages = []
    for m in prompt:
        if "role" not in m or "content" not in m:
            raise ValueError(f"a chat message needs 'role' and 'content' keys, got {dict(m)!r}")
        messages.append({"role": str(m["role"]), "content": str(m["content"])})
    if not messages:
        raise ValueError("the prompt has no messages")
    return messages


def normalise_stop(stop: str | Sequence[str] | None) -> tuple[str, ...]:
    """Stop strings as a tuple; a lone string is one stop string (not one per character)."""
    if stop is None:
        return ()
    stops = (stop,) if isinstance(stop, str) else tuple(stop)
    if any(not s for s in stops):
        raise ValueError("stop strings must be non-empty")
    return stops


def check_params(max_new_tokens: int, temperature: float, top_k_logprobs: int) -> None:
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k_logprobs < 0:
        raise ValueError(f"top_k_logprobs must be >= 0, got {top_k_logprobs}")


def find_stop(text: str, stops: Sequence[str]) -> int | None:
    """Index where the earliest stop string starts in ``text``, or None."""
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None


class Generator(ABC):
    """Produces a :class:`Generation` (text + per-token distributions) for a prompt.

    ``temperature=0`` is greedy decoding. ``top_k_logprobs`` is how many alternatives each
    :class:`~rag.generation.types.TokenStep` keeps for inspection; local backends compute the
    confidence summaries from the full distribution whatever its value.
    """

    name: str = "generator"

    @abstractmethod
    def generate(
        self,
        prompt: Prompt,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: str | Sequence[str] | None = None,
        top_k_logprobs: int = 5,
    ) -> Generation: ...

    def generate_many(
        self,
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: str | Sequence[str] | None = None,
        top_k_logprobs: int = 5,
    ) -> list[Generation]:
        """One Generation per prompt, in order (sequential here; batched where a backend can)."""
        return [
            self.generate(
                p,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                stop=stop,
                top_k_logprobs=top_k_logprobs,
            )
            for p in prompts
        ]

    def stream(
        self,
        prompt: Prompt,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: str | Sequence[str] | None = None,
    ) -> Iterator[str]:
        """Text pieces as they are produced; joined they equal ``generate(...).text``.

        This default yields the whole answer at once; backends that decode token by token
        override it.
        """
        yield self.generate(
            prompt, max_new_tokens=max_new_tokens, temperature=temperature, stop=stop
        ).text

    def best_prefix(
        self,
        prompts: Sequence[Prompt],
        choose: Callable[[list[Generation]], int | None],
        *,
        prefix_tokens: int,
        max_new_tokens: int = 256,
        stop: str | Sequence[str] | None = None,
        top_k_logprobs: int = 5,
    ) -> PrefixChoice:
        """Generate the first ``prefix_tokens`` tokens of every prompt, let ``choose`` pick one
        of those prefixes (or None), and finish only the chosen answer (greedy decoding).

        This default generates the prefixes with :meth:`generate_many`, then the chosen answer
        again from its prompt (greedy decoding makes its first tokens the prefix). Backends that
        keep their key-value cache continue the chosen prefix instead of starting over.
        """
        n = min(prefix_tokens, max_new_tokens)
        prefixes = self.generate_many(
            prompts, max_new_tokens=n, stop=stop, top_k_logprobs=top_k_logprobs
        )
        chosen = choose(prefixes)
        if chosen is None:
            return PrefixChoice(prefixes, None, None)
        final = prefixes[chosen]
        if final.finish_reason == "length" and n < max_new_tokens:
            final = self.generate(
                prompts[chosen],
                max_new_tokens=max_new_tokens,
                stop=stop,
                top_k_logprobs=top_k_logprobs,
            )
        return PrefixChoice(prefixes, chosen, final)
