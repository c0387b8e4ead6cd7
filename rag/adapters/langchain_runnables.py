"""Our answering strategies as LangChain Runnables (thin; LangChain imported lazily).

    from rag.adapters.langchain_runnables import as_runnable
    chain = as_runnable(ConfidentRAG(generator, retrievers))       # str -> Answer
    chain.invoke("who wrote Persuasion?").text
    text = as_runnable(strategy, output="text")                     # str -> str, streams
    for piece in text.stream("who wrote Persuasion?"): print(piece, end="")

The input is the question, or a dict with a ``"question"`` key (so a runnable can follow a
prompt-building step in a chain). ``batch`` goes through the strategy's ``answer_many``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from langchain_core.runnables import Runnable

    from rag.answering.strategy import Strategy

Output = Literal["answer", "text", "dict"]


def question_of(value: Any) -> str:
    """The question in a runnable's input: a string, or a mapping's ``"question"``."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("question"), str):
        return value["question"]
    raise TypeError(f"expected a question string or {{'question': str}}, got {type(value)!r}")


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
            answers = self.strategy.answer_many([question_of(i) for i in inputs])
            return [self._shape(a) for a in answers]

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
