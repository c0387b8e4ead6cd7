"""LangChainChatGenerator with langchain_core's fake chat models."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("langchain_core")

from langchain_core.language_models.chat_models import BaseChatModel  # noqa: E402
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402

from rag import confidence as C  # noqa: E402
from rag.generation import LangChainChatGenerator  # noqa: E402
from rag.generation.testing import check_generator  # noqa: E402

L = math.log(2)
LOGPROBS = {
    "content": [
        {
            "token": "Paris",
            "logprob": -L,
            "top_logprobs": [
                {"token": "Paris", "logprob": -L},
                {"token": " Lyon", "logprob": -2 * L},
            ],
        },
        {
            "token": ".",
            "logprob": -2 * L,
            "top_logprobs": [{"token": ".", "logprob": -2 * L}, {"token": "!", "logprob": -2 * L}],
        },
    ]
}


def fake(*texts, **metadata):
    return GenericFakeChatModel(
        messages=iter(
            [
                AIMessage(
                    content=t,
                    response_metadata=dict(metadata),
                    usage_metadata={"input_tokens": 7, "output_tokens": 2, "total_tokens": 9},
                )
                for t in texts
            ]
        )
    )


class EchoChat(BaseChatModel):
    """Answers with the last message's content reversed (a deterministic stand-in)."""

    @property
    def _llm_type(self) -> str:
        return "echo-chat"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        text = messages[-1].content[::-1]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def test_meets_the_generator_contract():
    check_generator(LangChainChatGenerator(EchoChat()))


def test_logprobs_from_response_metadata():
    model = fake("Paris.", logprobs=LOGPROBS, finish_reason="stop", model_name="fake-model")
    gen = LangChainChatGenerator(model, vocab_size=4).generate("capital of France?")
    assert gen.text == "Paris."
    assert (gen.model, gen.prompt_tokens, gen.finish_reason) == ("fake-model", 7, "stop")
    assert [s.token for s in gen.steps] == ["Paris", "."]
    assert C.self_certainty(gen) == pytest.approx(0.125 * L)
    assert C.entropy(gen) == pytest.approx(-1.875 * L)


def test_text_only_model_gives_no_steps_and_cannot_be_scored():
    gen = LangChainChatGenerator(fake("Paris is the capital.")).generate("q")
    assert gen.text == "Paris is the capital." and gen.steps == []
    with pytest.raises(ValueError, match="without token steps"):
        C.self_certainty(gen)


def test_stop_is_applied_even_when_the_model_ignores_it():
    model = fake("Paris.\nSecond line", logprobs=LOGPROBS)
    gen = LangChainChatGenerator(model).generate("q", stop="\n")
    assert gen.text == "Paris." and gen.finish_reason == "stop"
    stream_model = fake("Paris.\nSecond line")
    assert "".join(LangChainChatGenerator(stream_model).stream("q", stop=["\n"])) == "Paris."


def test_stream_joins_to_the_answer():
    pieces = list(LangChainChatGenerator(fake("Paris is the capital.")).stream("q"))
    assert len(pieces) > 1 and "".join(pieces) == "Paris is the capital."


def test_generate_many_keeps_the_order_and_messages_pass_through():
    gen = LangChainChatGenerator(EchoChat())
    prompts = [
        "abc",
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "xyz"}],
    ]
    assert [g.text for g in gen.generate_many(prompts)] == ["cba", "zyx"]
    assert gen.name == "EchoChat"
