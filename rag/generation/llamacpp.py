"""GGUF models through llama.cpp (llama-cpp-python, the ``llamacpp`` extra), with our own
eval/sample loop so every step's full next-token distribution is seen.

``logits_all=False`` keeps decoding at full speed (``True`` is ~8x slower on small models): after
each ``eval`` only the last position's logits are computed, and they are read straight from the
context with ``llama_get_logits_ith(ctx, -1)`` (llama-cpp-python 0.3 no longer copies them into
``Llama.scores`` unless ``logits_all=True``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator as PyGenerator
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rag.generation._decoding import (
    SequenceState,
    choose_token,
    drain,
    log_softmax,
    step_from_logprobs,
)
from rag.generation.base import Generator, Prompt, as_messages
from rag.generation.models import smollm2_gguf_path
from rag.generation.options import GenerationOptions
from rag.types import Generation

LLAMACPP_EXTRA = "'situated-rag[llamacpp]'"

_LOADED: dict[tuple[str, int, int | None], Any] = {}
_LOAD_LOCK = threading.Lock()


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ImportError(
            "LlamaCppGenerator needs llama-cpp-python (it compiles llama.cpp on install, which "
            f"takes ~10 minutes): pip install {LLAMACPP_EXTRA}"
        ) from exc
    return llama_cpp


class LlamaCppGenerator(Generator):
    """A GGUF model run by llama.cpp; ``model_path=None`` is SmolLM2-135M-Instruct.

    The model's own chat template (GGUF metadata ``tokenizer.chat_template``) formats prompts
    when present (``chat_template=False`` feeds a string as is). Greedy at ``temperature=0``, else
    sampling with a numpy generator seeded by ``seed``; confidence summaries describe the
    untempered distribution. One model instance is shared per path, context size and thread
    count; calls on it are serialised (a llama.cpp context decodes one sequence at a time).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        chat_template: bool | None = None,
        seed: int = 0,
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else None
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.chat_template = chat_template
        self.rng = np.random.default_rng(seed)
        path_name = self.model_path.name if self.model_path else "SmolLM2-135M-Instruct"
        self.name = path_name.removesuffix(".gguf")
        self._lock = threading.Lock()

    def load(self) -> Any:
        """The ``llama_cpp.Llama`` instance (loaded once per process)."""
        llama_cpp = _import_llama_cpp()
        path = self.model_path or smollm2_gguf_path()
        key = (str(path), self.n_ctx, self.n_threads)
        with _LOAD_LOCK:
            if key not in _LOADED:
                _LOADED[key] = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    logits_all=False,
                    verbose=False,
                )
            return _LOADED[key]

    def encode_prompt(self, llm: Any, prompt: Prompt) -> tuple[list[int], tuple[str, ...]]:
        """Prompt token ids, and the template's own stop strings (e.g. its end-of-turn token)."""
        template = (llm.metadata or {}).get("tokenizer.chat_template")
        use_chat = bool(template) if self.chat_template is None else self.chat_template
        if use_chat:
            if not template:
                raise ValueError(f"{self.name} has no chat template in its GGUF metadata")
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            def special(token_id: int) -> str:
                if token_id < 0:
                    return ""
                return llm.detokenize([token_id], special=True).decode("utf-8", "replace")

            formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=special(llm.token_eos()),
                bos_token=special(llm.token_bos()),
            )
            result = formatter(messages=as_messages(prompt))
            ids = llm.tokenize(result.prompt.encode("utf-8"), add_bos=False, special=True)
            stops = result.stop if isinstance(result.stop, list) else [result.stop]
            return list(ids), tuple(s for s in stops if s)
        if not isinstance(prompt, str):
            raise ValueError(f"{self.name} is used without a chat template: pass a string")
        return list(llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)), ()

    def _decode(
        self, prompt: Prompt, options: GenerationOptions
    ) -> PyGenerator[str, None, Generation]:
        max_new_tokens = options.max_new_tokens
        llama_cpp = _import_llama_cpp()
        llm = self.load()
        started = time.perf_counter()
        ids, template_stops = self.encode_prompt(llm, prompt)
        if len(ids) + max_new_tokens > self.n_ctx:
            raise ValueError(
                f"prompt ({len(ids)} tokens) + max_new_tokens ({max_new_tokens}) exceed "
                f"n_ctx={self.n_ctx}; build the generator with a larger n_ctx"
            )
        eos = {llm.token_eos()}
        for s in template_stops:  # an end-of-turn token that differs from EOS ends the answer too
            as_ids = llm.tokenize(s.encode("utf-8"), add_bos=False, special=True)
            if len(as_ids) == 1:
                eos.add(int(as_ids[0]))
        n_vocab = llm.n_vocab()

        def decode_one(token_id: int) -> str:
            return llm.detokenize([token_id]).decode("utf-8", "replace")

        state = SequenceState(options.stop, options.stop_on_repeat)
        with self._lock:
            llm.reset()
            llm.eval(ids)
            for step in range(max_new_tokens):
                pointer = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
                logits = np.ctypeslib.as_array(pointer, shape=(n_vocab,)).copy()
                logprobs = log_softmax(logits)
                token_id = choose_token(logprobs, options.temperature, self.rng)
                if token_id in eos:
                    state.finish("stop")
                else:
                    state.add(
                        token_id,
                        step_from_logprobs(logprobs, token_id, options.top_k_logprobs, decode_one),
                        llm.detokenize(state.ids + [token_id]).decode("utf-8", "replace"),
                    )
                    if step == max_new_tokens - 1:
                        state.finish("length")
                piece = state.take_piece()
                if piece:
                    yield piece
                if state.done:
                    break
                llm.eval([token_id])
        return state.result(self.name, len(ids), time.perf_counter() - started)

    def _generate(self, prompt: Prompt, options: GenerationOptions) -> Generation:
        return drain(self._decode(prompt, options))

    def _stream(self, prompt: Prompt, options: GenerationOptions) -> Iterator[str]:
        yield from self._decode(prompt, options)
