"""Chat completions from any OpenAI-compatible HTTP server (OpenAI, vLLM, llama.cpp server,
Ollama, LM Studio), with per-token top-k log-probs; standard library only (urllib)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from rag.generation.base import GenerationError, Generator, Prompt, as_messages
from rag.generation.options import GenerationOptions
from rag.types import Generation, TokenStep


def parse_logprobs(
    content: Sequence[Mapping[str, Any]] | None, vocab_size: int | None = None
) -> list[TokenStep]:
    """TokenSteps from an OpenAI ``logprobs.content`` list.

    Each entry is ``{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob", ...}]}``.
    Servers give no token ids, so ``token_id`` / ``top_ids`` are ``None``; the full-distribution
    summaries stay ``None`` and :mod:`rag.confidence` approximates them from the top-k.
    ``-9999`` (OpenAI's value for "negligible") and other very low log-probs are kept as given.
    """
    steps = []
    for entry in content or ():
        top = sorted(entry.get("top_logprobs") or (), key=lambda t: -float(t["logprob"]))
        steps.append(
            TokenStep(
                token=str(entry["token"]),
                token_id=None,
                logprob=float(entry["logprob"]),
                top_tokens=tuple(str(t["token"]) for t in top),
                top_logprobs=np.array([float(t["logprob"]) for t in top], dtype=np.float32),
                top_ids=None,
                vocab_size=vocab_size,
            )
        )
    return steps


class OpenAICompatibleGenerator(Generator):
    """Calls ``POST {base_url}/chat/completions`` with ``logprobs: true, top_logprobs: k``.

    ``base_url`` includes the API prefix, e.g. ``http://127.0.0.1:8000/v1`` (vLLM) or
    ``https://api.openai.com/v1``. ``api_key`` is sent as a Bearer token when given (it is not
    read from the environment). ``vocab_size`` (the model's vocabulary, when known) improves the
    top-k approximation of the confidence metrics. ``generate_many`` sends up to ``concurrency``
    requests at a time (servers such as vLLM batch concurrent requests). OpenAI caps
    ``top_logprobs`` at 20 and stop strings at 4; other servers differ.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        vocab_size: int | None = None,
        concurrency: int = 1,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = model
        self.api_key = api_key
        self.timeout = timeout
        self.vocab_size = vocab_size
        self.concurrency = max(1, concurrency)
        self.extra_body = dict(extra_body or {})

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _body(self, prompt: Prompt, options: GenerationOptions, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": as_messages(prompt),
            "max_tokens": options.max_new_tokens,
            "temperature": options.temperature,
            **self.extra_body,
        }
        if options.stop:
            body["stop"] = list(options.stop)
        if stream:
            body["stream"] = True
        else:
            body["logprobs"] = True
            if options.top_k_logprobs:
                body["top_logprobs"] = options.top_k_logprobs
        return body

    def _open(self, body: dict[str, Any]) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
        )
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:500]
            raise GenerationError(
                f"{self.url} answered HTTP {exc.code} {exc.reason}: {detail}"
            ) from exc
        except urllib.error.URLError as exc:
            raise GenerationError(f"could not reach {self.url}: {exc.reason}") from exc
        except TimeoutError as exc:
            raise GenerationError(f"{self.url} did not answer within {self.timeout} s") from exc

    def _generate(self, prompt: Prompt, options: GenerationOptions) -> Generation:
        body = self._body(prompt, options, stream=False)
        started = time.perf_counter()
        with self._open(body) as response:
            raw = response.read()
        seconds = time.perf_counter() - started
        try:
            reply = json.loads(raw)
            choice = reply["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise GenerationError(
                f"{self.url} sent a reply that is not a chat completion: {raw[:300]!r}"
            ) from exc
        logprobs = choice.get("logprobs") or {}
        return Generation(
            text=text,
            steps=parse_logprobs(logprobs.get("content"), self.vocab_size),
            finish_reason=str(choice.get("finish_reason") or "stop"),
            model=str(reply.get("model") or self.model),
            prompt_tokens=(reply.get("usage") or {}).get("prompt_tokens"),
            seconds=seconds,
        )

    def _generate_many(self, prompts: list[Prompt], options: GenerationOptions) -> list[Generation]:
        """Up to ``concurrency`` requests in flight; results keep the order of ``prompts``."""
        if self.concurrency == 1 or len(prompts) < 2:
            return [self._generate(p, options) for p in prompts]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
            return list(pool.map(lambda p: self._generate(p, options), prompts))

    def _stream(self, prompt: Prompt, options: GenerationOptions) -> Iterator[str]:
        """Text deltas from a server-sent-events stream (``"stream": true``)."""
        body = self._body(prompt, options, stream=True)
        with self._open(body) as response:
            for raw_line in response:
                line = raw_line.decode("utf-8").strip()
                if not line.startswith("data:"):
                    continue
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    return
                try:
                    chunk = json.loads(data)
                except ValueError as exc:
                    raise GenerationError(
                        f"{self.url} sent a malformed event: {data[:200]!r}"
                    ) from exc
                for choice in chunk.get("choices") or ():
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        yield piece
