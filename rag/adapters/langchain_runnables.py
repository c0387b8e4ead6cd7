"""Our answering strategies as LangChain Runnables (thin; LangChain imported lazily).

    from rag.adapters.langchain_runnables import as_runnable
    chain = as_runnable(ConfidentRAG(generator, retrievers))       # str -> Answer
    chain.invoke("who wrote Persuasion?").text
    text = as_runnable(strategy, output="text")                     # str -> str, streams
    for piece in text.stream("who wrote Persuasion?"): print(piece, end="")

The input is the question: a string, a dict with a ``"question"`` (or ``"input"``) key, or a
PromptValue, so ``prompt | as_runnable(strategy)`` works after an ordinary prompt template (a
``StringPromptValue`` gives its text, a ``ChatPromptValue`` its last human message: the strategy
retrieves and builds its own prompt, so only the question is taken). ``batch`` goes through the
strategy's ``answer_many``. Chain factories are in :mod:`rag.adapters.langchain_chains`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from langchain_core.runnables import Runnable

    from rag.answering.strategy import Strategy

Output = Literal["answer", "text", "dict"]


QUESTION_KEYS = ("question", "input")


def _content_text(content: Any) -> str:
    """A message's content as text (content blocks: their text parts joined)."""
    if isinstance(content, str):
        return content
    parts = [b if isinstance(b, str) else b.get("text", "") for b in content]
    return "".join(p for p in parts if isinstance(p, str))


def _last_human(messages: Sequence[Any]) -> str | None:
    """The text of the last human message (the question a chat prompt ends with)."""
    for message in reversed(messages):
        if getattr(message, "type", None) == "human":
            return _content_text(message.content)
    return None


def _prompt_question(value: Any) -> str | None:
    """The question in a LangChain PromptValue or message list; None for anything else."""
    try:
        from langchain_core.messages import BaseMessage
        from langchain_core.prompt_values import ChatPromptValue, PromptValue
    except ImportError:  # without LangChain nothing can be a PromptValue
        return None
    if isinstance(value, ChatPromptValue):
        return _last_human(value.messages)
    if isinstance(value, PromptValue):  # StringPromptValue and any other kind
        return value.to_string()
    if isinstance(value, BaseMessage):
        return _content_text(value.content)
    if isinstance(value, Sequence) and value and all(isinstance(m, BaseMessage) for m in value):
        return _last_human(value)
    return None


def question_of(value: Any) -> str:
    """The question in a runnable's input: a string, a mapping's ``"question"`` or ``"input"``,
    a PromptValue (a chat prompt's last human message) or a list of messages."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in QUESTION_KEYS:
            if isinstance(value.get(key), str):
                return value[key]
    else:
        question = _prompt_question(value)
        if question is not None:
            return question
    raise TypeError(
        "expected a question string, {'question': str}, {'input': str} or a PromptValue "
        f"with a human message, got {type(value)!r}"
    )


def _runnable_class() -> type:
    try:
        from langchain_core.runnables import Runnable, RunnableConfig
    except ImportError as exc:
        raise ImportError(
            'the LangChain adapter needs langchain-core: pip install "situated-rag[langchain]"'
        ) from exc

    class StrategyRunnable(Runnable):
        """A :class:`~rag.answering.strategy.Strategy` as a Runnable.

        ``output="answer"`` returns the :class:`~rag.types.Answer`, ``"text"`` its
        text (and streams text pieces), ``"dict"`` its JSON-ready dict.
        """

        def __init__(self, strategy: Strategy, output: Output = "answer") -> None:
            if output not in ("answer", "text", "dict"):
                raise ValueError(f"output must be 'answer', 'text' or 'dict', got {output!r}")
            self.strategy = strategy
            self.output = output
            self.name = f"rag-{strategy.name}"

        def _shape(self, answer: Any) -> Any:
            if self.output == "text":
                return answer.text
            return answer.to_dict() if self.output == "dict" else answer

        def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
            return self._call_with_config(
                lambda q: self._shape(self.strategy.answer(question_of(q))), input, config
            )

        def batch(
            self,
            inputs: list[Any],
            config: RunnableConfig | list[RunnableConfig] | None = None,
            *,
            return_exceptions: bool = False,
            **kwargs: Any,
        ) -> list[Any]:
            if not return_exceptions:
                answers = self.strategy.answer_many([question_of(i) for i in inputs])
                return [self._shape(a) for a in answers]
            out: list[Any] = []
            for item in inputs:  # one by one, so a failure takes only its own slot
                try:
                    out.append(self._shape(self.strategy.answer(question_of(item))))
                except Exception as exc:
                    out.append(exc)
            return out

        def stream(
            self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
        ) -> Iterator[Any]:
            if self.output != "text":
                yield self.invoke(input, config)
                return
            yield from self.strategy.stream(question_of(input))

    return StrategyRunnable


_CLASS: type | None = None


def as_runnable(strategy: Strategy, output: Output = "answer") -> Runnable:
    """``strategy`` as a LangChain Runnable (see the module docstring)."""
    global _CLASS
    if _CLASS is None:
        _CLASS = _runnable_class()
    return _CLASS(strategy, output)
