"""Local causal LMs through transformers, with our own decode loop so that every step's full
next-token distribution is seen (and summarised exactly for the confidence metrics)."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.generation._decoding import SequenceState
from rag.generation._decoding import drain as _drain
from rag.generation.base import (
    Generator,
    PrefixChoice,
    Prompt,
    as_messages,
    check_params,
    normalise_stop,
)
from rag.generation.models import LLM_EXTRA, default_llm_path, gguf_as_transformers
from rag.generation.types import Generation, TokenStep

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


def _last_logits_only(model: Any) -> dict[str, int]:
    """``logits_to_keep=1`` where the model accepts it: the prompt pass then computes one row of
    logits instead of one per prompt token (prompt length x vocabulary floats)."""
    accepts = "logits_to_keep" in inspect.signature(model.forward).parameters
    return {"logits_to_keep": 1} if accepts else {}


def _cache_name(model: Any) -> str:
    """The key-value cache's argument and output name: ``cache`` in recent transformers (5.2x),
    ``past_key_values`` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


MIN_SHARED_TOKENS = 8
"""Shortest common token prefix of a batch's prompts that is computed once for all of them."""


def _shared_prefix(encoded: Sequence[Sequence[int]]) -> int:
    """Tokens every prompt starts with, leaving each prompt at least one token of its own (the
    prompt pass must end on a token of every row). 0 for a single prompt."""
    if len(encoded) < 2:
        return 0
    limit = min(len(ids) for ids in encoded) - 1
    n = 0
    while n < limit and all(ids[n] == encoded[0][n] for ids in encoded):
        n += 1
    return n


def _cache_repeats() -> bool:
    """Whether this transformers' key-value cache can be repeated along the batch (4.4x+)."""
    from transformers import cache_utils

    return hasattr(getattr(cache_utils, "DynamicCache", None), "batch_repeat_interleave")


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for value in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids


@dataclass
class _Batch:
    """Prompts being decoded together: their states, what the next forward pass feeds (the
    padded prompts first, then the last chosen tokens), the attention mask and positions so
    far, the length of the token prefix every prompt shares (0: none is shared), and the
    key-value cache (None before the prompt pass)."""

    encoded: list[list[int]]
    states: list[SequenceState]
    feed: Any
    mask: Any
    positions: Any
    eos: set[int]
    pad_id: int
    started: float
    shared: int = 0
    cache: Any = None

    def keep(self, row: int) -> None:
        """Drop every row but ``row`` (its cache included) to go on decoding it alone."""
        import torch

        index = torch.tensor([row])
        self.cache.batch_select_indices(index)
        self.encoded = [self.encoded[row]]
        self.states = [self.states[row]]
        self.feed, self.mask, self.positions = (
            t[row : row + 1] for t in (self.feed, self.mask, self.positions)
        )

    def results(self, model: str) -> list[Generation]:
        seconds = time.perf_counter() - self.started
        return [
            s.result(model, len(ids), seconds)
            for s, ids in zip(self.states, self.encoded, strict=True)
        ]


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

    def _decode(
        self,
        prompts: Sequence[Prompt],
        max_new_tokens: int,
        temperature: float,
        stop: str | Sequence[str] | None,
        top_k_logprobs: int,
    ) -> Iterator[tuple[int, str]]:
        """Decode a batch; yields ``(row, text piece)`` as text settles, returns the Generations."""
        check_params(max_new_tokens, temperature, top_k_logprobs)
        batch = self._start(prompts, stop)
        yield from self._run(batch, max_new_tokens, temperature, top_k_logprobs)
        return batch.results(self.name)

    def _start(self, prompts: Sequence[Prompt], stop: str | Sequence[str] | None) -> _Batch:
        """Encode and left-pad ``prompts``; the prompt pass itself runs in :meth:`_run`."""
        import torch

        model, tokenizer = self.load()
        if self._torch_rng is None:
            self._torch_rng = torch.Generator().manual_seed(self.seed)
        started = time.perf_counter()
        encoded = [self.encode_prompt(p) for p in prompts]
        if not all(encoded):
            raise ValueError("a prompt encodes to no tokens; give some text")
        eos = _eos_ids(model, tokenizer)
        pad_id = tokenizer.pad_token_id
        if pad_id is None:
            pad_id = next(iter(eos), 0)
        shared = _shared_prefix(encoded) if self.share_prefix else 0
        if shared < MIN_SHARED_TOKENS or not _cache_repeats():
            shared = 0
        # left padding keeps every row's last token aligned; with a shared prefix the padding
        # sits between that prefix (computed once) and each prompt's own tokens
        tails = [ids[shared:] for ids in encoded]
        width = max(len(t) for t in tails)
        input_ids = torch.full((len(tails), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(tails), width), dtype=torch.long)
        for row, tail in enumerate(tails):
            input_ids[row, width - len(tail) :] = torch.tensor(tail, dtype=torch.long)
            mask[row, width - len(tail) :] = 1
        positions = (shared + mask.cumsum(-1) - 1).clamp(min=0)
        mask = torch.cat([torch.ones((len(tails), shared), dtype=torch.long), mask], dim=1)
        stops = normalise_stop(stop)
        return _Batch(
            encoded=encoded,
            states=[SequenceState(stops) for _ in encoded],
            feed=input_ids,
            mask=mask,
            positions=positions,
            eos=eos,
            pad_id=pad_id,
            started=started,
            shared=shared,
        )

    def _cache_args(self, model: Any, batch: _Batch) -> dict[str, Any]:
        """Extra arguments of the next forward pass: the cache so far; before the prompt pass,
        one row of logits per prompt and, when the prompts share a prefix, that prefix's cache
        (computed once, then repeated for every row)."""
        import torch

        cache_name = _cache_name(model)
        if batch.cache is not None:
            return {cache_name: batch.cache}
        extra: dict[str, Any] = dict(_last_logits_only(model))
        if batch.shared:
            head = torch.tensor([batch.encoded[0][: batch.shared]], dtype=torch.long)
            out = model(
                input_ids=head.to(self.device),
                attention_mask=torch.ones_like(head).to(self.device),
                position_ids=torch.arange(batch.shared)[None].to(self.device),
                use_cache=True,
                **extra,
            )
            cache = getattr(out, cache_name)
            cache.batch_repeat_interleave(len(batch.encoded))
            extra[cache_name] = cache
        return extra

    def _run(
        self, batch: _Batch, upto: int, temperature: float, top_k_logprobs: int
    ) -> Iterator[tuple[int, str]]:
        """Decode ``batch`` until every row has stopped or holds ``upto`` tokens; yields
        ``(row, text piece)``. The last chosen tokens stay in ``batch.feed``, so a later call
        (with a larger ``upto``, after :meth:`_Batch.keep`) continues where this one ended."""
        import torch

        model, tokenizer = self.load()
        cache_name = _cache_name(model)
        k = top_k_logprobs
        with torch.inference_mode():
            while True:
                out = model(
                    input_ids=batch.feed.to(self.device),
                    attention_mask=batch.mask.to(self.device),
                    position_ids=batch.positions.to(self.device),
                    use_cache=True,
                    **self._cache_args(model, batch),
                )
                batch.cache = getattr(out, cache_name)
                logits = out.logits[:, -1, :].to("cpu", torch.float64)
                logprobs = torch.log_softmax(logits, dim=-1)
                summary = _summaries(logprobs)
                chosen = self._choose(logprobs, temperature)
                top_lp, top_ids = logprobs.topk(min(k, logprobs.shape[-1]), dim=-1)
                for row, state in enumerate(batch.states):
                    if state.done:
                        continue
                    token_id = int(chosen[row])
                    if token_id in batch.eos:
                        state.finish("stop")
                    else:
                        state.add(
                            token_id,
                            _token_step(
                                tokenizer,
                                token_id,
                                logprobs[row],
                                top_lp[row],
                                top_ids[row],
                                summary[row],
                            ),
                            tokenizer.decode(state.ids + [token_id], skip_special_tokens=True),
                        )
                    if not state.done and len(state.ids) >= upto:
                        state.finish("length")
                    piece = state.take_piece()
                    if piece:
                        yield row, piece
                feed = chosen.clone()
                for row, state in enumerate(batch.states):
                    if state.done and state.finish_reason != "length":
                        feed[row] = batch.pad_id  # finished rows idle until the batch ends
                batch.feed = feed[:, None]
                n = len(batch.states)
                batch.mask = torch.cat([batch.mask, torch.ones((n, 1), dtype=torch.long)], dim=1)
                batch.positions = batch.positions[:, -1:] + 1
                if all(s.done for s in batch.states):
                    return

    def _choose(self, logprobs: Any, temperature: float) -> Any:
        import torch

        if temperature == 0:
            return logprobs.argmax(dim=-1)
        probs = torch.softmax(logprobs / temperature, dim=-1)
        return torch.multinomial(probs, 1, generator=self._torch_rng)[:, 0]

    # -- the role -----------------------------------------------------------------------------

    def generate(
        self,
        prompt: Prompt,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: str | Sequence[str] | None = None,
        top_k_logprobs: int = 5,
    ) -> Generation:
        return _drain(self._decode([prompt], max_new_tokens, temperature, stop, top_k_logprobs))[0]

    def generate_many(
        self,
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: str | Sequence[str] | None = None,
        top_k_logprobs: int = 5,
    ) -> list[Generation]:
        """Decodes ``batch_size`` prompts at a time (one forward pass per step for the batch)."""
        results: list[Generation] = []
        for i in range(0, len(prompts), self.batch_size):
            batch = prompts[i : i + self.batch_size]
            results += _drain(
                self._decode(batch, max_new_tokens, temperature, stop, top_k_logprobs)
            )
        return results

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
        """The prefixes are decoded as one batch; the chosen row keeps its key-value cache and
        goes on from its last prefix token, so finishing it costs only the remaining tokens."""
        if len(prompts) > self.batch_size:
            return super().best_prefix(
                prompts,
                choose,
                prefix_tokens=prefix_tokens,
                max_new_tokens=max_new_tokens,
                stop=stop,
                top_k_logprobs=top_k_logprobs,
            )
        check_params(max_new_tokens, 0.0, top_k_logprobs)
        n = min(prefix_tokens, max_new_tokens)
        if n < 1:
            raise ValueError(f"prefix_tokens must be >= 1, got {prefix_tokens}")
        batch = self._start(prompts, stop)
        _drain(self._run(batch, n, 0.0, top_k_logprobs))
        prefixes = batch.results(self.name)
        chosen = choose(prefixes)
        if chosen is None:
            return PrefixChoice(prefixes, None, None)
        if prefixes[chosen].finish_reason != "length" or n >= max_new_tokens:
            return PrefixChoice(prefixes, chosen, prefixes[chosen])
        if not hasattr(batch.cache, "batch_select_indices"):  # an old cache: start over
            final = self.generate(
                prompts[chosen],
                max_new_tokens=max_new_tokens,
                stop=stop,
                top_k_logprobs=top_k_logprobs,
            )
            return PrefixChoice(prefixes, chosen, final)
        batch.keep(chosen)
        batch.states[0].finish_reason = None  # the prefix's "length" was not the answer's end
        _drain(self._run(batch, max_new_tokens, 0.0, top_k_logprobs))
        return PrefixChoice(prefixes, chosen, batch.results(self.name)[0])

    def stream(
        self,
        prompt: Prompt,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        stop: str | Sequence[str] | None = None,
    ) -> Iterator[str]:
        for _, piece in self._decode([prompt], max_new_tokens, temperature, stop, 0):
            yield piece


def _summaries(logprobs: Any) -> np.ndarray:
    """(B, 3) float64: entropy, sum of squares, KL(U || p) per row of full log-probs.

    The same definitions as :func:`rag.confidence.distribution_stats` (``-inf`` entries count as
    absent), computed on the whole batch in torch.
    """
    import torch

    finite = torch.isfinite(logprobs)
    if bool(finite.all()):  # the usual case: no masked tokens
        lp, p = logprobs, logprobs.exp()
        n = torch.full(lp.shape[:-1], lp.shape[-1], dtype=lp.dtype)
    else:
        lp = torch.where(finite, logprobs, torch.zeros_like(logprobs))
        p = torch.where(finite, lp.exp(), torch.zeros_like(lp))
        n = finite.sum(dim=-1).to(lp.dtype)
    entropy = -(p * lp).sum(dim=-1)
    sum_sq = (p * p).sum(dim=-1)
    kl = -torch.log(n) - lp.sum(dim=-1) / n
    return torch.stack([entropy, sum_sq, kl], dim=-1).numpy()


def _token_step(
    tokenizer: Any,
    token_id: int,
    logprobs: Any,
    top_lp: Any,
    top_ids: Any,
    summary: np.ndarray,
) -> TokenStep:
    ids = top_ids.numpy().astype(np.int64)
    return TokenStep(
        token=tokenizer.decode([token_id]),
        token_id=token_id,
        logprob=float(logprobs[token_id]),
        top_tokens=tuple(tokenizer.decode([int(i)]) for i in ids),
        top_logprobs=top_lp.numpy().astype(np.float32),
        top_ids=ids,
        vocab_size=int(logprobs.shape[-1]),
        entropy=float(summary[0]),
        sum_sq=float(summary[1]),
        kl_uniform=float(summary[2]),
    )
