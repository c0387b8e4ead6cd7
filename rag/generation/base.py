"""The Generator role: one required method, ``_generate(prompt, options)``; the base class
supplies the rest, and the public methods that build the options once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rag.generation.options import GenerationOptions
from rag.types import Generation

Message = Mapping[str, str]
"""A chat message: ``{"role": "system" | "user" | "assistant", "content": "..."}``."""

Prompt = str | Sequence[Message]
"""A plain string, or a list of chat messages. Chat backends wrap a string as one user message."""

Choose = Callable[[list[Generation]], int | None]
"""Picks one of the prefixes :meth:`Generator.best_prefix` generated (its index), or none."""


class GenerationError(RuntimeError):
    """A backend failed to produce a generation (HTTP error, unreachable server, bad reply)."""


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


class Generator(ABC):
    """Produces a :class:`~rag.types.Generation` (text + per-token distributions) for a prompt.

    Every public method takes one :class:`~rag.generation.options.GenerationOptions`: as an
    object, as its fields by keyword (``generate(prompt, max_new_tokens=24)``), or both (the
    keywords replace the object's fields). The options are built and validated here, once, and
    handed to the backend's hooks. A backend implements ``_generate(prompt, options)``; it
    overrides ``_generate_many``, ``_stream`` or ``_best_prefix`` where it can do better than
    these defaults (batching, token-by-token streaming, continuing a cached prefix).
    """

    name: str = "generator"

    # -- the public methods: options in, the backend's hooks called -----------------------------

    def generate(
        self, prompt: Prompt, options: GenerationOptions | None = None, **changes: Any
    ) -> Generation:
        """One Generation for ``prompt``."""
        return self._generate(prompt, GenerationOptions.of(options, **changes))

    def generate_many(
        self, prompts: Sequence[Prompt], options: GenerationOptions | None = None, **changes: Any
    ) -> list[Generation]:
        """One Generation per prompt, in order (batched or concurrent where a backend can)."""
        return self._generate_many(list(prompts), GenerationOptions.of(options, **changes))

    def stream(
        self, prompt: Prompt, options: GenerationOptions | None = None, **changes: Any
    ) -> Iterator[str]:
        """Text pieces as they are produced; joined they equal ``generate(...).text``.

        A stream yields text only, so no alternatives are collected (``top_k_logprobs=0``).
        """
        options = GenerationOptions.of(options, **changes).replace(top_k_logprobs=0)
        return self._stream(prompt, options)

    def best_prefix(
        self,
        prompts: Sequence[Prompt],
        choose: Choose,
        options: GenerationOptions | None = None,
        *,
        prefix_tokens: int,
        **changes: Any,
    ) -> PrefixChoice:
        """Generate the first ``prefix_tokens`` tokens of every prompt, let ``choose`` pick one
        of those prefixes (or None), and finish only the chosen answer.

        Decoding is greedy (``temperature`` must be 0), so the chosen answer starts with its
        prefix, and the choice is made on exactly the tokens it begins with.
        """
        options = GenerationOptions.of(options, **changes)
        if options.temperature != 0:
            raise ValueError(
                f"best_prefix decodes greedily; temperature must be 0, got {options.temperature}"
            )
        if prefix_tokens < 1:
            raise ValueError(f"prefix_tokens must be >= 1, got {prefix_tokens}")
        prefix = options.replace(max_new_tokens=min(prefix_tokens, options.max_new_tokens))
        return self._best_prefix(list(prompts), choose, prefix, options)

    # -- the hooks a backend implements (the first) or overrides --------------------------------

    @abstractmethod
    def _generate(self, prompt: Prompt, options: GenerationOptions) -> Generation: ...

    def _generate_many(self, prompts: list[Prompt], options: GenerationOptions) -> list[Generation]:
        """Sequential here."""
        return [self._generate(p, options) for p in prompts]

    def _stream(self, prompt: Prompt, options: GenerationOptions) -> Iterator[str]:
        """The whole answer at once here; backends that decode token by token override it."""
        return iter([self._generate(prompt, options).text])

    def _best_prefix(
        self,
        prompts: list[Prompt],
        choose: Choose,
        prefix: GenerationOptions,
        options: GenerationOptions,
    ) -> PrefixChoice:
        """``prefix`` are the options of the prefixes (``options`` with fewer tokens).

        Here: the prefixes through :meth:`_generate_many`, then the chosen answer again from its
        prompt (greedy decoding makes its first tokens the prefix). Backends that keep their
        key-value cache continue the chosen prefix instead of starting over.
        """
        prefixes = self._generate_many(prompts, prefix)
        chosen = choose(prefixes)
        if chosen is None:
            return PrefixChoice(prefixes, None, None)
        final = prefixes[chosen]
        if final.finish_reason == "length" and prefix.max_new_tokens < options.max_new_tokens:
            final = self._generate(prompts[chosen], options)
        return PrefixChoice(prefixes, chosen, final)
