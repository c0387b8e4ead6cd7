"""Test helpers shipped with the package: a tiny randomly initialised causal LM built offline
(seconds, no hub), and the contract every Generator backend must meet."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

TINY_WORDS = [
    "the",
    "capital",
    "of",
    "france",
    "is",
    "paris",
    ".",
    "what",
    "is",
    "a",
    "city",
    "?",
    "answer",
    "in",
    "one",
    "word",
    "rivers",
    "flow",
    "to",
    "sea",
    "and",
    "mountains",
    "rise",
    "above",
    "clouds",
    "while",
    "people",
    "read",
    "books",
]
TINY_SPECIAL = ("<pad>", "<unk>", "<bos>", "<eos>", "<|system|>", "<|user|>", "<|assistant|>")
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def make_tiny_causal_lm(folder: str | Path, *, seed: int = 0, init_range: float = 0.5) -> Path:
    """Save a 2-layer Llama (hidden size 32) and its word-level tokenizer to ``folder``.

    Vocabulary: the special tokens, then the distinct words of :data:`TINY_WORDS` (35 tokens). A large
    ``init_range`` makes next-token distributions peaked rather than near uniform.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys((*TINY_SPECIAL, *TINY_WORDS)))}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<bos>",
        eos_token="<eos>",
        additional_special_tokens=["<|system|>", "<|user|>", "<|assistant|>"],
    )
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        initializer_range=init_range,
        tie_word_embeddings=True,
        pad_token_id=vocab["<pad>"],
        bos_token_id=vocab["<bos>"],
        eos_token_id=vocab["<eos>"],
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def check_generator(
    generator: Any,
    prompts: Sequence[str] = ("what is the capital of france ?", "rivers flow to the sea"),
    *,
    max_new_tokens: int = 8,
) -> None:
    """The contract every Generator backend meets (greedy decoding must be deterministic).

    Raises AssertionError naming the broken rule: a Generation of the right shape whose steps
    are well-formed probabilities; chat messages accepted; ``stream`` pieces join to the
    generated text; ``generate_many`` keeps the order and matches ``generate``; ``best_prefix``
    gives the same prefixes and finishes the chosen answer as ``generate`` would; bad
    parameters raise ValueError.
    """
    import math

    from rag.types import Generation, TokenStep

    first = generator.generate(prompts[0], max_new_tokens=max_new_tokens)
    _expect(isinstance(first, Generation), "generate must return a Generation")
    _expect(isinstance(first.text, str), "Generation.text must be a str")
    _expect(bool(first.finish_reason), "Generation.finish_reason must be set")
    for step in first.steps:
        _expect(isinstance(step, TokenStep), "steps must be TokenSteps")
        _expect(math.isfinite(step.logprob) and step.logprob <= 1e-6, "logprob must be <= 0")
        top = list(step.top_logprobs)
        _expect(top == sorted(top, reverse=True), "top_logprobs must be sorted best first")
        _expect(len(step.top_tokens) == len(top), "top_tokens and top_logprobs must line up")
        if step.exact:
            v = step.vocab_size or 0
            _expect(v > 0, "an exact step must know its vocab_size")
            _expect(-1e-6 <= step.entropy <= math.log(v) + 1e-6, "entropy must lie in [0, log V]")
            _expect(1 / v - 1e-6 <= step.sum_sq <= 1 + 1e-6, "sum_sq must lie in [1/V, 1]")
            _expect(step.kl_uniform >= -1e-6, "KL(U || p) must be >= 0")

    chat = generator.generate([{"role": "user", "content": prompts[0]}], max_new_tokens=2)
    _expect(isinstance(chat, Generation), "chat messages must be accepted")

    streamed = "".join(generator.stream(prompts[0], max_new_tokens=max_new_tokens))
    _expect(streamed == first.text, f"stream gave {streamed!r}, generate {first.text!r}")

    many = generator.generate_many(list(prompts), max_new_tokens=max_new_tokens)
    singles = [first.text] + [
        generator.generate(p, max_new_tokens=max_new_tokens).text for p in prompts[1:]
    ]
    _expect([g.text for g in many] == singles, "generate_many must match generate, in order")

    last = len(prompts) - 1
    choice = generator.best_prefix(
        list(prompts), lambda gens: last, prefix_tokens=2, max_new_tokens=max_new_tokens
    )
    short = [generator.generate(p, max_new_tokens=2).text for p in prompts]
    _expect([g.text for g in choice.prefixes] == short, "best_prefix's prefixes must match")
    _expect(choice.chosen == last, "best_prefix must keep the index choose returned")
    final = choice.final.text if choice.final is not None else None
    _expect(final == singles[last], f"best_prefix finished {final!r}, generate {singles[last]!r}")

    for bad in ({"max_new_tokens": 0}, {"max_new_tokens": 4, "temperature": -1.0}):
        try:
            generator.generate(prompts[0], **bad)
        except ValueError:
            continue
        raise AssertionError(f"generate({bad}) must raise ValueError")
