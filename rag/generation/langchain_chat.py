"""Any LangChain chat model as a Generator (LangChain is imported only by the model you pass)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from rag.generation.base import Generator, Prompt, as_messages
from rag.generation.openai_compatible import parse_logprobs
from rag.generation.options import GenerationOptions, find_stop
from rag.types import Generation, TokenStep


def _text(message: Any) -> str:
    """A message's text: its string content, or the text parts of a list content."""
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
    return "".join(parts)


def _cut_steps(steps: list[TokenStep], cut: int) -> list[TokenStep]:
    """The steps whose token starts before character ``cut`` (token strings concatenate to the
    text for OpenAI-style log-probs)."""
    kept, start = [], 0
    for step in steps:
        if start >= cut:
            break
        kept.append(step)
        start += len(step.token)
    return kept


class LangChainChatGenerator(Generator):
    """Wraps a LangChain chat model (anything with ``invoke`` / ``batch`` / ``stream``).

    Text only, unless the model returns OpenAI-style log-probs in
    ``response_metadata["logprobs"]`` (``{"content": [{"token", "logprob", "top_logprobs"}]}``);
    ask for them the LangChain way, e.g.
    ``ChatOpenAI(model=..., temperature=0, max_tokens=256).bind(logprobs=True, top_logprobs=5)``.
    Without log-probs a Generation has no steps, and the confidence metrics refuse to score it.

    LangChain has no common per-call setting for the token budget or temperature, so
    ``max_new_tokens``, ``temperature`` and ``top_k_logprobs`` are *not* forwarded: set them on the
    chat model. ``stop`` is forwarded, and also applied to the returned text, because some chat
    models ignore it. ``vocab_size`` helps the top-k approximation of the metrics.
    """

    def __init__(
        self, chat_model: Any, *, vocab_size: int | None = None, name: str | None = None
    ) -> None:
        self.chat_model = chat_model
        self.vocab_size = vocab_size
        self.name = name or str(
            getattr(chat_model, "model_name", None)
            or getattr(chat_model, "model", None)
            or type(chat_model).__name__
        )

    def _to_generation(self, message: Any, stops: tuple[str, ...], seconds: float) -> Generation:
        meta = dict(getattr(message, "response_metadata", None) or {})
        logprobs = meta.get("logprobs") or {}
        content = logprobs.get("content") if isinstance(logprobs, dict) else None
        steps = parse_logprobs(content, self.vocab_size)
        text = _text(message)
        finish = str(meta.get("finish_reason") or meta.get("stop_reason") or "stop")
        cut = find_stop(text, stops)
        if cut is not None:
            text, steps, finish = text[:cut], _cut_steps(steps, cut), "stop"
        usage = getattr(message, "usage_metadata", None) or {}
        return Generation(
            text=text,
            steps=steps,
            finish_reason=finish,
            model=str(meta.get("model_name") or meta.get("model") or self.name),
            prompt_tokens=usage.get("input_tokens"),
            seconds=seconds,
        )

    def _generate(self, prompt: Prompt, options: GenerationOptions) -> Generation:
        started = time.perf_counter()
        message = self.chat_model.invoke(as_messages(prompt), stop=list(options.stop) or None)
        return self._to_generation(message, options.stop, time.perf_counter() - started)

    def _generate_many(self, prompts: list[Prompt], options: GenerationOptions) -> list[Generation]:
        """Through the model's ``batch`` (concurrent calls for most chat models)."""
        started = time.perf_counter()
        messages = self.chat_model.batch(
            [as_messages(p) for p in prompts], stop=list(options.stop) or None
        )
        seconds = time.perf_counter() - started
        return [self._to_generation(m, options.stop, seconds) for m in messages]

    def _stream(self, prompt: Prompt, options: GenerationOptions) -> Iterator[str]:
        """The model's own stream; text is held back only as far as a stop string could reach."""
        stops = options.stop
        hold = max((len(s) for s in stops), default=1) - 1
        text, emitted = "", 0
        for chunk in self.chat_model.stream(as_messages(prompt), stop=list(stops) or None):
            text += _text(chunk)
            cut = find_stop(text, stops)
            if cut is not None:
                if cut > emitted:
                    yield text[emitted:cut]
                return
            end = len(text) - hold
            if end > emitted:
                yield text[emitted:end]
                emitted = end
        if len(text) > emitted:
            yield text[emitted:]
