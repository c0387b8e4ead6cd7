"""LCEL chain factories over our retrievers and strategies (imports langchain-core).

    from rag.adapters.langchain_chains import retrieval_chain, strategy_chain
    chain = retrieval_chain(index.retriever(), ChatOllama(model="qwen2.5"))  # any chat model
    chain.invoke("why do bees dance?")                                        # -> str
    strategy_chain(ConfidentRAG(generator, retrievers), prompt).invoke({"question": "..."})

``retrieval_chain`` is the usual LangChain RAG recipe, ``{"context": retriever | format_docs,
"question": passthrough} | prompt | llm | StrOutputParser()``, for a model LangChain drives;
``strategy_chain`` puts a prompt before one of our strategies (which retrieves and generates
itself) and an output parser after it. Both accept a string, a ``{"question"|"input": ...}``
dict or a PromptValue (:func:`rag.adapters.langchain_runnables.question_of`).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda, RunnableParallel, RunnablePassthrough

from rag.adapters.langchain import as_langchain_retriever
from rag.adapters.langchain_runnables import as_runnable, question_of
from rag.base import Retriever

if TYPE_CHECKING:
    from langchain_core.prompts import BasePromptTemplate

    from rag.answering.strategy import Strategy

SYSTEM = (
    "Answer the question using only the numbered sources. Reply briefly, then cite the sources "
    "you used like [1]. If the sources do not hold the answer, say you do not know."
)
DEFAULT_PROMPT = ChatPromptTemplate.from_messages(
    [("system", SYSTEM), ("human", "Sources:\n{context}\n\nQuestion: {question}")]
)


def cite(metadata: dict[str, Any]) -> str:
    """``"volcano.md, p. 3, Volcanoes > Ash"``: where a document comes from, as printed (the
    page label, else the 0-based ``page`` plus one), so an answer's ``[n]`` can be checked."""
    parts = []
    source = metadata.get("source")
    if isinstance(source, str) and source:
        parts.append(PurePath(source).name or source)
    label = metadata.get("page_label")
    page = metadata.get("page")
    if isinstance(label, str) and label:
        parts.append(f"p. {label}")
    elif isinstance(page, int) and not isinstance(page, bool):
        parts.append(f"p. {page + 1}")
    section = metadata.get("section")
    if isinstance(section, str) and section:
        parts.append(section)
    return ", ".join(parts)


def format_docs(docs: Sequence[Document]) -> str:
    """Documents as numbered sources, ``[n] citation`` then the text, blank-line separated."""
    blocks = []
    for n, doc in enumerate(docs, start=1):
        where = cite(doc.metadata)
        head = f"[{n}] {where}" if where else f"[{n}]"
        blocks.append(f"{head}\n{doc.page_content.strip()}")
    return "\n\n".join(blocks)


def _lc_retriever(retriever: Retriever | Runnable, k: int) -> Runnable:
    """Ours wrapped (``k`` documents); a LangChain retriever or any runnable as it is."""
    if isinstance(retriever, Runnable):
        return retriever
    if isinstance(retriever, Retriever) or hasattr(retriever, "retrieve"):
        return as_langchain_retriever(retriever, k=k)
    raise TypeError(f"expected a rag Retriever or a LangChain retriever, got {type(retriever)!r}")


def retrieval_chain(
    retriever: Retriever | BaseRetriever | Runnable,
    llm: Runnable,
    prompt: BasePromptTemplate | None = None,
    *,
    k: int = 4,
    parser: Runnable | None = None,
    return_sources: bool = False,
) -> Runnable:
    """The LCEL RAG chain: retrieve, format the documents (:func:`format_docs`), fill ``prompt``
    (``{context}`` and ``{question}``; default :data:`DEFAULT_PROMPT`), call ``llm``, parse
    (default ``StrOutputParser``). ``return_sources`` returns ``{"question", "docs",
    "answer"}`` instead of the answer alone, so the cited documents stay at hand."""
    docs = _lc_retriever(retriever, k)
    answer = (prompt or DEFAULT_PROMPT) | llm | (parser or StrOutputParser())
    question = RunnableLambda(question_of).with_config(run_name="question")
    if not return_sources:
        fill = RunnableParallel(context=docs | format_docs, question=RunnablePassthrough())
        return (question | fill | answer).with_config(run_name="rag-retrieval-chain")
    fill = {
        "context": itemgetter("docs") | RunnableLambda(format_docs),
        "question": itemgetter("question"),
    }
    found = RunnableParallel(docs=docs, question=RunnablePassthrough())
    chain = question | found | RunnablePassthrough.assign(answer=fill | answer)
    return chain.with_config(run_name="rag-retrieval-chain")


def strategy_chain(
    strategy: Strategy,
    prompt: BasePromptTemplate | Runnable | None = None,
    *,
    parser: Runnable | None = None,
) -> Runnable:
    """``prompt | strategy | parser``: ``prompt`` shapes the question (the strategy reads a
    chat prompt's last human message), the strategy retrieves and answers, ``parser`` (default
    ``StrOutputParser``) post-processes its text; streams when the strategy streams."""
    steps: list[Runnable] = [] if prompt is None else [prompt]
    steps += [as_runnable(strategy, output="text"), parser or StrOutputParser()]
    chain = steps[0]
    for step in steps[1:]:
        chain = chain | step
    return chain.with_config(run_name=f"rag-{strategy.name}-chain")
