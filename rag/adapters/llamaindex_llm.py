"""A LlamaIndex LLM over one of our generators (imports llama-index-core).

    from rag.adapters.llamaindex_llm import RagLLM
    llm = RagLLM(TransformersGenerator())            # the local SmolLM2, offline
    index.as_query_engine(llm=llm).query("why do bees dance?")

So LlamaIndex's query engines can run on the toolkit's local backends (transformers,
llama.cpp, an OpenAI-compatible server, the echo fake). Chat messages go to the generator as
chat messages (its chat template applies); completions as a plain prompt. Greedy decoding, at
most ``max_new_tokens`` tokens; the generation (with its per-token distributions) is in
``response.raw["generation"]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    CustomLLM,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback

from rag.generation.base import Generator, Prompt

ROLES = {MessageRole.SYSTEM: "system", MessageRole.ASSISTANT: "assistant"}


def as_prompt_messages(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """LlamaIndex messages as ours (system and assistant kept, every other role a user)."""
    return [{"role": ROLES.get(m.role, "user"), "content": m.content or ""} for m in messages]


class RagLLM(CustomLLM):
    """LlamaIndex view of a :class:`rag.generation.base.Generator`."""

    max_new_tokens: int = Field(default=256, gt=0, description="Tokens per answer at most.")
    context_window: int = Field(default=2048, gt=0, description="The model's context, tokens.")
    _generator: Generator = PrivateAttr()

    def __init__(
        self,
        generator: Generator,
        *,
        max_new_tokens: int = 256,
        context_window: int = 2048,
        **kwargs: Any,
    ) -> None:
        super().__init__(max_new_tokens=max_new_tokens, context_window=context_window, **kwargs)
        self._generator = generator

    @classmethod
    def class_name(cls) -> str:
        return "RagLLM"

    @property
    def generator(self) -> Generator:
        return self._generator

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window,
            num_output=self.max_new_tokens,
            model_name=self._generator.name,
            is_chat_model=False,
        )

    def _generate(self, prompt: Prompt) -> Any:
        return self._generator.generate(prompt, max_new_tokens=self.max_new_tokens)

    def _pieces(self, prompt: Prompt) -> Any:
        return self._generator.stream(prompt, max_new_tokens=self.max_new_tokens)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        generation = self._generate(prompt)
        return CompletionResponse(text=generation.text, raw={"generation": generation})

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        def pieces() -> CompletionResponseGen:
            text = ""
            for piece in self._pieces(prompt):
                text += piece
                yield CompletionResponse(text=text, delta=piece)

        return pieces()

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        generation = self._generate(as_prompt_messages(messages))
        message = ChatMessage(role=MessageRole.ASSISTANT, content=generation.text)
        return ChatResponse(message=message, raw={"generation": generation})

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        def pieces() -> ChatResponseGen:
            text = ""
            for piece in self._pieces(as_prompt_messages(messages)):
                text += piece
                message = ChatMessage(role=MessageRole.ASSISTANT, content=text)
                yield ChatResponse(message=message, delta=piece)

        return pieces()
