"""One GenerationOptions for every backend and method: built once by the base class, from an
object, keywords or both; validated before any backend runs."""

from __future__ import annotations

import pytest

from rag.generation import GENERATORS, EchoGenerator, GenerationOptions, Generator

PUBLIC = ("generate", "generate_many", "stream", "best_prefix")


def test_defaults_and_stop_strings_as_a_tuple() -> None:
    options = GenerationOptions()
    assert (options.max_new_tokens, options.temperature, options.top_k_logprobs) == (256, 0.0, 5)
    assert options.stop == ()
    assert GenerationOptions(stop="\n").stop == ("\n",)  # a lone string is one stop string
    assert GenerationOptions(stop=None).stop == ()
    assert GenerationOptions(stop=["a", "b"]).stop == ("a", "b")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"temperature": -0.5}, "temperature"),
        ({"top_k_logprobs": -1}, "top_k_logprobs"),
        ({"stop": [""]}, "non-empty"),
    ],
)
def test_bad_values_are_refused_when_made(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GenerationOptions(**changes)
    with pytest.raises(ValueError, match=message):
        GenerationOptions().replace(**changes)


def test_of_applies_keywords_over_an_object_and_refuses_unknown_names() -> None:
    base = GenerationOptions(max_new_tokens=4, stop="\n")
    assert GenerationOptions.of() == GenerationOptions()
    assert GenerationOptions.of(base) is base
    assert GenerationOptions.of(base, max_new_tokens=2) == GenerationOptions(2, stop=("\n",))
    with pytest.raises(TypeError):
        GenerationOptions.of(base, max_tokens=2)


def test_object_and_keywords_give_the_same_generation() -> None:
    llm = EchoGenerator("one two three four five")
    by_keywords = llm.generate("q", max_new_tokens=3, top_k_logprobs=2)
    by_object = llm.generate("q", GenerationOptions(max_new_tokens=3, top_k_logprobs=2))
    mixed = llm.generate(
        "q", GenerationOptions(max_new_tokens=9, top_k_logprobs=2), max_new_tokens=3
    )
    assert by_keywords.text == by_object.text == mixed.text == "one two three"
    assert [len(s.top_logprobs) for s in mixed.steps] == [2, 2, 2]
    assert [g.text for g in llm.generate_many(["a", "b"], max_new_tokens=1)] == ["one", "one"]
    assert "".join(llm.stream("q", GenerationOptions(max_new_tokens=2))) == "one two"


def test_stream_validates_at_the_call_and_best_prefix_is_greedy() -> None:
    llm = EchoGenerator("one two")
    with pytest.raises(ValueError, match="max_new_tokens"):
        llm.stream("q", max_new_tokens=0)  # before the first piece is asked for
    with pytest.raises(ValueError, match="greedily"):
        llm.best_prefix(["q"], lambda g: 0, prefix_tokens=1, temperature=0.7)
    with pytest.raises(ValueError, match="prefix_tokens"):
        llm.best_prefix(["q"], lambda g: 0, prefix_tokens=0)
    choice = llm.best_prefix(
        ["q"], lambda g: 0, GenerationOptions(max_new_tokens=5), prefix_tokens=1
    )
    assert choice.prefixes[0].text == "one" and choice.final.text == "one two"


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_no_backend_restates_the_public_methods(name: str) -> None:
    cls = GENERATORS[name]
    for method in PUBLIC:
        assert getattr(cls, method) is getattr(Generator, method), f"{name} overrides {method}"
