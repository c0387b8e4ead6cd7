"""Generation: prompts in, answers with per-token distributions out.

Importing this package is light (numpy only); each backend imports its framework (torch and
transformers, llama-cpp-python, LangChain) when first used. Every method of every backend takes
one :class:`GenerationOptions` (or its fields as keywords). What a generator returns
(:class:`~rag.types.Generation`, :class:`~rag.types.TokenStep`) lives in :mod:`rag.types`.
"""

from __future__ import annotations

from typing import Any

from rag.generation.base import (
    GenerationError,
    Generator,
    Message,
    PrefixChoice,
    Prompt,
    as_messages,
)
from rag.generation.echo import EchoGenerator
from rag.generation.langchain_chat import LangChainChatGenerator
from rag.generation.llamacpp import LlamaCppGenerator
from rag.generation.models import default_llm_path, smollm2_gguf_path
from rag.generation.openai_compatible import OpenAICompatibleGenerator
from rag.generation.options import GenerationOptions
from rag.generation.transformers import TransformersGenerator
from rag.types import Generation, TokenStep

GENERATORS: dict[str, type[Generator]] = {
    "transformers": TransformersGenerator,
    "llamacpp": LlamaCppGenerator,
    "openai": OpenAICompatibleGenerator,
    "langchain": LangChainChatGenerator,
    "echo": EchoGenerator,
}


def get_generator(name: str, **kwargs: Any) -> Generator:
    """Build the generator registered as ``name`` with ``kwargs``; a ValueError lists the names."""
    try:
        cls = GENERATORS[name]
    except KeyError:
        raise ValueError(
            f"unknown generator {name!r}; choose one of: {', '.join(GENERATORS)}"
        ) from None
    return cls(**kwargs)


__all__ = [
    "GENERATORS",
    "EchoGenerator",
    "Generation",
    "GenerationError",
    "GenerationOptions",
    "Generator",
    "LangChainChatGenerator",
    "LlamaCppGenerator",
    "Message",
    "OpenAICompatibleGenerator",
    "PrefixChoice",
    "Prompt",
    "TokenStep",
    "TransformersGenerator",
    "as_messages",
    "default_llm_path",
    "get_generator",
    "smollm2_gguf_path",
]
