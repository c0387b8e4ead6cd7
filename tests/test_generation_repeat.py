"""Greedy loops of small models end the answer (``GenerationOptions.stop_on_repeat``)."""

from __future__ import annotations

import pytest

from rag.generation._decoding import SequenceState
from rag.generation.options import GenerationOptions, repeat_cut
from rag.types import TokenStep


@pytest.mark.parametrize(
    ("text", "cut"),
    [
        ("Intro. The answer to this question is: The answer to this question is: ", 39),
        ("Fusion adds the scores. Fusion adds the scores. ", 24),
        ("no loop in this sentence at all, none whatsoever", None),
        ("ha ha ha ha ha ha ha ha ", None),  # a short span is not a loop of an answer
        ("1. install the package\n2. install the models\n", None),
        ("", None),
    ],
)
def test_repeat_cut_finds_a_span_repeated_back_to_back(text: str, cut: int | None) -> None:
    assert repeat_cut(text) == cut


def _step() -> TokenStep:
    return TokenStep(token="x", token_id=0, logprob=-0.1)


def test_a_looping_sequence_stops_with_reason_repeat_and_keeps_what_was_streamed() -> None:
    words = ["Sources", " say", " yes.", " The", " answer", " is", " yes", " here."] + [
        " The",
        " answer",
        " is",
        " yes",
        " here.",
    ] * 5
    state = SequenceState((), stop_on_repeat=True)
    streamed = ""
    text = ""
    for i, word in enumerate(words):
        text += word
        state.add(i, _step(), text)
        streamed += state.take_piece()
        if state.done:
            break
    assert state.finish_reason == "repeat"
    assert state.final_text == streamed
    assert state.final_text.endswith(" The answer is yes here. The answer is yes here.")
    assert len(state.ids) < len(words)


def test_without_the_option_a_loop_runs_on() -> None:
    state = SequenceState(())
    text = ""
    for i in range(40):
        text += " the answer is yes"
        state.add(i, _step(), text)
    assert not state.done


def test_the_option_is_on_by_default() -> None:
    assert GenerationOptions().stop_on_repeat is True
