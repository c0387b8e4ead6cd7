"""Answering strategies (vanilla LLM / RAG, mixture, Confident RAG full and fast) with a
deterministic fake LLM whose confidence depends on what its prompt contains."""

from __future__ import annotations

import json
import math

import pytest

from rag.answering import (
    ABSTAIN_TEXT,
    ConfidentRAG,
    MixtureRAG,
    PromptTemplate,
    VanillaLLM,
    VanillaRAG,
    make_strategy,
    select,
)
from rag.base import Retriever
from rag.confidence import METRICS
from rag.generation import EchoGenerator, Generation, Generator
from rag.types import Chunk, Hit

QUESTION = "What is the capital of France?"


def chunk(doc: str, text: str, *, page: int | None = None, section=()) -> Chunk:
    return Chunk(
        id=Chunk.make_id(doc, 0, len(text), text),
        doc_id=doc,
        text=text,
        start=10,
        end=10 + len(text),
        source=f"docs/{doc}.pdf",
        title=doc,
        section=tuple(section),
        page=page,
    )


PARIS = chunk("France", "Paris is the capital of France.", page=3, section=("Cities", "Capital"))
LYON = chunk("Lyon", "Lyon is a large city in France, known for food.")
RHONE = chunk("Rhone", "The Rhone flows through Lyon to the sea.")


class ListRetriever(Retriever):
    """Returns fixed chunks, best first."""

    def __init__(self, name: str, chunks: list[Chunk]) -> None:
        self.name = name
        self.chunks = chunks

    def retrieve(self, query: str, k: int = 10) -> list[Hit]:
        return [
            Hit(c, score=1.0 / r, rank=r, source=self.name)
            for r, c in enumerate(self.chunks[:k], start=1)
        ]


def fake_llm(**kwargs) -> EchoGenerator:
    """Says "Paris [n]" confidently when source n is the Paris passage, else "Lyon" unsure."""

    def text(prompt: str) -> str:
        for line in prompt.splitlines():
            if "Paris is the capital" in line:
                return f"Paris {line.split(']')[0]}] is the capital city"
        return "Lyon maybe the capital city"

    def confidence(prompt: str) -> float:
        return 0.95 if "Paris is the capital" in prompt else 0.4

    return EchoGenerator(text, confidence=confidence, **kwargs)


@pytest.fixture
def wrong():
    return ListRetriever("wrong", [LYON, RHONE])


@pytest.fixture
def right():
    return ListRetriever("right", [RHONE, PARIS])


def test_confident_rag_keeps_the_most_confident_candidate(wrong, right):
    answer = ConfidentRAG(fake_llm(), [wrong, right], k=2).answer(QUESTION)
    assert answer.winner == "right"
    assert answer.text == "Paris [2] is the capital city"
    assert [c.name for c in answer.candidates] == ["wrong", "right"]
    scores = [c.confidence["self_certainty"] for c in answer.candidates]
    assert scores[1] > scores[0]
    assert answer.confidence == pytest.approx(scores[1])
    assert answer.metric == "self_certainty" and not answer.abstained
    assert set(answer.candidates[0].confidence) == set(METRICS)  # every metric is inspectable


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_every_metric_prefers_the_sharper_distributions(wrong, right, metric):
    # Retriever order must not matter: the confident answer wins from either position.
    for order in ([wrong, right], [right, wrong]):
        answer = ConfidentRAG(fake_llm(), order, metric=metric, k=2).answer(QUESTION)
        assert answer.winner == "right"
        assert answer.metric == metric


def test_citations_carry_where_each_source_lies(wrong, right):
    answer = ConfidentRAG(fake_llm(), [wrong, right], k=2).answer(QUESTION)
    assert [c.n for c in answer.citations] == [1, 2]
    cited = answer.cited
    assert len(cited) == 1
    c = cited[0]
    assert (c.n, c.source, c.page, c.section) == (2, "docs/France.pdf", 3, ("Cities", "Capital"))
    assert (c.start, c.end) == (PARIS.start, PARIS.end)
    assert c.chunk_id == PARIS.id and c.text == PARIS.text and c.retriever == "right"
    assert c.location() == f"docs/France.pdf (p. 3, Cities > Capital) [{c.start}:{c.end}]"
    assert not answer.citations[0].cited


def test_abstains_below_the_threshold_and_keeps_the_candidates(wrong, right):
    confident = ConfidentRAG(fake_llm(), [wrong, right], k=2).answer(QUESTION).confidence
    answer = ConfidentRAG(fake_llm(), [wrong, right], k=2, threshold=confident + 1.0).answer(
        QUESTION
    )
    assert answer.abstained and answer.text == ABSTAIN_TEXT
    assert answer.draft == "Paris [2] is the capital city"
    assert len(answer.candidates) == 2 and answer.winner == "right"
    kept = ConfidentRAG(fake_llm(), [wrong, right], k=2, threshold=confident - 1.0).answer(QUESTION)
    assert not kept.abstained and kept.text == kept.draft


def test_vanilla_rag_uses_one_retriever_and_vanilla_llm_none(wrong, right):
    llm = fake_llm()
    answer = VanillaRAG(llm, wrong, k=2).answer(QUESTION)
    assert answer.text == "Lyon maybe the capital city"
    assert [c.chunk_id for c in answer.citations] == [LYON.id, RHONE.id]
    assert len(llm.calls) == 1
    closed = VanillaLLM(llm).answer(QUESTION)
    assert closed.citations == [] and closed.winner == "llm"
    prompt_text = json.dumps(llm.calls[-1])
    assert "Sources" not in prompt_text and QUESTION in prompt_text


def test_mixture_rag_answers_once_from_fused_hits(wrong, right):
    llm = fake_llm()
    answer = MixtureRAG(llm, [wrong, right], k=3).answer(QUESTION)
    assert len(llm.calls) == 1 and len(answer.candidates) == 1
    fused = {c.chunk_id for c in answer.citations}
    assert fused <= {LYON.id, RHONE.id, PARIS.id} and len(fused) == 3
    assert answer.winner.startswith("fusion:")


def test_identical_prompts_are_generated_once(right):
    twin = ListRetriever("twin", list(right.chunks))
    llm = fake_llm()
    answer = ConfidentRAG(llm, [right, twin], k=2).answer(QUESTION)
    assert len(llm.calls) == 1
    assert answer.candidates[0].text == answer.candidates[1].text
    assert answer.winner == "right"  # a tie goes to the first retriever


def test_fast_mode_scores_prefixes_and_finishes_only_the_winner(wrong, right):
    llm = fake_llm()
    strategy = ConfidentRAG(llm, [wrong, right], k=2, mode="fast", prefix_tokens=2)
    answer = strategy.answer(QUESTION)
    assert answer.strategy == "confident-fast"
    assert answer.winner == "right"
    assert answer.text == "Paris [2] is the capital city"
    assert len(llm.calls) == 3  # two prefixes, then the winner in full
    loser, winner = answer.candidates
    assert loser.generation.completion_tokens == 2 and not loser.complete
    assert loser.text == "Lyon maybe"
    assert winner.complete and winner.generation.completion_tokens == 2


def test_fast_mode_does_not_regenerate_a_winner_that_ended_in_its_prefix(wrong, right):
    llm = fake_llm()
    answer = ConfidentRAG(llm, [wrong, right], k=2, mode="fast", prefix_tokens=16).answer(QUESTION)
    assert len(llm.calls) == 2
    assert answer.text == "Paris [2] is the capital city"


def test_fast_mode_abstains_without_finishing(wrong, right):
    llm = fake_llm()
    answer = ConfidentRAG(
        llm, [wrong, right], k=2, mode="fast", prefix_tokens=2, threshold=1e9
    ).answer(QUESTION)
    assert answer.abstained and answer.text == ABSTAIN_TEXT
    assert len(llm.calls) == 2


def test_streaming_a_single_candidate_yields_its_text_piece_by_piece(wrong):
    stream = VanillaRAG(fake_llm(), wrong, k=2).stream(QUESTION)
    pieces = list(stream)
    assert len(pieces) > 1
    assert "".join(pieces).strip() == stream.answer.text == "Lyon maybe the capital city"


def test_streaming_confident_rag_gives_the_chosen_answer(wrong, right):
    for mode in ("full", "fast"):
        stream = ConfidentRAG(fake_llm(), [wrong, right], k=2, mode=mode, prefix_tokens=2).stream(
            QUESTION
        )
        text = "".join(stream).strip()
        assert text == stream.answer.text == "Paris [2] is the capital city"
        assert stream.answer.winner == "right"


class NoLogprobs(Generator):
    """A backend that returns text without token distributions (a chat API without logprobs)."""

    name = "no-logprobs"

    def __init__(self, text: str) -> None:
        self.text = text

    def _generate(self, prompt, options):
        return Generation(text=self.text, steps=[], finish_reason="stop", model=self.name)


def test_confident_rag_needs_token_distributions(wrong, right):
    with pytest.raises(ValueError, match="log-prob"):
        ConfidentRAG(NoLogprobs("Paris"), [wrong, right]).answer(QUESTION)
    # one candidate needs no choice: it is answered, without a confidence ...
    answer = VanillaRAG(NoLogprobs("Paris [2]"), right, k=2).answer(QUESTION)
    assert answer.text == "Paris [2]" and answer.confidence is None and answer.cited
    # ... unless it must be scored to decide whether to abstain
    with pytest.raises(ValueError, match="log-prob"):
        VanillaRAG(NoLogprobs("Paris"), right, threshold=0.0).answer(QUESTION)


def test_an_empty_answer_is_never_preferred(wrong, right):
    llm = EchoGenerator(lambda p: "" if "Paris is the capital" in p else "Lyon", confidence=0.5)
    answer = ConfidentRAG(llm, [right, wrong], k=2).answer(QUESTION)
    assert answer.winner == "wrong" and answer.text == "Lyon"
    assert answer.candidates[0].confidence == {}


def test_select_takes_the_first_of_tied_best_scores():
    assert select([1.0, 3.0, 3.0]) == 1
    assert select([-math.inf, -math.inf]) == 0
    with pytest.raises(ValueError):
        select([])


def test_make_strategy_names_the_choices(wrong, right):
    llm = fake_llm()
    assert isinstance(make_strategy("vanilla", llm, [wrong, right]), VanillaRAG)
    assert isinstance(make_strategy("llm", llm, []), VanillaLLM)
    fast = make_strategy("confident", llm, [wrong, right], mode="fast", metric="gini")
    assert isinstance(fast, ConfidentRAG) and fast.mode == "fast" and fast.metric == "gini"
    with pytest.raises(ValueError, match="confident"):
        make_strategy("best", llm, [wrong])
    with pytest.raises(ValueError, match="self_certainty"):
        ConfidentRAG(llm, [wrong], metric="certainty")
    with pytest.raises(ValueError, match="unique"):
        ConfidentRAG(llm, [wrong, ListRetriever("wrong", [])])


def test_completion_style_prompts_reach_the_generator_as_one_string(right):
    llm = fake_llm()
    template = PromptTemplate(style="completion")
    answer = VanillaRAG(llm, right, k=2, template=template).answer(QUESTION)
    assert isinstance(llm.calls[0], str) and llm.calls[0].endswith("Answer:")
    assert answer.text == "Paris [2] is the capital city"


def test_answer_to_dict_is_json(wrong, right):
    answer = ConfidentRAG(fake_llm(), [wrong, right], k=2).answer(QUESTION)
    data = json.loads(json.dumps(answer.to_dict()))
    assert data["winner"] == "right" and data["text"] == answer.text
    assert data["citations"][1]["section"] == ["Cities", "Capital"]
    assert [c["name"] for c in data["candidates"]] == ["wrong", "right"]
    assert "steps" not in data["candidates"][0]["generation"]
    full = answer.to_dict(steps=True)
    assert len(full["candidates"][0]["generation"]["steps"]) == 5


def test_langchain_runnable_invokes_batches_and_streams(wrong, right):
    pytest.importorskip("langchain_core")
    from rag.adapters.langchain_runnables import as_runnable

    strategy = ConfidentRAG(fake_llm(), [wrong, right], k=2)
    chain = as_runnable(strategy)
    assert chain.invoke(QUESTION).winner == "right"
    assert chain.invoke({"question": QUESTION}).text == "Paris [2] is the capital city"
    assert [a.winner for a in chain.batch([QUESTION, QUESTION])] == ["right", "right"]
    text = as_runnable(VanillaRAG(fake_llm(), wrong, k=2), output="text")
    assert "".join(text.stream(QUESTION)).strip() == "Lyon maybe the capital city"
    assert as_runnable(strategy, output="dict").invoke(QUESTION)["winner"] == "right"
    with pytest.raises(TypeError):
        chain.invoke(42)
