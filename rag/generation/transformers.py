"""Local causal LMs through transformers, with our own decode loop so that every step's full
next-token distribution is seen (and summarised exactly for the confidence metrics); the loop
itself is in :mod:`rag.generation._torch_decoding`."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator as PyGenerator
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.generation._decoding import drain
from rag.generation._torch_decoding import Batch, Decoder
from rag.generation.base import Choose, Generator, PrefixChoice, Prompt, as_messages
from rag.generation.models import LLM_EXTRA, default_llm_path, gguf_as_transformers
from rag.generation.options import GenerationOptions
from rag.types import Generation

_LOADED: dict[tuple[str, str], tuple[Any, Any]] = {}
_LOAD_LOCK = threading.Lock()


def load_causal_lm(folder: str | Path, device: str = "cpu") -> tuple[Any, Any]:
    """(model, tokenizer) for a transformers folder or hub name, loaded once per process.

    Offline settings apply unless the user exported otherwise (see :mod:`rag.offline`).
    """
    key = (str(folder), device)
    with _LOAD_LOCK:
        if key not in _LOADED:
            from rag.offline import apply_offline_env

            apply_offline_env()
            try:
                from transformers import AutoModelForCausalLM, AutoTokenizer
            except ImportError as exc:
                raise ImportError(
                    f"TransformersGenerator needs torch and transformers: pip install {LLM_EXTRA}"
                ) from exc
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            model = AutoModelForCausalLM.from_pretrained(str(folder)).to(device).eval()
            _LOADED[key] = (model, tokenizer)
        return _LOADED[key]


class TransformersGenerator(Generator):
    """A local causal LM (any transformers folder or hub name; a GGUF file via ``gguf_file``).

    ``model_path=None`` uses the offline default, SmolLM2-135M-Instruct
    (:func:`~rag.generation.models.default_llm_path`). With ``gguf_file`` the file inside
    ``model_path`` is converted once to a cached transformers folder. The model and tokenizer
    are loaded on first use and shared by every generator for the same folder and device.

    Prompts go through the tokenizer's chat template when it has one (a string becomes one user
    message); ``chat_template=False`` feeds a string as is (base models, completion prompts).
    Decoding is greedy at ``temperature=0``, else sampling from the tempered distribution with a
    generator seeded by ``seed``; the confidence summaries always describe the untempered
    distribution. ``generate_many`` decodes up to ``batch_size`` prompts together (left padding);
    each Generation of a batch reports the batch's wall time in ``seconds``. The token prefix
    every prompt of a batch starts with (a system prompt, a first source they share) is computed
    once and its cache repeated for every row (``share_prefix=False`` turns that off).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        gguf_file: str | None = None,
        device: str = "cpu",
        *,
        chat_template: bool | None = None,
        seed: int = 0,
        batch_size: int = 8,
        share_prefix: bool = True,
    ) -> None:
        if gguf_file is not None and model_path is None:
            raise ValueError("gguf_file names a file inside model_path; give model_path too")
        self.model_path = model_path
        self.gguf_file = gguf_file
        self.device = device
        self.chat_template = chat_template
        self.batch_size = batch_size
        self.share_prefix = share_prefix
        self.seed = seed
        self._torch_rng: Any = None
        self._folder: Path | str | None = None
        if model_path is None:
            self.name = "SmolLM2-135M-Instruct"
        else:
            self.name = Path(str(gguf_file or model_path)).name.removesuffix(".gguf")

    # -- loading ------------------------------------------------------------------------------

    @property
    def folder(self) -> Path | str:
        """The transformers folder (or hub name) the model is loaded from."""
        if self._folder is None:
            if self.model_path is None:
                self._folder = default_llm_path()
            elif self.gguf_file is not None:
                self._folder = gguf_as_transformers(Path(self.model_path) / self.gguf_file)
            else:
                self._folder = self.model_path
        return self._folder

    def load(self) -> tuple[Any, Any]:
        """(model, tokenizer), loading them if this process has not yet."""
        return load_causal_lm(self.folder, self.device)

    # -- prompts ------------------------------------------------------------------------------

    def encode_prompt(self, prompt: Prompt) -> list[int]:
        """Token ids of the prompt, through the chat template when one is used."""
        _, tokenizer = self.load()
        use_chat = self.chat_template
        if use_chat is None:
            use_chat = bool(getattr(tokenizer, "chat_template", None))
        if use_chat:
            if not getattr(tokenizer, "chat_template", None):
                raise ValueError(f"the tokenizer of {self.name} has no chat template")
            text = tokenizer.apply_chat_template(
                as_messages(prompt), add_generation_prompt=True, tokenize=False
            )
            return list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if not isinstance(prompt, str):
            raise ValueError(
                f"{self.name} is used without a chat template: pass the prompt as a string"
            )
        return list(tokenizer(prompt)["input_ids"])

    # -- decoding -----------------------------------------------------------------------------

    def _start(self, prompts: list[Prompt], options: GenerationOptions) -> tuple[Decoder, Batch]:
        """A decoder over the loaded model, and the batch of ``prompts`` encoded and padded."""
        import torch

        model, tokenizer = self.load()
        if self._torch_rng is None:
            self._torch_rng = torch.Generator().manual_seed(self.seed)
        decoder = Decoder(model, tokenizer, self.device, self._torch_rng)
        started = time.perf_counter()
        encoded = [self.encode_prompt(p) for p in prompts]
        return decoder, decoder.start(
            encoded, options.stop, self.share_prefix, started, options.stop_on_repeat
        )

    def _decode(
        self, prompts: list[Prompt], options: GenerationOptions
    ) -> PyGenerator[tuple[int, str], None, list[Generation]]:
        """Decode a batch; yields ``(row, text piece)`` as text settles, returns the Generations."""
        decoder, batch = self._start(prompts, options)
        yield from decoder.run(
            batch, options.max_new_tokens, options.temperature, options.top_k_logprobs
        )
        return batch.results(self.name)

    # -- the role -----------------------------------------------------------------------------

    def _generate(self, prompt: Prompt, options: GenerationOptions) -> Generation:
        return drain(self._decode([prompt], options))[0]

    def _generate_many(self, prompts: list[Prompt], options: GenerationOptions) -> list[Generation]:
        """Decodes ``batch_size`` prompts at a time (one forward pass per step for the batch)."""
        results: list[Generation] = []
        for i in range(0, len(prompts), self.batch_size):
            results += drain(self._decode(prompts[i : i + self.batch_size], options))
        return results

    def _best_prefix(
        self,
        prompts: list[Prompt],
        choose: Choose,
        prefix: GenerationOptions,
        options: GenerationOptions,
    ) -> PrefixChoice:
        """The prefixes are decoded as one batch; the chosen row keeps its key-value cache and
        goes on from its last prefix token, so finishing it costs only the remaining tokens."""
        if len(prompts) > self.batch_size:
            return super()._best_prefix(prompts, choose, prefix, options)
        decoder, batch = self._start(prompts, prefix)
        k = options.top_k_logprobs
        drain(decoder.run(batch, prefix.max_new_tokens, 0.0, k))
        prefixes = batch.results(self.name)
        chosen = choose(prefixes)
        if chosen is None:
            return PrefixChoice(prefixes, None, None)
        if (
            prefixes[chosen].finish_reason != "length"
            or prefix.max_new_tokens >= options.max_new_tokens
        ):
            return PrefixChoice(prefixes, chosen, prefixes[chosen])
        if not hasattr(batch.cache, "batch_select_indices"):  # an old cache: start over
            return PrefixChoice(prefixes, chosen, self._generate(prompts[chosen], options))
        batch.keep(chosen)
        batch.states[0].finish_reason = None  # the prefix's "length" was not the answer's end
        drain(decoder.run(batch, options.max_new_tokens, 0.0, k))
        return PrefixChoice(prefixes, chosen, batch.results(self.name)[0])

    def _stream(self, prompt: Prompt, options: GenerationOptions) -> Iterator[str]:
        for _, piece in self._decode([prompt], options):
            yield piece
