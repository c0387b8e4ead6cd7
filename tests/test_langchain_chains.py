"""Our strategies as LangChain Runnables after ordinary prompts (string, dict and PromptValue
inputs; batch, stream, ainvoke), and the chain factories, offline: a real small index (hash +
BM25), a deterministic fake generator, and langchain-core's fake chat models."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("langchain_core")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.language_models.fake_chat_models import (  # noqa: E402
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, HumanMessage  # noqa: E402
from langchain_core.prompt_values import ChatPromptValue, StringPromptValue  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate  # noqa: E402
from langchain_core.runnables import RunnableLambda  # noqa: E402

from rag.adapters.langchain import as_langchain_retriever  # noqa: E402
from rag.adapters.langchain_chains import (  # noqa: E402
    format_docs,
    retrieval_chain,
    strategy_chain,
)
from rag.adapters.langchain_runnables import as_runnable, question_of  # noqa: E402
from rag.answering import ConfidentRAG, MixtureRAG, Strategy, VanillaRAG  # noqa: E402
from rag.generation import EchoGenerator  # noqa: E402
from rag.index import Index  # noqa: E402
from rag.types import Answer  # noqa: E402
from tests.adapter_corpus import index_fixture  # noqa: E402

QUESTION = "why does volcanic ash ground aircraft?"
NAMES = ("vanilla", "mixture", "confident", "fast")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    yield from index_fixture(tmp_path_factory)


def fake_generator() -> EchoGenerator:
    """Answers "jet engines [n]" citing the source holding the ash passage, confidently."""

    def text(prompt: str) -> str:
        for line in prompt.splitlines():
            if "melts inside jet engines" in line and line.startswith("["):
                return f"it melts in jet engines {line.split(']')[0]}]"
        return "no idea"

    def confidence(prompt: str) -> float:
        return 0.9 if "jet engines" in prompt else 0.3

    return EchoGenerator(text, confidence=confidence)


def make(name: str, index: Index) -> Strategy:
    retrievers = [index.retriever("hash"), index.retriever("bm25")]
    generator = fake_generator()
    if name == "vanilla":
        return VanillaRAG(generator, retrievers[0], k=3)
    if name == "mixture":
        return MixtureRAG(generator, retrievers, k=3)
    return ConfidentRAG(generator, retrievers, k=3, mode="fast" if name == "fast" else "full")


def inputs() -> list[Any]:
    chat = ChatPromptTemplate.from_messages(
        [("system", "You answer questions about nature."), ("human", "{question}")]
    )
    return [
        QUESTION,
        {"question": QUESTION},
        {"input": QUESTION, "chat_history": []},
        StringPromptValue(text=QUESTION),
        chat.invoke({"question": QUESTION}),
        ChatPromptValue(
            messages=[HumanMessage("earlier question"), AIMessage("hm"), HumanMessage(QUESTION)]
        ),
    ]


def test_question_of_every_input_kind() -> None:
    assert [question_of(value) for value in inputs()] == [QUESTION] * len(inputs())
    blocks = HumanMessage(content=[{"type": "text", "text": "why "}, {"type": "text", "text": "?"}])
    assert question_of([AIMessage("x"), blocks]) == "why ?"
    for bad in (3, {"query": QUESTION}, ChatPromptValue(messages=[AIMessage("no human")])):
        with pytest.raises(TypeError, match="expected a question"):
            question_of(bad)


@pytest.mark.parametrize("name", NAMES)
def test_each_strategy_accepts_string_dict_and_prompt_values(name: str, index: Index) -> None:
    runnable = as_runnable(make(name, index))
    answers = [runnable.invoke(value) for value in inputs()]
    assert all(isinstance(a, Answer) for a in answers)
    assert {a.question for a in answers} == {QUESTION}
    assert {a.text for a in answers} == {answers[0].text}
    assert "jet engines" in answers[0].text
    cited = [c for c in answers[0].citations if c.cited]
    assert cited and cited[0].source.endswith("volcano.md")


@pytest.mark.parametrize("name", NAMES)
def test_each_strategy_follows_a_prompt_template(name: str, index: Index) -> None:
    chat = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{question}")])
    text = (chat | as_runnable(make(name, index), output="text")).invoke({"question": QUESTION})
    plain = PromptTemplate.from_template("{question}") | as_runnable(make(name, index), "dict")
    assert text.startswith("it melts in jet engines [")
    assert plain.invoke(QUESTION)["text"] == text


@pytest.mark.parametrize("name", NAMES)
def test_batch_stream_and_ainvoke(name: str, index: Index) -> None:
    runnable = as_runnable(make(name, index), output="text")
    one = runnable.invoke(QUESTION)
    assert runnable.batch([QUESTION, {"question": "how do bees tell the hive?"}])[0] == one
    kept = runnable.batch([QUESTION, 42], return_exceptions=True)
    assert kept[0] == one and isinstance(kept[1], TypeError)
    pieces = list(runnable.stream(StringPromptValue(text=QUESTION)))
    assert "".join(pieces) == one
    if name == "vanilla":  # one candidate without a threshold streams token by token
        assert len(pieces) > 1
    assert asyncio.run(runnable.ainvoke({"question": QUESTION})) == one
    assert asyncio.run(runnable.abatch([QUESTION])) == [one]


def test_strategy_chain_composes_prompt_strategy_and_parser(index: Index) -> None:
    chat = ChatPromptTemplate.from_messages([("system", "Nature quiz."), ("human", "{question}")])
    chain = strategy_chain(make("vanilla", index), chat)
    text = chain.invoke({"question": QUESTION})
    assert text.startswith("it melts in jet engines [")
    assert "".join(chain.stream({"question": QUESTION})) == text
    assert chain.batch([{"question": QUESTION}]) == [text]
    upper = strategy_chain(make("confident", index), parser=RunnableLambda(str.upper))
    assert upper.invoke(QUESTION) == text.upper()
    assert asyncio.run(upper.ainvoke(QUESTION)) == text.upper()


def test_format_docs_cites_source_page_and_section(index: Index) -> None:
    docs = as_langchain_retriever(index.retriever(), k=1).invoke("glaciers carve valleys")
    assert format_docs(docs).startswith("[1] coast.pdf, p. 3, Ice\nGlaciers carve")
    bare = [Document("a text"), Document("b", metadata={"source": "/x/n.md", "page": 0})]
    assert format_docs(bare) == "[1]\na text\n\n[2] n.md, p. 1\nb"


def test_retrieval_chain_with_a_fake_chat_model(index: Index) -> None:
    seen: list[str] = []

    def record(prompt: Any) -> Any:
        seen.append(prompt.to_string())
        return prompt

    llm = FakeListChatModel(responses=["Ash melts in jet engines [1]."])
    chain = retrieval_chain(index.retriever(), RunnableLambda(record) | llm, k=2)
    assert chain.invoke(QUESTION) == "Ash melts in jet engines [1]."
    assert "[1] volcano.md, Volcanoes > Ash\n## Ash\n\nVolcanic ash grounds" in seen[0]
    assert f"Question: {QUESTION}" in seen[0] and "[2]" in seen[0] and "[3]" not in seen[0]
    for value in ({"question": QUESTION}, StringPromptValue(text=QUESTION)):
        assert chain.invoke(value) == "Ash melts in jet engines [1]."
    assert seen[-1] == seen[0]
    assert asyncio.run(chain.ainvoke(QUESTION)) == "Ash melts in jet engines [1]."
    assert chain.batch([QUESTION, QUESTION]) == ["Ash melts in jet engines [1]."] * 2


def test_retrieval_chain_streams_and_returns_sources(index: Index) -> None:
    streaming = GenericFakeChatModel(messages=iter(["Honey bees dance."]))
    lc = as_langchain_retriever(index.retriever(), k=3)  # any LangChain BaseRetriever
    chain = retrieval_chain(lc, streaming)
    pieces = list(chain.stream("why do bees dance?"))
    assert len(pieces) > 1 and "".join(pieces) == "Honey bees dance."
    prompt = PromptTemplate.from_template("{context}\nQ: {question}\nA:")
    llm = FakeListChatModel(responses=["They tell the hive where flowers are [1]."])
    full = retrieval_chain(lc, llm, prompt, return_sources=True).invoke("why do bees dance?")
    assert set(full) == {"question", "docs", "answer"}
    assert full["question"] == "why do bees dance?"
    assert full["docs"][0].metadata["source"].endswith("bees.md")
    assert full["answer"] == "They tell the hive where flowers are [1]."
